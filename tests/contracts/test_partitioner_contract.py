"""Contract every registered partitioner must keep (dp_accounting-style contract suite)."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedsim.partition import PartitionSpec, available_partitioners, partition
from tests.fixtures.specs import partition_spec


class PartitionerContract:
    """Subclass with `name` and `extra` (the partitioner's own parameters)."""

    name: str
    extra: dict = {}
    seeded = True  # whether the seed changes the split

    def spec(self, clients: int, seed: int) -> PartitionSpec:
        return partition_spec(self.name, clients, seed=seed, **self.extra)

    def unused_rows_allowed(self, labels, clients) -> int:
        """How many rows the split may leave to no client (0: it must cover the data)."""
        return 0

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.differing_executors])
    @given(
        n=st.integers(min_value=24, max_value=300),
        clients=st.integers(min_value=1, max_value=8),
        seed=st.integers(min_value=0, max_value=2**16),
    )
    def test_disjoint_covering_reproducible(self, n, clients, seed):
        rng = np.random.default_rng(seed)
        # every class has at least 8 examples: the pathological split gives each class to
        # up to 8 clients, and refuses (rightly) a class with fewer examples than that
        labels = rng.permutation(np.arange(n) % 3)
        groups = rng.permutation(np.arange(n) % clients)  # natural users, every one present
        parts = partition(labels, self.spec(clients, seed), groups=groups)
        assert len(parts) == clients
        joined = np.concatenate(parts)
        assert len(np.unique(joined)) == len(joined)  # disjoint
        assert set(joined) <= set(range(n))
        assert n - len(joined) <= self.unused_rows_allowed(labels, clients)  # covering
        again = partition(labels, self.spec(clients, seed), groups=groups)
        assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))

    def test_seed_changes_the_split_if_seeded(self):
        labels = np.repeat(np.arange(4), 50)
        groups = np.arange(200) % 4
        a = partition(labels, self.spec(4, 0), groups=groups)
        b = partition(labels, self.spec(4, 1), groups=groups)
        changed = any(not np.array_equal(x, y) for x, y in zip(a, b, strict=True))
        assert changed == self.seeded


class TestIid(PartitionerContract):
    name = "iid"


class TestDirichlet(PartitionerContract):
    name = "dirichlet"
    extra = {"alpha": 0.5, "min_partition_size": 0}


class TestPathological(PartitionerContract):
    name = "pathological"
    extra = {"classes_per_client": 2}

    def unused_rows_allowed(self, labels, clients):
        # client i's first class is i mod 3, so all 3 classes are used from 3 clients on
        return 0 if clients >= 3 else len(labels)


class TestShard(PartitionerContract):
    name = "shard"
    extra = {"shards_per_client": 2}

    def unused_rows_allowed(self, labels, clients):
        return clients * 2 - 1  # equal shards: less than one shard per (client, shard) is left over


class TestNaturalId(PartitionerContract):
    name = "natural-id"
    seeded = False  # one client per natural user, whatever the seed


def test_every_registered_partitioner_has_a_contract_test():
    tested = {cls.name for cls in PartitionerContract.__subclasses__()}
    assert tested == set(available_partitioners())
