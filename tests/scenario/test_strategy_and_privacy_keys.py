"""Scenario rules: strategy options, refused combinations, mode none, δ below 1/n, Poisson cohorts."""

import pytest

from fedsim.privacy.setup import PrivacySetupError, check_delta
from fedsim.scenario import ScenarioError, load_scenario

SMOKE = "scenarios/digits-smoke.toml"


def _error(*overrides: str) -> str:
    with pytest.raises(ScenarioError) as err:
        load_scenario(SMOKE, list(overrides))
    return str(err.value)


def test_fedprox_needs_its_mu():
    assert "strategy 'fedprox' needs 'proximal-mu'" in _error("federation.strategy=fedprox")


def test_an_option_of_another_strategy_names_the_chosen_strategys_options():
    message = _error("federation.strategy=fedadam", "federation.beta=0.1")
    assert "'beta' is an option of strategy 'fedtrimmedavg', not of 'fedadam'" in message
    assert "(whose options are: 'eta', 'beta-1', 'beta-2', 'tau')" in message


def test_flowers_defaults_apply_to_options_left_unset():
    scenario = load_scenario(SMOKE, ["federation.strategy=fedyogi", "federation.eta=0.05"])
    assert scenario.federation.strategy_options() == (("eta", 0.05),)


@pytest.mark.parametrize("strategy", ["fedmedian", "fedtrimmedavg", "krum"])
def test_robust_aggregators_are_refused_with_user_level_dp_and_with_secagg(strategy):
    user = _error(f"federation.strategy={strategy}", "privacy.mode=both", "privacy.user-noise-multiplier=1")
    assert 'needs federation.strategy = "fedavg" or "fedprox"' in user and "order statistics" in user
    secagg = _error(f"federation.strategy={strategy}", "privacy.secure-aggregation=true")
    assert "reveals only the sum of the cohort's updates" in secagg and "fedprox" in secagg


def test_mode_none_ignores_the_dp_keys_and_leaves_them_out_of_the_resolved_scenario():
    scenario = load_scenario("scenarios/quickstart.toml", ["privacy.mode=none"])
    assert scenario.privacy.ignored_keys == ("max-grad-norm", "target-epsilon")
    assert scenario.to_toml_dict()["privacy"] == {
        "mode": "none",
        "accountant": "rdp",
        "target-delta": 1e-5,
        "secure-aggregation": False,
    }


def test_the_run_names_the_ignored_keys_in_one_line():
    from rich.console import Console

    from fedsim.commands.execute import print_header

    console = Console(record=True, width=200)
    print_header(load_scenario("scenarios/quickstart.toml", ["privacy.mode=none"]), console)
    lines = console.export_text().splitlines()
    expected = "ignored max-grad-norm, target-epsilon (left out of the run's scenario.toml)"
    assert lines[1] == f'  privacy.mode = "none": {expected}'


def test_poisson_cohorts_are_refused_with_secagg_and_adaptive_clipping():
    assert "Flower's SecAgg+ workflow samples a fixed-size cohort" in _error(
        "federation.cohort-sampling=poisson", "privacy.secure-aggregation=true"
    )
    assert 'needs privacy.clipping = "fixed"' in _error(
        "federation.cohort-sampling=poisson",
        "privacy.mode=both",
        "privacy.user-noise-multiplier=0.5",
        "privacy.clipping=adaptive",
        "privacy.clipped-count-stddev=1.0",
    )


def test_delta_must_be_below_one_over_the_smallest_clients_examples_or_the_number_of_clients():
    check_delta(1e-5, sizes=[449, 450], num_clients=3, sample=True, user=True)
    with pytest.raises(PrivacySetupError, match=r"= 0\.5 is not below 1/n = 1/449 \(n: the smallest client"):
        check_delta(0.5, sizes=[449, 450], num_clients=3, sample=True, user=False)
    with pytest.raises(
        PrivacySetupError, match=r"1/n = 1/3 \(n: the number of clients.*1/\(10 n\) = 3\.3e-02"
    ):
        check_delta(0.4, sizes=[449, 450], num_clients=3, sample=False, user=True)


def test_a_run_with_a_delta_of_a_half_is_refused_before_training(tmp_path):
    from tests.fixtures.cli import fedsim

    proc = fedsim("run", SMOKE, "--out", str(tmp_path / "run"), "--set", "privacy.target-delta=0.5")
    assert proc.returncode == 2 and "round 1" not in proc.stdout
    assert "privacy.target-delta = 0.5 is not below 1/n = 1/449" in proc.stderr
    assert "use 1/(10 n) = 2.2e-04 or smaller" in proc.stderr and "Traceback" not in proc.stderr


def test_krum_needs_a_cohort_that_leaves_it_neighbours_and_mu_must_be_positive():
    message = _error("federation.strategy=krum", "federation.num-malicious-nodes=1")
    assert "a cohort of n = 3 with num-malicious-nodes f = 1 leaves 0" in message and "at least 4" in message
    assert "proximal-mu: Input should be greater than 0" in _error(
        "federation.strategy=fedprox", "federation.proximal-mu=0"
    )
