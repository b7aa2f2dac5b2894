"""The accountants fedsim knows, by name (as Opacus's ``opacus/accountants/registry.py``)."""

from __future__ import annotations

from fedsim.privacy.accountants.base import Accountant
from fedsim.privacy.accountants.pld import PldAccountant
from fedsim.privacy.accountants.prv import PrvAccountant
from fedsim.privacy.accountants.rdp import RdpAccountant

ACCOUNTANTS: dict[str, type[Accountant]] = {
    RdpAccountant.name: RdpAccountant,
    PrvAccountant.name: PrvAccountant,
    PldAccountant.name: PldAccountant,
}
"""Accountant classes by :attr:`Accountant.name`: the one list of accountant names."""


def available_accountants() -> list[str]:
    """Names of the accountants :func:`create_accountant` builds, sorted.

    Example:
        >>> {"pld", "prv", "rdp"} <= set(available_accountants())
        True
    """
    return sorted(ACCOUNTANTS)


def create_accountant(name: str) -> Accountant:
    """The accountant registered under ``name``.

    Args:
        name: one of :func:`available_accountants`.

    Returns:
        A new (stateless) accountant.

    Raises:
        ValueError: if ``name`` is not registered; the message lists the choices.

    Example:
        >>> create_accountant("rdp")
        RdpAccountant()
    """
    try:
        return ACCOUNTANTS[name]()
    except KeyError:
        raise ValueError(f"unknown accountant {name!r}; choose one of {available_accountants()}") from None
