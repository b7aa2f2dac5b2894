from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from fedsim.report.tables import fmt, table

MD = MarkdownIt("commonmark", {"html": False}).enable("table")

# Printable text (no control characters or Unicode spaces, which Markdown trims differently at a
# cell's ends) mixed with every character that means something to Markdown, plus line breaks.
TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"))
    | st.sampled_from(list(" \n\r|\\`*_[]()<>&!~#-=:;.'\"")),
    max_size=40,
)


def cells(markdown: str) -> list[list]:
    """Each rendered cell's inline tokens, row by row (header first)."""
    rows, row = [], None
    for token in MD.parse(markdown):
        if token.type == "tr_open":
            row = []
            rows.append(row)
        elif token.type == "inline" and row is not None:
            row.append(token.children)
    return rows


@given(TEXT, TEXT)
def test_any_text_is_one_literal_cell(left, right):
    # Arrange
    markdown = table(["a", "b"], [[left, right]])
    # Act
    rows = cells(markdown)
    # Assert: two rows of two cells; each cell exactly the text (line breaks as spaces), no markup
    assert [len(r) for r in rows] == [2, 2]
    for children, text in zip(rows[1], (left, right), strict=True):
        assert {c.type for c in children} <= {"text"}
        expected = text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ").strip(" ")
        assert "".join(c.content for c in children) == expected


def test_pipe_and_newline_in_a_cell():
    # Arrange / Act
    line = table(["user"], [["Ex|o\nline 2"]]).splitlines()[2]
    # Assert
    assert line == "| Ex\\|o line 2 |"


def test_markup_is_escaped_but_intraword_underscore_kept():
    # Arrange / Act / Assert
    assert fmt("eps-1_dirichlet-0.1") == "eps-1_dirichlet-0.1"
    assert fmt("[x](http://e) _a_ *b* `c` <d> &amp; a\\|") == (
        "\\[x\\](http://e) \\_a\\_ \\*b\\* \\`c\\` \\<d> \\&amp; a\\\\\\|"
    )
    assert fmt(None) == "–" and fmt(0.123456) == "0.1235" and fmt(3) == "3"
