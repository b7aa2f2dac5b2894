"""Privacy modes end to end through Flower and Ray: budgets enforced, tiers, user-level DP, both."""

import json

import dp_accounting
import pytest
from dp_accounting import NeighboringRelation
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant

from fedsim.privacy import compute_epsilon
from tests.fixtures.cli import fedsim, read_csv

# digits-smoke: 3 clients of 449 examples, batch 128 -> q = 1/4, 5 local epochs -> 20 steps per round.
# At sigma = 1.0 a client's RDP epsilon is 9.09 after 1 round, 12.53 after 2, 15.36 after 3.
PER_ROUND = (1.0, 0.25, 20)


def run(tmp_path, *overrides, privacy: str | None = None):
    """Run digits-smoke with ``--set`` overrides, or with its [privacy] section replaced by ``privacy``."""
    out, scenario = tmp_path / "run", "scenarios/digits-smoke.toml"
    if privacy is not None:
        text = open(scenario, encoding="utf-8").read()
        head, _, tail = text.partition("[privacy]")
        scenario = tmp_path / "digits.toml"
        scenario.write_text(head + "[privacy]\n" + privacy + "\n[resources]" + tail.split("[resources]")[1])
    proc = fedsim("run", str(scenario), "--out", str(out), *(a for o in overrides for a in ("--set", o)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    return out, json.loads((out / "summary.json").read_text()), proc.stdout


@pytest.mark.slow
def test_spent_budgets_stop_the_run(tmp_path):
    # Arrange: a budget of 13 pays for two rounds, not three
    out, summary, stdout = run(
        tmp_path, "privacy.noise-multiplier=1.0", "privacy.target-epsilon=13.0", "privacy.min-clients=1"
    )
    # Assert: round 3 would overspend for everyone, so the run stops after round 2, complete
    assert summary["status"] == "complete" and summary["rounds_completed"] == 2
    assert summary["rounds_planned"] == 3 and summary["clients_stopped"] == 3
    assert "before round 3: 0 client(s) had sample-level budget left" in summary["stop_reason"]
    assert "stopped early" in stdout
    clients = read_csv(out / "clients.csv")
    assert [c["stopped_round"] for c in clients] == ["3", "3", "3"]
    two_rounds = compute_epsilon((PER_ROUND, PER_ROUND), delta=1e-5, accountant="rdp")
    assert all(
        float(c["epsilon"]) == pytest.approx(two_rounds) and float(c["budget"]) == 13.0 for c in clients
    )
    assert two_rounds <= 13.0 < compute_epsilon((PER_ROUND,) * 3, delta=1e-5, accountant="rdp")
    report = (out / "report.md").read_text()
    assert "round 3: client 0 stopped" in report and "The run stopped early" in report


@pytest.mark.slow
def test_tiers_stop_only_the_strict_clients_and_the_run_goes_on(tmp_path):
    # Arrange: one client in a tier of ε 10 (one round), two in a tier of ε 20 (all three)
    out, summary, _ = run(
        tmp_path,
        privacy=(
            'noise-multiplier = 1.0\nwhen-too-few = "continue"\n'
            '[[privacy.tiers]]\nname = "strict"\nshare = 0.3333333333\ntarget-epsilon = 10.0\n'
            '[[privacy.tiers]]\nname = "loose"\nshare = 0.6666666667\ntarget-epsilon = 20.0\n'
        ),
    )
    # Assert
    assert summary["rounds_completed"] == 3 and summary["stop_reason"] is None
    clients = read_csv(out / "clients.csv")
    strict = [c for c in clients if c["tier"] == "strict"]
    loose = [c for c in clients if c["tier"] == "loose"]
    assert len(strict) == 1 and len(loose) == 2
    assert strict[0]["rounds_trained"] == "1" and strict[0]["stopped_round"] == "2"
    assert all(c["rounds_trained"] == "3" and c["stopped_round"] == "" for c in loose)
    assert float(strict[0]["epsilon"]) == pytest.approx(
        compute_epsilon((PER_ROUND,), delta=1e-5, accountant="rdp")
    )
    rounds = read_csv(out / "rounds.csv")
    assert [int(r["clients_skipped"]) for r in rounds[1:]] == [0, 1, 1]
    assert [int(r["clients_trained"]) for r in rounds[1:]] == [3, 2, 2]
    report = (out / "report.md").read_text()
    assert "### Budget tiers" in report and "| strict | 1 | 10 | 1 |" in report


@pytest.mark.slow
def test_user_level_dp_is_accounted_per_round(tmp_path):
    # Arrange: user-level only, server-side fixed clipping, 3 clients all sampled (q = 1)
    out, summary, _ = run(
        tmp_path,
        "federation.learning-rate=0.1",  # 2.0 suits DP-SGD's clipped steps only
        privacy='mode = "user"\nuser-noise-multiplier = 2.0\nclipping-norm = 0.5\n',
    )
    # Assert: every round releases the full cohort, so z stays 2.0; ε is Opacus's over 3 rounds at q = 1
    assert summary["epsilon_max"] is None and summary["privacy_mode"] == "user"
    rounds = read_csv(out / "rounds.csv")
    assert [float(r["user_noise_multiplier"]) for r in rounds[1:]] == [2.0, 2.0, 2.0]
    assert [float(r["clipping_norm"]) for r in rounds[1:]] == [0.5, 0.5, 0.5]
    expected = compute_epsilon(((2.0, 1.0, 3),), delta=1e-5, accountant="rdp")
    assert summary["user_epsilon"] == pytest.approx(expected)
    # A fixed-size cohort: that ε is labelled approximate, beside dp_accounting's replace-one bound
    # (three Gaussians of std 2.0 * C on a sum whose replace-one sensitivity is 2C: multiplier 1.0)
    accountant = RdpAccountant(neighboring_relation=NeighboringRelation.REPLACE_ONE)
    accountant.compose(dp_accounting.GaussianDpEvent(1.0), 3)
    assert summary["cohort_sampling"] == "fixed" and summary["user_epsilon_exact"] is False
    assert summary["user_epsilon_replace_one"] == pytest.approx(accountant.get_epsilon(1e-5))
    report = (out / "report.md").read_text()
    assert "one client's whole data set" in report and "one training example" not in report
    assert "**This ε is approximate**" in report and "cohort-sampling" in report


@pytest.mark.slow
def test_poisson_cohorts_make_user_level_epsilon_exact(tmp_path):
    # Arrange: 5 clients, each joins a round with probability 0.4; seed 0 draws cohorts of 1, 3, 0, 3
    out, summary, _ = run(
        tmp_path,
        "federation.num-clients=5",
        "federation.fraction-train=0.4",
        "federation.cohort-sampling=poisson",
        "federation.rounds=4",
        "federation.local-epochs=1",
        "federation.learning-rate=0.1",
        privacy='mode = "user"\naccountant = "pld"\nuser-noise-multiplier = 2.0\nclipping-norm = 0.5\n',
    )
    rounds = read_csv(out / "rounds.csv")[1:]
    # Assert: the empty round trains nobody yet releases (the noise), so every round is accounted at z
    assert [int(r["clients_trained"]) for r in rounds] == [1, 3, 0, 3]
    assert [float(r["user_noise_multiplier"]) for r in rounds] == [2.0] * 4
    # ε is dp_accounting's PLD of four Poisson-sampled Gaussians (q 0.4, z 2.0), computed here directly
    accountant = PLDAccountant(value_discretization_interval=1e-4)
    event = dp_accounting.PoissonSampledDpEvent(0.4, dp_accounting.GaussianDpEvent(2.0))
    accountant.compose(event, 4)
    assert summary["user_epsilon"] == pytest.approx(accountant.get_epsilon(1e-5), rel=1e-9)
    assert summary["cohort_sampling"] == "poisson" and summary["user_epsilon_exact"] is True
    assert summary["user_epsilon_replace_one"] is None and summary["client_sample_rate"] == 0.4
    assert "**ε is exact accounting**, no approximation of the sampling" in (out / "report.md").read_text()


@pytest.mark.slow
def test_both_levels_with_client_side_adaptive_clipping(tmp_path):
    out, summary, _ = run(
        tmp_path,
        privacy=(
            'mode = "both"\ntarget-epsilon = 8.0\nuser-noise-multiplier = 0.5\nclipping = "adaptive"\n'
            'clip-on = "client"\nclipped-count-stddev = 1.0\nclipping-norm = 0.1\n'
        ),
    )
    rounds = read_csv(out / "rounds.csv")[1:]
    norms = [float(r["clipping_norm"]) for r in rounds]
    zs = [float(r["user_noise_multiplier"]) for r in rounds]
    # The norm starts at 0.1 and adapts every round (its direction, from a noisy count drawn with
    # Flower's unseeded NumPy generator, is tested in tests/contracts/test_user_dp_contract.py)
    assert norms[0] == 0.1 and len(set(norms)) == 3
    # Every round averages the full cohort, so each release has z = 0.5 (update and count noise together)
    assert zs == pytest.approx([0.5, 0.5, 0.5])
    assert summary["user_epsilon"] == pytest.approx(
        compute_epsilon(((0.5, 1.0, 3),), delta=1e-5, accountant="rdp")
    )
    assert 0 < summary["epsilon_max"] <= 8.0
    report = (out / "report.md").read_text()
    assert "one client's whole data set" in report and "one training example" in report


@pytest.mark.slow
@pytest.mark.parametrize("clip_on", ["server", "client"])
def test_skipped_clients_under_both_levels_leave_the_average_and_lower_the_release_noise(tmp_path, clip_on):
    # Arrange: tiers of budget 10 (one DP-SGD round: 9.09) and 20 (all three); user-level DP on top.
    # A skipped client's unchanged model is a zero update, which Flower's clipping cannot divide by.
    out, summary, _ = run(
        tmp_path,
        privacy=(
            f'mode = "both"\nnoise-multiplier = 1.0\nwhen-too-few = "continue"\nclip-on = "{clip_on}"\n'
            "user-noise-multiplier = 2.0\nclipping-norm = 1.0\n"
            '[[privacy.tiers]]\nname = "strict"\nshare = 0.3333333333\ntarget-epsilon = 10.0\n'
            '[[privacy.tiers]]\nname = "loose"\nshare = 0.6666666667\ntarget-epsilon = 20.0\n'
        ),
    )
    # Assert: from round 2 the strict client skips (not a failure); 2 of the 3 sampled updates are
    # averaged, with noise still scaled for 3, so those releases have z = 2.0 * 2/3
    assert summary["rounds_completed"] == 3 and summary["stop_reason"] is None
    rounds = read_csv(out / "rounds.csv")[1:]
    assert [int(r["clients_skipped"]) for r in rounds] == [0, 1, 1]
    assert [int(r["clients_failed"]) for r in rounds] == [0, 0, 0]
    zs = [float(r["user_noise_multiplier"]) for r in rounds]
    assert zs == pytest.approx([2.0, 4 / 3, 4 / 3])
    history = tuple((z, 1.0, 1) for z in (2.0, 4 / 3, 4 / 3))
    assert summary["user_epsilon"] == pytest.approx(compute_epsilon(history, delta=1e-5, accountant="rdp"))


def test_a_budget_too_small_for_one_round_is_refused_before_training(tmp_path):
    # Arrange: σ 1 costs ε 9.09 per round on digits-smoke; a budget of 5 cannot pay for one
    scenario = tmp_path / "small.toml"
    text = open("scenarios/digits-smoke.toml", encoding="utf-8").read()
    scenario.write_text(
        text.replace("target-epsilon = 8.0\n", "target-epsilon = 5.0\nnoise-multiplier = 1.0\n")
    )
    # Act
    proc = fedsim("run", str(scenario), "--out", str(tmp_path / "run"))
    # Assert
    assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr
    assert "3 client(s) cannot afford a single round (client 0: one round costs ε 9.088" in proc.stderr
    assert not (tmp_path / "run").exists()
