"""The KJV next-character task: 66 books as natural users, verses held out for testing."""

import numpy as np
import pytest

from fedsim.data import load_dataset
from fedsim.data.text import cut_windows, encode, read_kjv_verses, split_verses
from tests.fixtures.specs import data_spec

SPEC = data_spec(
    "kjv",
    window_length=80,
    window_stride=20,
    test_fraction=0.1,
    max_train_windows_per_user=300,
    max_test_windows=2000,
)


@pytest.fixture(scope="module")
def kjv():
    return load_dataset(SPEC)


def test_every_verse_is_read_in_66_books():
    verses = read_kjv_verses()
    assert len(verses) == 31102
    books = list(dict.fromkeys(book for book, _ in verses))
    assert len(books) == 66 and books[0] == "Ge" and books[-1] == "Rev"
    assert verses[0][1] == "In the beginning God created the heaven and the earth."


def test_windows_labels_and_books(kjv):
    # Arrange
    train, test = kjv
    # Assert: 80-character windows over the corpus vocabulary, labelled by the next character
    assert train.x.shape[1:] == (80,) and train.x.dtype == np.int64 and train.y.dtype == np.int64
    assert train.vocab == test.vocab and train.num_classes == len(train.vocab)
    assert " " in train.vocab and "a" in train.vocab and "Z" in train.vocab
    assert train.x.max() < train.num_classes and train.y.max() < train.num_classes
    # one natural user per book, none empty; the cap holds and thins big books only
    sizes = np.bincount(train.groups, minlength=66)
    assert len(train.group_names) == 66 and sizes.min() > 0 and sizes.max() == 300
    assert len(test) == 2000 and set(np.unique(test.groups)) <= set(range(66))
    # the space is the most frequent next character, the baseline a model must beat
    assert train.vocab[np.bincount(test.y).argmax()] == " "
    assert 0.15 < test.baseline_accuracy() < 0.25


def test_held_out_verses_never_reach_training():
    # Arrange
    verses = read_kjv_verses()
    # Act
    split = split_verses(verses, test_fraction=0.1, min_test_chars=81)
    # Assert: per book, disjoint verse sets that together are the book; about 10 % held out
    held = 0
    for book, train_rows, test_rows in split:
        assert len(np.intersect1d(train_rows, test_rows)) == 0
        rows = [i for i, (name, _) in enumerate(verses) if name == book]
        assert sorted(np.concatenate([train_rows, test_rows]).tolist()) == rows
        assert len(test_rows) >= 1 and sum(len(verses[i][1]) + 1 for i in test_rows) >= 81
        held += len(test_rows)
    assert 0.09 < held / len(verses) < 0.12


def test_training_windows_come_from_training_verses_only(kjv):
    # Arrange: rebuild each book's training and held-out text
    train, test = kjv
    verses = read_kjv_verses()
    split = split_verses(verses, test_fraction=0.1, min_test_chars=81)
    train_text = {b: " ".join(verses[i][1] for i in rows) for b, (_, rows, _) in enumerate(split)}
    test_text = {b: " ".join(verses[i][1] for i in rows) for b, (_, _, rows) in enumerate(split)}
    rng = np.random.default_rng(0)
    # Assert: a sample of windows (with their label) is found in its own split's text of its book
    for data, texts in ((train, train_text), (test, test_text)):
        for row in rng.choice(len(data), size=200, replace=False):
            window = "".join(data.vocab[i] for i in data.x[row]) + data.vocab[data.y[row]]
            assert window in texts[int(data.groups[row])]


def test_cut_windows_stride_and_cap():
    ids = np.arange(100)
    x, y = cut_windows(ids, window_length=10, stride=5, max_windows=None, rng=np.random.default_rng(0))
    assert x.shape == (18, 10) and x[1, 0] == 5 and y[0] == 10
    capped, _ = cut_windows(ids, window_length=10, stride=5, max_windows=4, rng=np.random.default_rng(0))
    assert capped.shape == (4, 10) and (np.diff(capped[:, 0]) > 0).all()
    with pytest.raises(ValueError, match="'z' is not in the vocabulary"):
        encode("abz", "ab")


def test_missing_bible_program_names_the_package(monkeypatch):
    import fedsim.data.text as text

    monkeypatch.setattr(text, "BIBLE_PROGRAM", "no-such-bible-program")
    with pytest.raises(FileNotFoundError, match="apt-get install bible-kjv"):
        read_kjv_verses()
