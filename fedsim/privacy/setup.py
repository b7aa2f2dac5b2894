"""Creating a run's privacy accounting: plans, budgets and the checks made before anything trains."""

from __future__ import annotations

from fedsim.privacy.accounting import RunPrivacy, UserLevelAccounting
from fedsim.privacy.calibrate import compute_epsilon
from fedsim.privacy.guard import BudgetGuard
from fedsim.privacy.ledger import PrivacyLedger, ReleaseLedger
from fedsim.privacy.planning import RoundPlanner
from fedsim.privacy.stopping import StoppingRule
from fedsim.privacy.user_level import cohort_size, resolve_user_noise_multiplier, user_sample_rate


class PrivacySetupError(ValueError):
    """The scenario's privacy settings cannot work for this federation (found before training)."""


def _guard(planner: RoundPlanner, ledger: PrivacyLedger, sizes: list[int]) -> BudgetGuard:
    """The budget guard over every client's planned round.

    Raises:
        PrivacySetupError: if σ cannot be calibrated, or some client cannot afford one round.
    """
    budget = planner.budget
    try:
        planned = [planner.plan(pid, n) for pid, n in enumerate(sizes)]
    except ValueError as err:
        raise PrivacySetupError(f"privacy: cannot calibrate the noise: {err}") from err
    plans = [plan for plan, _ in planned]
    budgets = [b for _, b in planned]
    cost = [
        compute_epsilon((plan.as_history_entry(),), delta=budget.target_delta, accountant=budget.accountant)
        for plan in plans
    ]
    unaffordable = [pid for pid, b in enumerate(budgets) if b is not None and cost[pid] > b]
    if unaffordable:
        first = unaffordable[0]
        raise PrivacySetupError(
            f"privacy: {len(unaffordable)} client(s) cannot afford a single round (client {first}: "
            f"one round costs ε {cost[first]:.3f}, its budget is {budgets[first]:g}); raise "
            "privacy.target-epsilon (or the tier's) or privacy.noise-multiplier"
        )
    return BudgetGuard(ledger, budgets=budgets, plans=plans)


def _user_level(planner: RoundPlanner) -> UserLevelAccounting | None:
    """The user-level ledger and nominal z of a DP-FedAvg run (None without user-level DP).

    Raises:
        PrivacySetupError: if no z reaches the user-level budget, or adaptive clipping's
            count noise is too small for z (z < clipped-count-stddev is needed).
    """
    budget, user = planner.budget, planner.budget.user_level
    if user is None:
        return None
    q = user_sample_rate(planner.num_clients, planner.fraction_train, planner.cohort_sampling)
    try:
        z = resolve_user_noise_multiplier(
            user,
            delta=budget.target_delta,
            accountant=budget.accountant,
            sample_rate=q,
            rounds=planner.rounds,
        )
    except ValueError as err:
        raise PrivacySetupError(f"privacy.user-target-epsilon: {err}") from err
    if user.clipping == "adaptive":
        stddev = user.clipped_count_stddev or cohort_size(planner.num_clients, planner.fraction_train) / 20
        if z >= stddev:
            raise PrivacySetupError(
                f"privacy: adaptive clipping with a user-level noise multiplier of {z:.3g} needs "
                f"privacy.clipped-count-stddev above {z:.3g} (now {stddev:.3g}); "
                "raise it or lower the noise"
            )
    return UserLevelAccounting(
        ledger=ReleaseLedger(delta=budget.target_delta, accountant=budget.accountant),
        sample_rate=q,
        noise_multiplier=z,
        target_epsilon=user.target_epsilon,
        cohort_sampling=planner.cohort_sampling,
        num_clients=planner.num_clients,
        cohort=cohort_size(planner.num_clients, planner.fraction_train),
    )


def check_delta(delta: float, *, sizes: list[int], num_clients: int, sample: bool, user: bool) -> None:
    """Refuse a δ that is not below 1/n, n the units one guarantee protects.

    A (ε, δ) guarantee with δ ≥ 1/n allows publishing one of n records in the clear
    (Dwork and Roth 2014, "The Algorithmic Foundations of Differential Privacy",
    §2.3: δ should be less than the inverse of any polynomial in the size of the
    database). n is the smallest client's number of training examples for
    sample-level DP (each client's guarantee covers its own examples), and the
    number of clients for user-level DP.

    Args:
        delta: the scenario's δ.
        sizes: each client's training examples.
        num_clients: clients in the federation.
        sample: whether clients train with DP-SGD (sample-level DP).
        user: whether the server applies DP-FedAvg (user-level DP).

    Raises:
        PrivacySetupError: naming ``privacy.target-delta``, the bound and a value 1/(10 n) to use.

    Example:
        >>> check_delta(1e-5, sizes=[449, 450], num_clients=2, sample=True, user=False)
        >>> check_delta(0.01, sizes=[449, 450], num_clients=2, sample=True, user=False)
        Traceback (most recent call last):
        ...
        fedsim.privacy.setup.PrivacySetupError: privacy.target-delta = 0.01 is not below 1/n = 1/449 ...
    """
    units = [(min(sizes), "the smallest client's training examples")] if sample else []
    units += [(num_clients, "the number of clients, for user-level DP")] if user else []
    for n, what in units:
        if delta >= 1 / n:
            raise PrivacySetupError(
                f"privacy.target-delta = {delta:g} is not below 1/n = 1/{n} (n: {what}): with δ that "
                f"large, publishing one of the n records in the clear would meet the guarantee; use "
                f"1/(10 n) = {1 / (10 * n):.1e} or smaller (1e-5 is usual)"
            )


def create_run_privacy(planner: RoundPlanner, *, sizes: list[int], stopping: StoppingRule) -> RunPrivacy:
    """A run's privacy accounting, after checking that its settings can work.

    0. δ must be below 1/n (:func:`check_delta`);
    1. sample level: plan every client's DP-SGD round (σ calibrated to its
       budget), refuse a run where some client cannot afford a single round, and
       guard every client's budget;
    2. user level: calibrate DP-FedAvg's z to the user-level budget over the
       run's rounds, at client sampling rate cohort / clients (fixed cohorts) or
       ``fraction_train`` (Poisson sampling).

    Args:
        planner: the run's per-client DP-SGD planner (it holds the privacy budget).
        sizes: each client's training examples, by partition id (each ≥ 1).
        stopping: when too few clients with sample-level budget left end the run.

    Raises:
        PrivacySetupError: naming the scenario key to change.
    """
    budget = planner.budget
    check_delta(
        budget.target_delta,
        sizes=sizes,
        num_clients=planner.num_clients,
        sample=budget.is_sample_level,
        user=budget.user_level is not None,
    )
    ledger = guard = None
    if budget.is_sample_level:
        ledger = PrivacyLedger(delta=budget.target_delta, accountant=budget.accountant)
        guard = _guard(planner, ledger, sizes)
    return RunPrivacy(
        ledger=ledger,
        stopping=stopping,
        guard=guard,
        user=_user_level(planner),
        max_grad_norm=budget.max_grad_norm if budget.is_sample_level else None,
    )
