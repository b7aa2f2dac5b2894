import numpy as np
import pytest

from fedsim.data import load_dataset
from fedsim.partition import partition, partition_stats
from tests.fixtures.specs import data_spec, partition_spec


@pytest.fixture(scope="module")
def digits_labels():
    train, _ = load_dataset(data_spec("digits"))
    return np.asarray(train.y)


def assert_disjoint_cover(parts, n):
    joined = np.concatenate(parts)
    assert len(joined) == n
    assert np.array_equal(np.sort(joined), np.arange(n))


def test_iid_sizes_and_coverage(digits_labels):
    # Arrange
    spec = partition_spec("iid", num_partitions=10, seed=0)
    # Act
    parts = partition(digits_labels, spec)
    # Assert: 1347 rows into 10 near-equal shards, disjoint and covering
    assert sorted(len(p) for p in parts) == [134] * 3 + [135] * 7
    assert_disjoint_cover(parts, len(digits_labels))
    # IID: every client sees every class
    assert (partition_stats(digits_labels, parts, num_classes=10) > 0).all()


def test_iid_depends_on_seed(digits_labels):
    a = partition(digits_labels, partition_spec("iid", 3, seed=0))
    b = partition(digits_labels, partition_spec("iid", 3, seed=0))
    c = partition(digits_labels, partition_spec("iid", 3, seed=1))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_dirichlet_smaller_alpha_is_more_skewed(digits_labels):
    def skew(alpha):
        parts = partition(
            digits_labels, partition_spec("dirichlet", 5, seed=0, alpha=alpha, min_partition_size=10)
        )
        assert_disjoint_cover(parts, len(digits_labels))
        counts = partition_stats(digits_labels, parts, num_classes=10).astype(float)
        shares = counts / counts.sum(axis=1, keepdims=True)
        return float(np.mean(shares.max(axis=1)))  # mean share of each client's top class

    assert skew(0.1) > skew(100.0) + 0.3


def test_too_many_clients_is_an_error():
    with pytest.raises(ValueError, match="cannot split 3 examples among 5 clients"):
        partition(np.array([0, 1, 0]), partition_spec("iid", 5, seed=0))


def test_pathological_gives_each_client_exactly_its_classes(digits_labels):
    # Arrange / Act
    parts = partition(digits_labels, partition_spec("pathological", 10, seed=0, classes_per_client=2))
    counts = partition_stats(digits_labels, parts, num_classes=10)
    # Assert: two classes per client, every class used (client i starts with class i), all rows used
    assert (counts > 0).sum(axis=1).tolist() == [2] * 10
    assert (counts.sum(axis=0) == np.bincount(digits_labels)).all()
    assert_disjoint_cover(parts, len(digits_labels))


def test_shard_deals_equal_label_sorted_shards(digits_labels):
    # 10 clients x 2 shards of 1347 // 20 = 67 rows; the 7 leftover rows are unused
    parts = partition(digits_labels, partition_spec("shard", 10, seed=0, shards_per_client=2))
    assert [len(p) for p in parts] == [134] * 10
    counts = partition_stats(digits_labels, parts, num_classes=10)
    assert (counts > 0).sum(axis=1).max() <= 4  # a shard spans at most two neighbouring classes
    sized = partition(digits_labels, partition_spec("shard", 5, seed=0, shards_per_client=3, shard_size=40))
    assert [len(p) for p in sized] == [120] * 5


def test_natural_id_gives_one_client_per_user():
    labels = np.arange(30) % 3
    groups = np.repeat([2, 0, 1], 10)  # users in file order 2, 0, 1
    parts = partition(labels, partition_spec("natural-id", 3, seed=0), groups=groups)
    # client i holds exactly the rows of user i
    assert [p.tolist() for p in parts] == [list(range(10, 20)), list(range(20, 30)), list(range(10))]


def test_natural_id_client_count_must_match_users():
    with pytest.raises(ValueError, match="the data has 3 users, so the number of clients must be 3, not 5"):
        partition(np.zeros(30, dtype=int), partition_spec("natural-id", 5, seed=0), groups=np.arange(30) % 3)
    with pytest.raises(ValueError, match="natural-id needs a data set with natural users"):
        partition(np.zeros(30, dtype=int), partition_spec("natural-id", 3, seed=0))


def test_pathological_more_classes_than_exist():
    with pytest.raises(ValueError, match="11 classes per client, but the data has 10"):
        partition(np.arange(100) % 10, partition_spec("pathological", 2, seed=0, classes_per_client=11))


def test_dirichlet_resampling_warnings_become_one_line_with_the_number_of_draws():
    import warnings

    # Arrange: alpha 0.1 with at least 40 of 1,000 examples per client: seed 0 needs 5 draws
    labels = np.repeat(np.arange(10), 100)
    spec = partition_spec("dirichlet", 10, seed=0, alpha=0.1, min_partition_size=40)
    # Act
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parts = partition(labels, spec)
    # Assert: flwr-datasets' four long warnings become one line that says how many draws it took
    assert min(len(p) for p in parts) >= 40
    assert [str(w.message) for w in caught] == [
        "dirichlet split: flwr-datasets drew the split 5 times before every client had min-partition-size "
        "= 40 examples at alpha = 0.1 (it gives up after 10); a larger alpha or a smaller "
        "min-partition-size draws fewer times"
    ]
