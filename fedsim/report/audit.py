"""The report's "Membership-inference audit" section: one row per attack the run's audit ran."""

from __future__ import annotations

from fedsim.audit.registry import get_attack
from fedsim.report.tables import escape, table
from fedsim.results import AttackResult, AuditSummary, RunSummary

_HEADER = [
    "attack",
    "AUC",
    "TPR @ 1 % FPR",
    "TPR @ 0.1 % FPR",
    "empirical ε lower bound",
    "sample-level ε",
]
_METHOD = (
    "The empirical ε lower bounds hold together with confidence {confidence:g} at δ "
    "{delta:g}: ε ≥ max(ln((1 − δ − FPR⁺)/FNR⁺), ln((1 − δ − FNR⁺)/FPR⁺)), the hypothesis-"
    "testing view of DP (Kairouz et al. 2015, https://arxiv.org/abs/1311.0776, Thm 2.1) as used for "
    "auditing by Jagielski et al. 2020 (https://arxiv.org/abs/2006.07709). FPR⁺ and FNR⁺ are "
    "Clopper–Pearson upper bounds on half of the examples, at a threshold chosen on the other half, "
    "each attack at 1 − (1 − confidence)/attacks (Bonferroni). "
    "It treats every example as an independent trial, which a single training run does not give "
    "(Steinke et al. 2023, https://arxiv.org/abs/2305.08846), so it is an estimate for comparing "
    "runs, not a certified bound; and a weak attack gives a small bound even for a model that leaks."
)


def accountant_epsilon(summary: RunSummary) -> float | None:
    """The accountant's ε that bounds an attack on one example: the sample-level ε (max over clients).

    User-level DP (add or remove one client) bounds adding or removing one
    example of a client only through group privacy, as a change of that
    client's data: 2 × the user-level ε (at a larger δ). The report shows that
    figure but does not compare the audit with it. None without sample-level DP.

    Args:
        summary: the run's summary.
    """
    return summary.privacy.epsilon_max


def _description(name: str) -> str:
    """The report's description of the attack ``name`` (its name if it is no longer registered)."""
    try:
        return get_attack(name).description
    except ValueError:
        return name


def _row(a: AttackResult, eps: float | None) -> list:
    return [
        _description(a.attack),
        f"{a.auc:.3f}",
        f"{100 * a.tpr_at_1pct_fpr:.1f} %",
        f"{100 * a.tpr_at_01pct_fpr:.1f} %",
        f"{a.epsilon_lower_bound:.3f}",
        None if eps is None else f"{eps:.3f}",
    ]


def audit_section(summary: RunSummary) -> str:
    """Markdown for the audit recorded in ``summary.audit`` (a note if there is none).

    Args:
        summary: the run's summary.

    Returns:
        The section's Markdown, without its heading.
    """
    audit = summary.audit
    if not audit:
        return "No audit was run (`audit.enabled = false`, or no client trained).\n"
    if audit.error:
        return f"{escape(audit.error)}; the run's other results are complete.\n"
    eps = accountant_epsilon(summary)
    lines = [
        f"The final global model was attacked with {audit.members} members (training examples of "
        f"clients that trained, drawn at random) and {audit.nonmembers} non-members (test examples). "
        "AUC 0.5 is guessing.",
        "",
        table(_HEADER, [_row(a, eps) for a in audit.attacks]),
        "",
        _METHOD.format(confidence=audit.confidence, delta=audit.delta),
    ]
    return "\n".join(lines + _caveats(summary, audit, eps)) + "\n"


def _caveats(summary: RunSummary, audit: AuditSummary, eps: float | None) -> list[str]:
    """The paragraphs after the method: shadow models, notes, small audits, user-level DP, a bound above ε."""
    lines = []
    if audit.shadow_models:
        lines += [
            "",
            f"LiRA used {audit.shadow_models} shadow models, trained without DP "
            f"({audit.shadow_training}) on the member pool less the audited members plus half "
            "of the audited examples each; a mismatch with the audited training only weakens the attack.",
        ]
    lines += [f"\n**{escape(note)}**" for note in audit.notes]
    if audit.nonmembers < 1000:
        lines += [
            "",
            f"With {audit.nonmembers} non-members the smallest non-zero FPR is 1/{audit.nonmembers}, "
            "so TPR @ 0.1 % FPR is the TPR at FPR 0.",
        ]
    user_epsilon = summary.privacy.user_epsilon
    if eps is None and user_epsilon is not None:
        lines += [
            "",
            f"Only user-level DP protected this run: adding or removing one example changes one client's "
            f"data, which user-level DP bounds by group privacy at 2 × ε = {2 * user_epsilon:.3f} "
            "(at a larger δ). The audit is not compared with it.",
        ]
    above = [a for a in audit.attacks if eps is not None and a.epsilon_lower_bound > eps]
    if above:
        lines += [
            "",
            f"**The empirical lower bound exceeds the accountant's ε {eps:.3f}** "
            f"({', '.join(a.attack for a in above)}). At confidence {audit.confidence:g} this "
            "happens by chance in at most 1 audit in "
            f"{round(1 / (1 - audit.confidence))}; otherwise the accounting or the mechanism is wrong.",
        ]
    return lines
