"""Membership-inference attacks, one module each, behind :mod:`fedsim.audit.registry`."""

from fedsim.audit.attacks.base import Attack, AttackContext, Scores
from fedsim.audit.attacks.lira import LiraAttack
from fedsim.audit.attacks.loss import LossAttack

__all__ = ["Attack", "AttackContext", "LiraAttack", "LossAttack", "Scores"]
