"""The commands: ``fedsim run`` of a scenario or a sweep, orchestrated in numbered steps.

:mod:`~fedsim.commands.run` runs one scenario (scenario → data → privacy →
simulation → audit → result), :mod:`~fedsim.commands.execute` wraps it for the
command line (save, report, progress, exit code), :mod:`~fedsim.commands.sweep`
runs every run of a sweep, and :mod:`~fedsim.commands.output` prints.

Exit codes (as :mod:`fedsim.cli` documents them): 0 success; 2 bad input; 1 a
run that failed while running; 130 interrupted.
"""

from fedsim.commands.execute import execute_run
from fedsim.commands.output import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    describe_privacy,
    print_error,
)
from fedsim.commands.sweep import run_sweep, scenario_or_sweep

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "describe_privacy",
    "execute_run",
    "print_error",
    "run_sweep",
    "scenario_or_sweep",
]
