"""Online data sets through flwr-datasets, read from local parquet copies (no network)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from fedsim.data import DataUnavailableError
from fedsim.data.hub import load_hub
from tests.fixtures import hub_files
from tests.fixtures.specs import data_spec


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("hub")


def spec(name, files, **kw):
    return data_spec(name, data_files=tuple(sorted(files.items())), **kw)


def test_mnist_from_local_parquet(folder):
    # Arrange
    files = hub_files.mnist_like(folder)
    # Act
    train, test = load_hub("mnist", spec("mnist", files))
    # Assert: the files' own train/test split, (N, 1, 28, 28) standardised images, 10 classes
    assert train.x.shape == (600, 1, 28, 28) and test.x.shape == (200, 1, 28, 28)
    assert train.x.dtype == np.float32 and train.num_classes == 10 and train.groups is None
    assert abs(float(train.x.mean())) < 1e-3 and abs(float(train.x.std()) - 1) < 1e-2
    assert np.bincount(train.y, minlength=10).min() > 0


def test_cifar10_from_local_parquet_is_rgb(folder):
    train, test = load_hub("cifar10", spec("cifar10", hub_files.cifar_like(folder)))
    assert train.x.shape == (300, 3, 32, 32) and test.x.shape == (100, 3, 32, 32)
    # standardised per channel with the training split's statistics
    np.testing.assert_allclose(train.x.mean(axis=(0, 2, 3)), 0, atol=1e-3)


def test_femnist_writers_are_natural_users_and_each_keeps_test_rows(folder):
    # Arrange
    files = hub_files.femnist_like(folder, writers=6)
    # Act: no test file, so 20 % of each writer's rows are held out
    train, test = load_hub("femnist", spec("femnist", files, test_fraction=0.2))
    # Assert
    assert train.num_classes == 62 and train.input_shape == (1, 8, 8)
    assert len(train.group_names) == 6 and train.group_names[0] == "f0000_00"
    assert len(train) + len(test) == 1347
    per_writer_test = np.bincount(test.groups, minlength=6)
    per_writer_all = per_writer_test + np.bincount(train.groups, minlength=6)
    np.testing.assert_allclose(per_writer_test / per_writer_all, 0.2, atol=0.01)


def test_shakespeare_windows_roles_held_out_tail_and_caps(folder):
    # Arrange: 300 windows per role, each 7 characters after the previous one
    files = hub_files.shakespeare_like(folder, books=5, per_book=300)
    kw = {"window_length": 80, "test_fraction": 0.25}
    # Act
    train, test = load_hub("shakespeare", spec("shakespeare", files, **kw))
    capped, _ = load_hub("shakespeare", spec("shakespeare", files, max_train_windows_per_user=50, **kw))
    # Assert: (N, 80) character indices and five roles; each role's last 75 windows are held out and
    # the 80 windows before them are dropped, so no training window overlaps a test window
    assert train.x.shape[1:] == (80,) and train.vocab is not None and " " in train.vocab
    assert len(train.group_names) == 5
    assert np.bincount(train.groups).tolist() == [300 - 75 - 80] * 5
    assert np.bincount(test.groups).tolist() == [75] * 5
    assert np.bincount(capped.groups).tolist() == [50] * 5  # at most 50 training windows per role
    text = "".join(train.vocab[i] for i in train.x[0])
    assert len(text) == 80


def test_shakespeare_window_length_must_match(folder):
    files = hub_files.shakespeare_like(folder, books=2, per_book=10)
    with pytest.raises(ValueError, match="windows have \\[80\\] characters, but data.window-length is 40"):
        load_hub("shakespeare", spec("shakespeare", files, window_length=40, test_fraction=0.2))


def test_missing_empty_or_unreadable_local_files_are_named(folder, tmp_path):
    good = hub_files.mnist_like(folder)
    with pytest.raises(DataUnavailableError, match="data-files.train not found: .*nope.parquet"):
        load_hub("mnist", spec("mnist", {"train": str(tmp_path / "nope.parquet")}))
    (tmp_path / "empty.parquet").write_bytes(b"")
    (tmp_path / "dir.parquet").mkdir()
    for bad in ("empty.parquet", "dir.parquet"):
        with pytest.raises(DataUnavailableError, match=f"data-files.train is not a data file .*{bad}"):
            load_hub("mnist", spec("mnist", {"train": str(tmp_path / bad), "test": good["test"]}))
    (tmp_path / "junk.parquet").write_bytes(b"not a parquet file at all")
    with pytest.raises(DataUnavailableError, match="could not read local files .* with the columns"):
        load_hub("mnist", spec("mnist", {"train": str(tmp_path / "junk.parquet"), "test": good["test"]}))


def test_train_file_only_holds_out_a_test_share(folder):
    files = hub_files.mnist_like(folder)
    train, test = load_hub("mnist", spec("mnist", {"train": files["train"]}, test_fraction=0.25))
    assert (len(train), len(test)) == (450, 150)
    with pytest.raises(ValueError, match="no test split; set data.test-fraction or give a test file"):
        load_hub("mnist", spec("mnist", {"train": files["train"]}))


def test_unreachable_hub_fails_fast_with_advice(monkeypatch):
    import time

    from huggingface_hub import constants

    import fedsim.data.hub as hub

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "_hub_host", lambda: ("127.0.0.1", 9))  # nothing listens there: like no network
    start = time.perf_counter()
    with pytest.raises(DataUnavailableError) as err:
        load_hub("femnist", data_spec("femnist", test_fraction=0.1))
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert "cannot reach the Hugging Face Hub (127.0.0.1) to download flwrlabs/femnist" in message
    assert 'data-files = { train = "train.parquet" }' in message  # FEMNIST has no test split
    assert "image, character, writer_id" in message


def test_unreachable_hub_says_how_to_use_local_files():
    # Offline (as here), asking for the Hub data set fails with advice, not a traceback.
    code = (
        "from fedsim.data import DataSpec, load_dataset\n"
        "try:\n    load_dataset(DataSpec('mnist', *[None] * 8))\n"  # every option None
        "except FileNotFoundError as err:\n    print('ERROR', err)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "FLWR_TELEMETRY_ENABLED": "0"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert "ERROR mnist: could not read the Hugging Face Hub data set ylecun/mnist" in proc.stdout, (
        proc.stderr
    )
    assert "data-files = { train = " in proc.stdout


def test_images_as_plain_png_bytes_and_a_non_image_column(tmp_path):
    # Arrange: parquet written by pandas (no Hugging Face metadata): PNG bytes in a struct column
    import io

    import pandas as pd
    from PIL import Image

    def png(value):
        buffer = io.BytesIO()
        Image.fromarray(np.full((28, 28), value, dtype=np.uint8)).save(buffer, format="PNG")
        return {"bytes": buffer.getvalue(), "path": None}

    good = tmp_path / "plain.parquet"
    pd.DataFrame({"image": [png(v) for v in range(0, 200, 10)], "label": list(range(10)) * 2}).to_parquet(
        good
    )
    bad = tmp_path / "numbers.parquet"
    pd.DataFrame({"image": list(range(20)), "label": list(range(10)) * 2}).to_parquet(bad)
    # Act
    train, _ = load_hub("mnist", spec("mnist", {"train": str(good), "test": str(good)}))
    # Assert
    assert train.x.shape == (20, 1, 28, 28) and train.num_classes == 10
    with pytest.raises(DataUnavailableError, match="column 'image' holds .* not images"):
        load_hub("mnist", spec("mnist", {"train": str(bad)}))


def test_shakespeare_from_csv_equals_parquet(folder, tmp_path):
    import pandas as pd

    files = hub_files.shakespeare_like(folder, books=3, per_book=150)
    csv_path = tmp_path / "shakespeare.csv"
    pd.read_parquet(files["train"]).to_csv(csv_path, index=False)
    kw = {"window_length": 80, "test_fraction": 0.25}
    from_parquet, _ = load_hub("shakespeare", spec("shakespeare", files, **kw))
    from_csv, _ = load_hub("shakespeare", spec("shakespeare", {"train": str(csv_path)}, **kw))
    assert len(from_parquet) == 3 * (150 - 38 - 80) and from_csv.vocab == from_parquet.vocab
    np.testing.assert_array_equal(from_csv.x, from_parquet.x)
    np.testing.assert_array_equal(from_csv.groups, from_parquet.groups)
