"""Contract every registered partitioner must keep (dp_accounting-style contract suite)."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedsim.partition import PartitionSpec, available_partitioners, partition


class PartitionerContract:
    """Subclass with `name` and `extra` (the partitioner's own parameters)."""

    name: str
    extra: dict = {}

    def spec(self, clients: int, seed: int) -> PartitionSpec:
        return PartitionSpec(self.name, clients, seed=seed, **self.extra)

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.differing_executors])
    @given(
        n=st.integers(min_value=20, max_value=300),
        clients=st.integers(min_value=1, max_value=8),
        seed=st.integers(min_value=0, max_value=2**16),
    )
    def test_disjoint_covering_reproducible(self, n, clients, seed):
        labels = np.random.default_rng(seed).integers(0, 3, size=n)
        parts = partition(labels, self.spec(clients, seed))
        assert len(parts) == clients
        joined = np.concatenate(parts)
        assert np.array_equal(np.sort(joined), np.arange(n))  # disjoint and covering
        again = partition(labels, self.spec(clients, seed))
        assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))

    def test_other_seed_changes_the_split(self):
        labels = np.repeat(np.arange(4), 50)
        a = partition(labels, self.spec(4, 0))
        b = partition(labels, self.spec(4, 1))
        assert any(not np.array_equal(x, y) for x, y in zip(a, b, strict=True))


class TestIid(PartitionerContract):
    name = "iid"


class TestDirichlet(PartitionerContract):
    name = "dirichlet"
    extra = {"alpha": 0.5, "min_partition_size": 0}


def test_every_registered_partitioner_has_a_contract_test():
    tested = {cls.name for cls in PartitionerContract.__subclasses__()}
    assert tested == set(available_partitioners())
