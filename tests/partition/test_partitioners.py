import numpy as np
import pytest

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
    assert (partition_stats(digits_labels, parts, num_classes=10) > 0).all()


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
        counts = partition_stats(digits_labels, parts, num_classes=10).astype(float)
        shares = counts / counts.sum(axis=1, keepdims=True)
        return float(np.mean(shares.max(axis=1)))  # mean share of each client's top class

    assert skew(0.1) > skew(100.0) + 0.3


def test_too_many_clients_is_an_error():
    with pytest.raises(ValueError, match="cannot split 3 examples among 5 clients"):
        partition(np.array([0, 1, 0]), PartitionSpec("iid", 5, seed=0))
