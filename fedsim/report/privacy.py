"""The report's "Privacy" section: what was protected, how, and what each client spent."""

from __future__ import annotations

from collections import defaultdict

from fedsim.report.tables import fmt, table
from fedsim.results import RunResult

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


def _settings(s: dict, scenario: dict) -> list[str]:
    lines = []
    if s.get("accountant"):
        lines.append(
            f"Accountant: Opacus **{s['accountant'].upper()}**, every ε at δ = {s['delta']:g}, composed over "
            "the real history (noise multiplier, sampling rate, steps) of every round."
        )
    if s.get("max_grad_norm") is not None:
        lines.append(
            f"Sample level: max grad norm {fmt(s['max_grad_norm'])}, Poisson sampling at each client's rate "
            f"q = 1/ceil(examples/batch), Opacus grad-sample mode `{s.get('grad_sample_mode')}`, "
            + (
                f"fixed noise multiplier {fmt(scenario['noise-multiplier'])}. "
                if scenario.get("noise-multiplier") is not None
                else f"noise calibrated for {s.get('calibrate_for')}. "
            )
            + "A client's ε covers only the rounds it trained in; being sampled into a cohort is not "
            "counted as amplification. Clients whose budget is spent are still drawn into cohorts and "
            "then skip, so late cohorts can be smaller."
        )
    if s.get("user_noise_multiplier") is not None:
        lines.append(
            f"User level: {s['clipping']} clipping on the {s['clip_on']}, noise multiplier "
            f"{fmt(s['user_noise_multiplier'])}, client sampling rate q = {fmt(s['client_sample_rate'])} "
            "(the cohort's share of all clients). The accountant treats the cohort as Poisson-sampled at "
            "rate q, the usual approximation: Flower samples a fixed-size cohort. Each round is accounted "
            "with the noise it really had (a round that averaged fewer clients had less)."
        )
    lines.append(
        "Secure aggregation (SecAgg+): "
        + (
            "on: the server learns only the sum of the cohort's updates."
            if s.get("secure_aggregation")
            else "off: the server sees every client's update."
        )
    )
    return lines


def _headline(s: dict) -> list[str]:
    lines = []
    if s.get("epsilon_max") is not None:
        budget = "per tier, below" if s.get("tiers") else fmt(s.get("target_epsilon"))
        lines.append(
            f"**Sample-level ε (max over clients): {s['epsilon_max']:.3f}** "
            f"(mean over clients that trained {s['epsilon_mean']:.3f}; budget {budget})."
        )
    if s.get("user_epsilon") is not None:
        target = s.get("user_target_epsilon")
        lines.append(
            f"**User-level ε: {s['user_epsilon']:.3f}** (budget {fmt(target)})"
            + (
                ": **above the budget**: clients failed during a round, so it averaged fewer updates, with "
                "less noise per update than the check before the round allowed for."
                if s.get("user_budget_exceeded")
                else "."
            )
        )
    if s.get("stop_reason"):
        lines.append(f"**The run stopped early** ({s['stop_reason']}).")
    return lines


def _tiers(result: RunResult) -> str:
    groups = defaultdict(list)
    for client in result.clients:
        if client.tier is not None:
            groups[client.tier].append(client)
    if not groups:
        return ""
    uniform = result.summary.get("privacy_mode") in ("user", "both")  # each update weighs 1

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
    header = [
        "tier",
        "clients",
        "ε budget",
        "rounds trained (sum)",
        "ε mean (clients that trained)",
        "ε max",
        "share of the aggregate",
        "clients stopped",
    ]
    return (
        "### Budget tiers\n\n"
        + table(header, rows)
        + "\n\nShare of the aggregate: the tier's share of the FedAvg weight summed over the run "
        "(examples × rounds trained; rounds trained under user-level DP, where each update weighs 1), "
        "i.e. its contribution to the global model.\n"
    )


def privacy_section(result: RunResult) -> str:
    """Markdown for the report's "Privacy" section.

    It states the mode and what each guarantee protects, the accountant and δ,
    the noise multiplier and clipping norm per round, the per-client ε table,
    budget tiers and budget exhaustion events.

    Args:
        result: a complete run (as :func:`fedsim.results.load_run` returns it).
    """
    s = result.summary
    mode = s.get("privacy_mode", "none")
    parts = [_mode_text(mode, bool(s.get("secure_aggregation"))), ""]
    if mode == "none":
        return "\n".join(parts)
    privacy_keys = result.scenario.get("privacy", {})
    parts += [*(f"- {line}" for line in _settings(s, privacy_keys)), ""]
    parts += [line for item in _headline(s) for line in (item, "")]
    per_round = [
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
    parts += [
        "### Per round",
        "",
        table(
            [
                "round",
                "σ (DP-SGD, mean)",
                "max grad norm",
                "sample ε max",
                "user noise multiplier",
                "user clipping norm",
                "user ε",
                "clients trained",
                "skipped (budget spent)",
            ],
            per_round,
        ),
        "",
    ]
    if s.get("epsilon_max") is not None:
        users = s.get("client_users") or [None] * len(result.clients)
        columns = {
            "client": [c.client for c in result.clients],
            "user": users,
            "tier": [c.tier for c in result.clients],
            "ε budget": [c.budget for c in result.clients],
            "rounds trained": [c.rounds_trained for c in result.clients],
            "ε spent": [c.epsilon for c in result.clients],
            "σ": [c.noise_multiplier for c in result.clients],
            "q": [c.sample_rate for c in result.clients],
            "stopped at round": [c.stopped_round for c in result.clients],
        }
        shown = {
            k: v for k, v in columns.items() if k not in ("user", "tier") or any(x is not None for x in v)
        }
        parts += [
            "### Per client",
            "",
            table(list(shown), [list(row) for row in zip(*shown.values(), strict=True)]),
            "",
        ]
        stopped = sorted((c.stopped_round, c.client) for c in result.clients if c.stopped_round is not None)
        parts += [
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
        tiers = _tiers(result)
        if tiers:
            parts += [tiers, ""]
    return "\n".join(parts)
