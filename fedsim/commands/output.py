"""What the commands print: exit codes, one-line errors, a scenario's protections, a run's outcome."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from fedsim.results.records import RunSummary

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


def print_error(errors: Console, err: object, prefix: str = "") -> None:
    """Print each line of an error message as its own ``error:`` line (on stderr)."""
    for line in str(err).splitlines() or [type(err).__name__]:
        errors.print(f"[red]error:[/red] {escape(prefix + line)}")


def describe_privacy(p) -> str:
    """One line naming a scenario's privacy protections (the ``[privacy]`` section).

    Example:
        >>> from fedsim.scenario.privacy_section import PrivacySection
        >>> describe_privacy(PrivacySection.model_validate({"mode": "none"}))
        'no DP'
    """
    parts = []
    if p.is_sample_level:
        if p.tiers:
            noise = "tiers " + "/".join(f"ε {t.target_epsilon:g}" for t in p.tiers)
        else:
            noise = f"ε {p.target_epsilon:g}" if p.target_epsilon is not None else f"σ {p.noise_multiplier:g}"
        parts.append(f"sample-level DP ({noise}, δ {p.target_delta:g})")
    if p.is_user_level:
        noise = (
            f"z {p.user_noise_multiplier:g}"
            if p.user_noise_multiplier is not None
            else f"ε {p.user_target_epsilon:g}"
        )
        parts.append(f"user-level DP ({noise}, {p.clipping} clipping on the {p.clip_on})")
    if p.secure_aggregation:
        parts.append("SecAgg+")
    return " + ".join(parts) or "no DP"


def print_outcome(s: RunSummary, report: Path, console: Console, split: str = "test") -> None:
    """The closing lines of a run: stop reason, warnings, accuracy, ε, audit and the report's path.

    ``split`` names what the accuracy was measured on: ``"test"``, or ``"validation"``
    for a run with ``data.validation-fraction`` (a tuning trial).
    """
    p = s.privacy
    eps = f", ε {p.epsilon_max:.3f}" if p.epsilon_max is not None else ""
    eps += f", user-level ε {p.user_epsilon:.3f}" if p.user_epsilon is not None else ""
    eps += f" (δ {p.delta:g})" if eps else ""
    if s.stop_reason:
        console.print(f"stopped early: {s.stop_reason}", highlight=False)
    if p.user_budget_exceeded:
        console.print(
            f"warning: user-level ε {p.user_epsilon:.3f} is above privacy.user-target-epsilon = "
            f"{p.user_target_epsilon:g} (clients failed during a round; see the report's Privacy section)",
            highlight=False,
        )
    if s.diverged:
        console.print("warning: training diverged (the test loss is not finite); lower the learning rate")
    audit = ""
    for attack in s.audit.attacks if s.audit else ():
        audit += (
            f"\nmembership inference ({attack.attack} attack): AUC {attack.auc:.3f}, "
            f"empirical ε lower bound {attack.epsilon_lower_bound:.2f}"
        )
    console.print(
        f"done in {s.wall_s:.1f} s: {split} accuracy {100 * s.final_accuracy:.2f} % "
        f"(baseline {100 * s.baseline_accuracy:.2f} %){eps}{audit}",
        highlight=False,
    )
    for line in canary_lines(s):
        console.print(line, highlight=False)
    console.print(f"report: {report}", highlight=False)


def canary_lines(s: RunSummary) -> list[str]:
    """One line per canary audit: ε̂ beside the accountant's ε, in red (rich markup) when ε̂ exceeds it."""
    lines = []
    for c in s.audit.canaries if s.audit else ():
        head = f"canary audit ({c.attack}, {c.threat_model}): ε̂ {c.epsilon_lower_bound:.2f}"
        if c.epsilon is None:
            lines.append(f"{head} with {c.canaries} canaries (no DP: nothing to compare with)")
        elif c.exceeds:
            lines.append(
                f"[red]{head} above the accountant's ε {c.epsilon:.3f}: the mechanism or its accounting is "
                f"broken (or a {1 - c.confidence:.1%} chance); see the report[/red]"
            )
        else:
            lines.append(f"{head} ≤ ε {c.epsilon:.3f} (ε̂/ε {c.ratio:.2f}, {c.canaries} canaries)")
    return lines
