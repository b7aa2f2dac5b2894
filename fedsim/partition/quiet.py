"""The known noise of flwr-datasets' partitioners, silenced or summed up in one line."""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fedsim.partition.partitioners import PartitionSpec


@contextlib.contextmanager
def quiet(spec: PartitionSpec):
    """Silence the known noise of a partitioner, nothing else.

    NaturalIdPartitioner draws a tqdm bar on stderr that nothing can switch off;
    ShardPartitioner's sort trips a pyarrow deprecation warning meant for its authors;
    DirichletPartitioner warns once per failed draw (up to 9 long warnings), which
    become one line saying how many draws it took (:func:`_one_resampling_warning`).
    """
    if spec.name == "dirichlet":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        _one_resampling_warning(caught, spec)  # not reached when the split failed: its error says why
        return
    with contextlib.ExitStack() as stack:
        if spec.name == "natural-id":
            stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        if spec.name == "shard":
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore", FutureWarning)
        yield


_RESAMPLING = "was not satisfied for alpha"
"""Part of flwr-datasets' DirichletPartitioner warning for a draw below ``min_partition_size``."""


def _one_resampling_warning(caught: list[warnings.WarningMessage], spec: PartitionSpec) -> None:
    """Re-issue what ``caught`` holds: the resampling warnings as one line, anything else as it was."""
    failed = [w for w in caught if _RESAMPLING in str(w.message)]
    for w in caught:
        if w not in failed:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if failed:
        warnings.warn(
            f"dirichlet split: flwr-datasets drew the split {len(failed) + 1} times before every client "
            f"had min-partition-size = {spec.min_partition_size} examples at alpha = {spec.alpha:g} "
            "(it gives up after 10); a larger alpha or a smaller min-partition-size draws fewer times",
            UserWarning,
            stacklevel=4,
        )
