"""Privacy accountants behind one interface, by name: ``rdp``, ``prv`` (Opacus) and ``pld`` (dp_accounting).

Example:
    >>> acct = create_accountant("pld")
    >>> acct.epsilon((), delta=1e-5), acct.epsilon(((0.0, 0.1, 3),), delta=1e-5)
    (0.0, inf)
"""

from fedsim.privacy.accountants.base import Accountant, HistoryEntry
from fedsim.privacy.accountants.pld import PldAccountant
from fedsim.privacy.accountants.prv import PrvAccountant
from fedsim.privacy.accountants.rdp import RdpAccountant
from fedsim.privacy.accountants.registry import ACCOUNTANTS, available_accountants, create_accountant

__all__ = [
    "ACCOUNTANTS",
    "Accountant",
    "HistoryEntry",
    "PldAccountant",
    "PrvAccountant",
    "RdpAccountant",
    "available_accountants",
    "create_accountant",
]
