"""Scenarios: the only package that knows TOML keys.

It reads a scenario file (:mod:`~fedsim.scenario.reading`), validates it
against the schema that holds every default (:mod:`~fedsim.scenario.schema`,
:mod:`~fedsim.scenario.sections`, :mod:`~fedsim.scenario.privacy_section`),
expands sweeps (:mod:`~fedsim.scenario.sweeps`) and builds each layer's frozen
spec (:mod:`~fedsim.scenario.specs`). It sits above the engine: nothing in
``data``, ``partition``, ``models``, ``client``, ``privacy``, ``aggregation``,
``audit`` or ``simulation`` imports it.
"""

from fedsim.scenario.errors import ScenarioError
from fedsim.scenario.reading import (
    apply_overrides,
    load_scenario,
    read_scenario_file,
    source_name,
    validate_scenario,
)
from fedsim.scenario.schema import Scenario
from fedsim.scenario.specs import build_run_spec

__all__ = [
    "Scenario",
    "ScenarioError",
    "apply_overrides",
    "build_run_spec",
    "load_scenario",
    "read_scenario_file",
    "source_name",
    "validate_scenario",
]
