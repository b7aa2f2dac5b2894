"""The report's "Privacy" section: what was protected, how, and what each client spent."""

from __future__ import annotations

from collections import defaultdict

from fedsim.report.tables import fmt, table
from fedsim.results import PrivacySummary, RunResult, RunSummary

_GUARANTEES = {
    "sample": (
        "**Sample-level DP** (DP-SGD with Opacus on every client). Unit of privacy: *one training "
        "example*. Neighbouring relation: a client's data set with one example added or removed. "
        "Each client's ε bounds what the sequence of models it sent reveals about any one of its "
        "examples. It does not bound what they reveal about the client's data as a whole. The training "
        "loss and example count each client reports go to the server unprotected, outside the guarantee."
    ),
    "user": (
        "**User-level DP** (DP-FedAvg with Flower's clipping and noise on the aggregate). Unit of "
        "privacy: *one client's whole data set*. Neighbouring relation: the federation with one client "
        "added or removed. ε bounds what the sequence of global models reveals about whether any one "
        "client took part. The server sees each client's update unless it is clipped on the client and "
        "aggregated securely: the guarantee covers the released global models, not the server's view, "
        "nor the training loss and example count each client reports (unprotected, as in Flower's wrappers)."
    ),
}


def _mode_text(mode: str, secure_aggregation: bool = False) -> str:
    """What the privacy mode protects, and what it does not."""
    if mode == "none":
        return (
            "**No differential privacy.** Clients trained with plain SGD, so no ε bound holds for any "
            "example or client. Federated learning alone keeps raw data on the clients but not what "
            "the updates reveal about it"
            + (
                "; secure aggregation (SecAgg+) hid each update from the server, not from the global model."
                if secure_aggregation
                else "."
            )
        )
    parts = [_GUARANTEES[level] for level in ("sample", "user") if mode in (level, "both")]
    return "\n\n".join(parts)


def _settings(p: PrivacySummary, scenario: dict) -> list[str]:
    """The privacy settings, one line each: accountant and δ, each level's mechanism, SecAgg+."""
    lines = []
    if p.accountant:
        lines.append(
            f"Accountant: **{p.accountant.upper()}**, "
            f"every ε at δ = {p.delta:g}, composed over "
            "the real history (noise multiplier, sampling rate, steps) of every round."
        )
    if p.max_grad_norm is not None:
        lines.append(
            f"Sample level: max grad norm {fmt(p.max_grad_norm)}, Poisson sampling at each client's rate "
            f"q = 1/ceil(examples/batch), Opacus grad-sample mode `{p.grad_sample_mode}`, "
            + (
                f"fixed noise multiplier {fmt(scenario['noise-multiplier'])}. "
                if scenario.get("noise-multiplier") is not None
                else f"noise calibrated for {p.calibrate_for}. "
            )
            + "A client's ε covers only the rounds it trained in; being sampled into a cohort is not "
            "counted as amplification. Clients whose budget is spent are still drawn into cohorts and "
            "then skip, so late cohorts can be smaller."
        )
    if p.user_noise_multiplier is not None:
        lines.append(_user_level_settings(p))
    lines.append(
        "Secure aggregation (SecAgg+): "
        + (
            "on: the server learns only the sum of the cohort's updates."
            if p.secure_aggregation
            else "off: the server sees every client's update."
        )
    )
    return lines


def _user_level_settings(p: PrivacySummary) -> str:
    """User-level DP's mechanism, and which guarantee its ε is (exact, or the Poisson approximation)."""
    z = fmt(p.user_noise_multiplier)
    head = f"User level: {p.clipping} clipping on the {p.clip_on}, noise multiplier {z}, "
    if p.cohort_sampling == "poisson":
        return head + (
            f"Poisson sampling of clients at q = {fmt(p.client_sample_rate)} (each client joins a round "
            "independently; a round nobody trained in still releases the noise). The sum of the updates "
            "is divided by a fixed number (the cohort size of fixed sampling, about the expected cohort), "
            "so each round is exactly a Poisson-sampled Gaussian: **ε is exact accounting**, no "
            "approximation of the sampling (the accountant's bound, adding or removing one client's data; "
            "the cohorts and the noise are drawn from the scenario's seed, which must stay secret)."
        )
    exact = (
        f" A bound proved for fixed-size cohorts, under **replacing** one client's data (dp_accounting's "
        f"RDP analysis of sampling without replacement, Wang et al. 2019): **ε "
        f"{p.user_epsilon_replace_one:.3f}** (replacing is removing one client and adding another, so it "
        "is not comparable one to one with the ε above)."
        if p.user_epsilon_replace_one is not None
        else ""
    )
    return head + (
        f"a fixed-size cohort each round, q = {fmt(p.client_sample_rate)} (the cohort's share of all "
        "clients). **This ε is approximate**: the accountant treats the cohort as Poisson-sampled at rate q "
        "(adding or removing one client), the usual approximation (McMahan et al. 2018). Each round is "
        "accounted with the noise it really had (a round that averaged fewer clients had less)."
        + exact
        + ' Set federation.cohort-sampling = "poisson" for an exact ε.'
    )


def _headline(s: RunSummary) -> list[str]:
    """The ε spent at each level against its budget, and an early stop."""
    p, lines = s.privacy, []
    if p.epsilon_max is not None:
        budget = "per tier, below" if p.tiers else fmt(p.target_epsilon)
        lines.append(
            f"**Sample-level ε (max over clients): {p.epsilon_max:.3f}** "
            f"(mean over clients that trained {p.epsilon_mean:.3f}; budget {budget})."
        )
    if p.user_epsilon is not None:
        lines.append(
            f"**User-level ε: {p.user_epsilon:.3f}** (budget {fmt(p.user_target_epsilon)})"
            + (
                ": **above the budget**: clients failed during a round, so it averaged fewer updates, with "
                "less noise per update than the check before the round allowed for."
                if p.user_budget_exceeded
                else "."
            )
        )
    if s.stop_reason:
        lines.append(f"**The run stopped early** ({s.stop_reason}).")
    return lines


def _tiers(result: RunResult) -> str:
    """The subsection "Budget tiers" ("" without tiers)."""
    groups = defaultdict(list)
    for client in result.clients:
        if client.tier is not None:
            groups[client.tier].append(client)
    if not groups:
        return ""
    uniform = result.summary.privacy.privacy_mode in ("user", "both")  # each update weighs 1

    def weight(c) -> float:
        return c.rounds_trained if uniform else c.examples * c.rounds_trained

    mass = sum(weight(c) for c in result.clients) or 1
    rows = []
    for name, members in groups.items():
        eps = [c.epsilon for c in members if c.epsilon is not None and c.rounds_trained > 0]
        rows.append(
            [
                name,
                len(members),
                members[0].budget,
                sum(c.rounds_trained for c in members),
                sum(eps) / len(eps) if eps else None,
                max(eps, default=None),
                f"{100 * sum(weight(c) for c in members) / mass:.1f} %",
                sum(1 for c in members if c.stopped_round is not None),
            ]
        )
    return (
        "### Budget tiers\n\n"
        + table(_TIER_HEADER, rows)
        + "\n\nShare of the aggregate: the tier's share of the FedAvg weight summed over the run "
        "(examples × rounds trained; rounds trained under user-level DP, where each update weighs 1), "
        "i.e. its contribution to the global model.\n"
    )


_TIER_HEADER = [
    "tier",
    "clients",
    "ε budget",
    "rounds trained (sum)",
    "ε mean (clients that trained)",
    "ε max",
    "share of the aggregate",
    "clients stopped",
]
_ROUND_HEADER = [
    "round",
    "σ (DP-SGD, mean)",
    "max grad norm",
    "sample ε max",
    "user noise multiplier",
    "user clipping norm",
    "user ε",
    "clients trained",
    "skipped (budget spent)",
]


def privacy_section(result: RunResult) -> str:
    """Markdown for the report's "Privacy" section.

    It states the mode and what each guarantee protects, the accountant and δ,
    the noise multiplier and clipping norm per round, the per-client ε table,
    budget tiers and budget exhaustion events.

    Args:
        result: a complete run (as :func:`fedsim.results.load_run` returns it).

    Returns:
        The section's Markdown, without its heading.
    """
    s = result.summary
    mode = s.privacy.privacy_mode
    parts = [_mode_text(mode, s.privacy.secure_aggregation), ""]
    if mode == "none":
        return "\n".join(parts)
    privacy_keys = result.scenario.get("privacy", {})
    parts += [*(f"- {line}" for line in _settings(s.privacy, privacy_keys)), ""]
    parts += [line for item in _headline(s) for line in (item, "")]
    parts += _per_round(result)
    if s.privacy.epsilon_max is not None:
        parts += [*_per_client(result), *_exhaustion(result)]
        tiers = _tiers(result)
        if tiers:
            parts += [tiers, ""]
    return "\n".join(parts)


def _per_round(result: RunResult) -> list[str]:
    """The subsection "Per round": each level's noise, clipping and ε, and the clients that trained."""
    rows = [
        [
            r.round,
            r.noise_multiplier,
            r.max_grad_norm,
            r.epsilon_max,
            r.user_noise_multiplier,
            r.clipping_norm,
            r.user_epsilon,
            r.clients_trained,
            r.clients_skipped,
        ]
        for r in result.rounds
        if r.round > 0
    ]
    return ["### Per round", "", table(_ROUND_HEADER, rows), ""]


def _per_client(result: RunResult) -> list[str]:
    """The subsection "Per client": each client's budget, rounds, ε, σ and q (user and tier if any)."""
    clients = result.clients
    columns = {
        "client": [c.client for c in clients],
        "user": result.summary.client_users or [None] * len(clients),
        "tier": [c.tier for c in clients],
        "ε budget": [c.budget for c in clients],
        "rounds trained": [c.rounds_trained for c in clients],
        "ε spent": [c.epsilon for c in clients],
        "σ": [c.noise_multiplier for c in clients],
        "q": [c.sample_rate for c in clients],
        "stopped at round": [c.stopped_round for c in clients],
    }
    shown = {k: v for k, v in columns.items() if k not in ("user", "tier") or any(x is not None for x in v)}
    return [
        "### Per client",
        "",
        table(list(shown), [list(row) for row in zip(*shown.values(), strict=True)]),
        "",
    ]


def _exhaustion(result: RunResult) -> list[str]:
    """The subsection "Budget exhaustion": which client stopped before which round."""
    stopped = sorted((c.stopped_round, c.client) for c in result.clients if c.stopped_round is not None)
    return [
        "### Budget exhaustion",
        "",
        (
            "\n".join(
                f"- before round {r}: client {c} stopped (its next round would have exceeded its budget)"
                for r, c in stopped
            )
            if stopped
            else "No client's budget ran out."
        ),
        "",
    ]
