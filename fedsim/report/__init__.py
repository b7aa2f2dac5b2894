"""Reports rendered from a saved run directory (never from live objects)."""

from fedsim.report.render import render_report

__all__ = ["render_report"]
