"""Markdown tables for reports."""

from __future__ import annotations


def fmt(value, digits: int = 4) -> str:
    """One table cell: ``–`` for None, floats to ``digits`` significant digits, ``|`` escaped.

    Example:
        >>> fmt(None), fmt(3.14159, 3), fmt(7)
        ('–', '3.14', '7')
    """
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value).replace("|", "\\|")  # a cell must not end the Markdown table cell


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table: ``header`` then one line per row, each cell through :func:`fmt`."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
