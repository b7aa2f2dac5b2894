"""Run results: plain records (a leaf anyone may import) and their files."""

from fedsim.results.records import ClientRecord, RoundRecord, RunResult
from fedsim.results.store import load_run, save_run

__all__ = ["ClientRecord", "RoundRecord", "RunResult", "load_run", "save_run"]
