"""Checks on the local parquet/csv copies of an online data set (``data-files``).

:func:`fedsim.data.hub.load_hub` reads these files with ``flwr_datasets``
(``datasets.load_dataset`` with the ``parquet`` or ``csv`` builder); this module
checks them first, so that a wrong path or a mix of formats is reported plainly.
"""

from __future__ import annotations

from pathlib import Path

from fedsim.data.base import DataUnavailableError

BUILDERS = {".parquet": "parquet", ".csv": "csv"}


def _check_file(name: str, split: str, path: str) -> None:
    """Check that one named file exists and holds data.

    Args:
        name: the data set's name, for the message.
        split: the split the file is named for (``train``, ``test``).
        path: the file's path.

    Raises:
        DataUnavailableError: if the file is missing, a folder or empty.
    """
    if not Path(path).exists():
        raise DataUnavailableError(f"{name}: data-files.{split} not found: {path}")
    if not Path(path).is_file() or Path(path).stat().st_size == 0:
        raise DataUnavailableError(
            f"{name}: data-files.{split} is not a data file (a folder or empty): {path}"
        )


def local_builder(name: str, files: dict[str, str]) -> str:
    """Check the local files and name the ``datasets`` builder that reads them.

    Args:
        name: the data set's name, for the messages.
        files: split name to file path; must include ``train``.

    Returns:
        ``"parquet"`` or ``"csv"``.

    Raises:
        DataUnavailableError: if there is no ``train`` file, a file is missing,
            a folder or empty, or the files are not all parquet or all csv.
    """
    if "train" not in files:
        raise DataUnavailableError(f"{name}: data-files needs a 'train' file, got {sorted(files)}")
    for split, path in files.items():
        _check_file(name, split, path)
    builders = {BUILDERS.get(Path(path).suffix.lower()) for path in files.values()}
    if None in builders or len(builders) != 1:
        raise DataUnavailableError(
            f"{name}: data-files must all be .parquet or all .csv, got {sorted(files.values())}"
        )
    return builders.pop()
