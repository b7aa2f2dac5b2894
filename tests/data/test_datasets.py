import numpy as np
import pytest

from fedsim.data import load_dataset
from fedsim.data.images import FASHION_MNIST_DIR_ENV, _read_idx
from tests.fixtures.specs import data_spec


def test_fashion_mnist_official_split():
    # Arrange / Act
    train, test = load_dataset(data_spec("fashion-mnist"))
    # Assert: the official 60,000 / 10,000 split, 28x28 grey images, balanced 10 classes
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int64
    assert np.bincount(train.y).tolist() == [6000] * 10
    assert np.bincount(test.y).tolist() == [1000] * 10
    # normalised with the training set's statistics
    assert abs(float(train.x.mean())) < 0.01 and abs(float(train.x.std()) - 1.0) < 0.01


def test_digits_fixed_stratified_split():
    train, test = load_dataset(data_spec("digits"))
    assert (len(train), len(test)) == (1347, 450)
    assert train.input_shape == (1, 8, 8)
    assert set(np.unique(test.y)) == set(range(10))
    assert float(train.x.min()) == -1.0 and float(train.x.max()) == 1.0


def test_missing_fashion_mnist_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv(FASHION_MNIST_DIR_ENV, str(tmp_path))
    load_dataset.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
            load_dataset(data_spec("fashion-mnist"))
    finally:
        load_dataset.cache_clear()


def test_idx_reader_rejects_garbage(tmp_path):
    bad = tmp_path / "x.idx"
    bad.write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x02ab")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        _read_idx(bad)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        data_spec("cifar")


def _rows(dataset):
    """Each example as bytes (its image and label), to compare sets of rows."""
    return {x.tobytes() + bytes([int(y)]) for x, y in zip(dataset.x, dataset.y, strict=True)}


def test_a_validation_split_comes_from_the_training_data_never_the_test_set():
    # Arrange
    train, test = load_dataset(data_spec("digits", max_train_examples=1000))
    # Act
    rest, validation = load_dataset(data_spec("digits", max_train_examples=1000, validation_fraction=0.1))
    # Assert: 10 % of the same 1,000 training examples, disjoint from what the clients train on
    assert (len(rest), len(validation)) == (900, 100)
    assert _rows(rest) | _rows(validation) == _rows(train)
    assert not _rows(rest) & _rows(validation)
    assert not _rows(validation) & _rows(test)
    assert set(np.unique(validation.y)) == set(range(10))


def test_a_validation_split_is_fixed_and_absent_by_default():
    # Arrange / Act
    first = load_dataset(data_spec("digits", validation_fraction=0.2))[1]
    load_dataset.cache_clear()
    again = load_dataset(data_spec("digits", validation_fraction=0.2))[1]
    # Assert: the same split every time; without it, the usual 1,347 / 450
    assert np.array_equal(first.x, again.x) and len(first) == round(0.2 * 1347)
    assert [len(s) for s in load_dataset(data_spec("digits"))] == [1347, 450]
    with pytest.raises(ValueError, match=r"validation_fraction must be in \(0, 0.5\], got 0.6"):
        data_spec("digits", validation_fraction=0.6)
