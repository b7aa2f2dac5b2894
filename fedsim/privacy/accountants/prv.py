"""Privacy-random-variable accountant (Opacus's ``PRVAccountant``)."""

from __future__ import annotations

from fedsim.privacy.accountants._opacus import OpacusAccountant


class PrvAccountant(OpacusAccountant):
    """Numerical composition of privacy random variables, through Opacus.

    Gopi et al. 2021, "Numerical Composition of Differential Privacy",
    https://arxiv.org/abs/2106.02848: each entry's privacy loss random variable
    is discretised on a grid and the composition computed with FFTs; Opacus
    returns an upper bound on ε whose numerical error is at most 0.01
    (``eps_error``). Near-tight for DP-SGD, close to :class:`~fedsim.privacy.accountants.pld.PldAccountant`.

    Example:
        >>> round(PrvAccountant().epsilon(((1.1, 0.01, 1000),), delta=1e-5), 4)
        1.5255
    """

    __slots__ = ()
    name = "prv"
