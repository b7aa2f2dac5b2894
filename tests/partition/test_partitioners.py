import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsim.data import DataSpec, load_dataset
from fedsim.partition import PartitionSpec, partition, partition_stats


@pytest.fixture(scope="module")
def digits_labels():
    train, _ = load_dataset(DataSpec("digits"))
    return np.asarray(train.y)


def assert_disjoint_cover(parts, n):
    joined = np.concatenate(parts)
    assert len(joined) == n
    assert np.array_equal(np.sort(joined), np.arange(n))


def test_iid_sizes_and_coverage(digits_labels):
    # Arrange
    spec = PartitionSpec("iid", num_partitions=10, seed=0)
    # Act
    parts = partition(digits_labels, spec)
    # Assert: 1347 rows into 10 near-equal shards, disjoint and covering
    assert sorted(len(p) for p in parts) == [134] * 3 + [135] * 7
    assert_disjoint_cover(parts, len(digits_labels))
    # IID: every client sees every class
    assert (partition_stats(digits_labels, parts, 10) > 0).all()


def test_iid_depends_on_seed(digits_labels):
    a = partition(digits_labels, PartitionSpec("iid", 3, seed=0))
    b = partition(digits_labels, PartitionSpec("iid", 3, seed=0))
    c = partition(digits_labels, PartitionSpec("iid", 3, seed=1))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_dirichlet_smaller_alpha_is_more_skewed(digits_labels):
    def skew(alpha):
        parts = partition(digits_labels, PartitionSpec("dirichlet", 5, seed=0, alpha=alpha))
        assert_disjoint_cover(parts, len(digits_labels))
        counts = partition_stats(digits_labels, parts, 10).astype(float)
        shares = counts / counts.sum(axis=1, keepdims=True)
        return float(np.mean(shares.max(axis=1)))  # mean share of each client's top class

    assert skew(0.1) > skew(100.0) + 0.3


def test_too_many_clients_is_an_error():
    with pytest.raises(ValueError, match="cannot split 3 examples among 5 clients"):
        partition(np.array([0, 1, 0]), PartitionSpec("iid", 5, seed=0))


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(min_value=20, max_value=300),
    clients=st.integers(min_value=1, max_value=8),
    seed=st.integers(min_value=0, max_value=2**16),
    name=st.sampled_from(["iid", "dirichlet"]),
)
def test_partitions_are_disjoint_covering_and_reproducible(n, clients, seed, name):
    labels = np.random.default_rng(seed).integers(0, 3, size=n)
    spec = PartitionSpec(
        name, clients, seed=seed, alpha=1.0 if name == "dirichlet" else None, min_partition_size=0
    )
    parts = partition(labels, spec)
    assert len(parts) == clients
    assert_disjoint_cover(parts, n)
    again = partition(labels, spec)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
