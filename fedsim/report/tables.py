"""Markdown tables for reports."""

from __future__ import annotations

import re

# Characters that would otherwise start Markdown markup inside a cell (the cell end ``|``, escapes,
# code spans, emphasis, links and images, autolinks, entities, strikethrough, GitHub's ``$`` maths).
# ``_`` between two letters or digits is left alone: it cannot open or close emphasis there
# (CommonMark, "left- and right-flanking delimiter runs"), so names such as ``eps-1_dirichlet-0.1``
# stay readable.
_MARKUP = re.compile(r"[\\`*\[\]<&|~$]|_(?![^\W_])|(?<![^\W_])_")
_LINE_BREAK = re.compile(r"\r\n?|\n")


def escape(text: str) -> str:
    r"""``text`` as literal Markdown inline text on one line: markup escaped, line breaks as spaces.

    Args:
        text: any string (a scenario, tier, user or class name, a value).

    Returns:
        Markdown that renders as ``text`` (line breaks shown as spaces), never as a link, image,
        raw HTML, code span or emphasis, and never ending a table cell.

    Example:
        >>> print(escape("Ex|o"), escape("<b>&amp;</b>"), escape("a\nb"), escape("eps-1_dirichlet"))
        Ex\|o \<b>\&amp;\</b> a b eps-1_dirichlet
    """
    return _MARKUP.sub(r"\\\g<0>", _LINE_BREAK.sub(" ", text))


def fmt(value, digits: int = 4) -> str:
    r"""One table cell: ``–`` for None, floats to ``digits`` significant digits, text escaped.

    Args:
        value: the cell's value: None, a float, or anything whose ``str`` is shown as text.
        digits: significant digits of a float (≥ 1).

    Returns:
        The cell's Markdown, through :func:`escape` (a ``|`` is written ``\|``, as GFM asks).

    Example:
        >>> fmt(None), fmt(3.14159, 3), fmt(7), fmt("a|b")
        ('–', '3.14', '7', 'a\\|b')
    """
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return escape(str(value))


def table(header: list[str], rows: list[list]) -> str:
    r"""A Markdown table: ``header`` then one line per row, each cell through :func:`fmt`.

    Args:
        header: the column titles (escaped like cells).
        rows: one list of values per row, as long as ``header``.

    Returns:
        The table's lines joined by newlines (no trailing newline).

    Example:
        >>> print(table(["tier", "ε"], [["a|b", 1.5]]))
        | tier | ε |
        |---|---|
        | a\|b | 1.5 |
    """
    lines = ["| " + " | ".join(fmt(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
