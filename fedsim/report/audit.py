"""The report's "Membership-inference audit" section."""

from __future__ import annotations

from typing import Any

from fedsim.report.tables import escape, table

_ATTACKS = {
    "loss": "loss threshold (Yeom et al. 2018): a low loss means member",
    "lira": "LiRA (Carlini et al. 2022): likelihood ratio against shadow models trained with and without "
    "each example",
}


def accountant_epsilon(summary: dict[str, Any]) -> float | None:
    """The accountant's ε that bounds an attack on one example: the sample-level ε (max over clients).

    User-level DP (add or remove one client) bounds adding or removing one
    example of a client only through group privacy, as a change of that
    client's data: 2 × the user-level ε (at a larger δ). The report shows that
    figure but does not compare the audit with it. None without sample-level DP.
    """
    return summary.get("epsilon_max")


def audit_section(summary: dict[str, Any]) -> str:
    """Markdown for the audit recorded in ``summary["audit"]`` (a note if there is none)."""
    audit = summary.get("audit")
    if not audit:
        return "No audit was run (`audit.enabled = false`, or no client trained).\n"
    if audit.get("error"):
        return f"{escape(audit['error'])}; the run's other results are complete.\n"
    eps = accountant_epsilon(summary)
    rows = [
        [
            _ATTACKS.get(a["attack"], a["attack"]),
            f"{a['auc']:.3f}",
            f"{100 * a['tpr_at_1pct_fpr']:.1f} %",
            f"{100 * a['tpr_at_01pct_fpr']:.1f} %",
            f"{a['epsilon_lower_bound']:.3f}",
            None if eps is None else f"{eps:.3f}",
        ]
        for a in audit["attacks"]
    ]
    header = [
        "attack",
        "AUC",
        "TPR @ 1 % FPR",
        "TPR @ 0.1 % FPR",
        "empirical ε lower bound",
        "sample-level ε",
    ]
    above = [a for a in audit["attacks"] if eps is not None and a["epsilon_lower_bound"] > eps]
    lines = [
        f"The final global model was attacked with {audit['members']} members (training examples of "
        f"clients that trained, drawn at random) and {audit['nonmembers']} non-members (test examples). "
        "AUC 0.5 is guessing.",
        "",
        table(header, rows),
        "",
        f"The empirical ε lower bounds hold together with confidence {audit['confidence']:g} at δ "
        f"{audit['delta']:g}: ε ≥ max(ln((1 − δ − FPR⁺)/FNR⁺), ln((1 − δ − FNR⁺)/FPR⁺)), the hypothesis-"
        "testing view of DP (Kairouz et al. 2015, https://arxiv.org/abs/1311.0776, Thm 2.1) as used for "
        "auditing by Jagielski et al. 2020 (https://arxiv.org/abs/2006.07709). FPR⁺ and FNR⁺ are "
        "Clopper–Pearson upper bounds on half of the examples, at a threshold chosen on the other half, "
        "each attack at 1 − (1 − confidence)/attacks (Bonferroni). "
        "It treats every example as an independent trial, which a single training run does not give "
        "(Steinke et al. 2023, https://arxiv.org/abs/2305.08846), so it is an estimate for comparing "
        "runs, not a certified bound; and a weak attack gives a small bound even for a model that leaks.",
    ]
    if audit.get("shadow_models"):
        lines += [
            "",
            f"LiRA used {audit['shadow_models']} shadow models, trained without DP "
            f"({audit.get('shadow_training')}) on the member pool less the audited members plus half "
            "of the audited examples each; a mismatch with the audited training only weakens the attack.",
        ]
    lines += [f"\n**{escape(note)}**" for note in audit.get("notes") or []]
    if audit["nonmembers"] < 1000:
        lines += [
            "",
            f"With {audit['nonmembers']} non-members the smallest non-zero FPR is 1/{audit['nonmembers']}, "
            "so TPR @ 0.1 % FPR is the TPR at FPR 0.",
        ]
    if eps is None and summary.get("user_epsilon") is not None:
        lines += [
            "",
            f"Only user-level DP protected this run: adding or removing one example changes one client's "
            f"data, which user-level DP bounds by group privacy at 2 × ε = {2 * summary['user_epsilon']:.3f} "
            "(at a larger δ). The audit is not compared with it.",
        ]
    if above:
        lines += [
            "",
            f"**The empirical lower bound exceeds the accountant's ε {eps:.3f}** "
            f"({', '.join(a['attack'] for a in above)}). At confidence {audit['confidence']:g} this "
            "happens by chance in at most 1 audit in "
            f"{round(1 / (1 - audit['confidence']))}; otherwise the accounting or the mechanism is wrong.",
        ]
    return "\n".join(lines) + "\n"
