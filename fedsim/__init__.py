"""fedsim: a privacy-preserving federated learning simulator.

The pipeline runs one way (see ``shared/STYLE.md``): scenario → data →
partition → client training → privacy → aggregation → simulation → results →
report. Flower and Ray are used only in :mod:`fedsim.simulation`, Opacus only in
:mod:`fedsim.privacy`.
"""

__version__ = "0.1.0"
