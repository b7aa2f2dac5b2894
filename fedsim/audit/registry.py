"""The membership-inference attacks an audit runs, in run order.

Adding an attack: one module in :mod:`fedsim.audit.attacks` with an
:class:`~fedsim.audit.attacks.Attack` subclass, and its line in :data:`ATTACKS`.
The audit, ``summary.json``, the reports and a sweep's ``runs.csv`` column
``auc_<name>`` follow from it.
"""

from __future__ import annotations

from fedsim.audit.attacks.base import Attack
from fedsim.audit.attacks.lira import LiraAttack
from fedsim.audit.attacks.loss import LossAttack
from fedsim.audit.spec import AuditSpec

ATTACKS: tuple[type[Attack], ...] = (
    LossAttack,  # first: its scores are computed before LiRA trains its shadow models
    LiraAttack,
)
"""Every attack, in the order an audit runs them."""


def available_attacks() -> tuple[str, ...]:
    """The attacks' names, in run order.

    Example:
        >>> available_attacks()[:2]
        ('loss', 'lira')
    """
    return tuple(cls.name for cls in ATTACKS)


def get_attack(name: str) -> type[Attack]:
    """The attack class called ``name``.

    Raises:
        ValueError: if no attack has that name.

    Example:
        >>> get_attack("lira").label
        'LiRA'
    """
    for cls in ATTACKS:
        if cls.name == name:
            return cls
    raise ValueError(f"unknown attack {name!r}; available: {', '.join(available_attacks())}")


def create_attacks(spec: AuditSpec) -> list[Attack]:
    """A new instance of every attack that ``spec`` asks for (:meth:`Attack.applies`), in run order.

    Args:
        spec: the audit's settings.
    """
    return [attack for attack in (cls() for cls in ATTACKS) if attack.applies(spec)]
