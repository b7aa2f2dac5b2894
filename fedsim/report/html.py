"""A report's Markdown as one self-contained, escaped HTML file."""

from __future__ import annotations

import base64
import html
import mimetypes
from pathlib import Path
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

# Scripts, fonts, frames and every fetch are refused even if markup ever slipped through;
# images may only be the data URIs written below.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #1b1b1b; }
table { border-collapse: collapse; margin: 1rem 0; display: block; overflow-x: auto; }
th, td { border: 1px solid #c8c8c8; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
tbody tr:nth-child(even) { background: #fafafa; }
img { max-width: 100%; height: auto; }
code { background: #f0f0f0; padding: 0 0.2rem; }
"""


def _data_uri(src: str, base_dir: Path) -> str:
    """The image file ``src`` (relative to ``base_dir``) as a base64 ``data:`` URI."""
    parts = urlsplit(src)
    if parts.scheme or parts.netloc or parts.query or parts.fragment or src.startswith("/"):
        raise ValueError(f"image {src!r}: only relative paths of files in {base_dir} can be embedded")
    root = base_dir.resolve()
    path = (root / unquote(parts.path)).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"image {src!r} lies outside {base_dir}")
    mime, _ = mimetypes.guess_type(path.name)
    if mime is None or not mime.startswith("image/"):
        raise ValueError(f"image {src!r}: not an image file name (expected e.g. .png)")
    if not path.is_file():
        raise FileNotFoundError(f"image {src!r} not found in {base_dir}: the HTML report embeds every image")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _embed(tokens: list[Token], base_dir: Path) -> None:
    """Inline every image as a data URI and unwrap every link to its text, in place."""
    for token in tokens:
        if token.children is None:
            continue
        kept = []
        for child in token.children:
            if child.type == "image":
                child.attrSet("src", _data_uri(str(child.attrGet("src")), base_dir))
            if child.type not in ("link_open", "link_close"):
                kept.append(child)
        token.children = kept


def write_html(markdown_text: str, *, out_path: Path, base_dir: Path, title: str) -> Path:
    """Write a report's Markdown as one self-contained HTML file.

    Pipeline:
        1. Parse the Markdown as CommonMark plus GFM tables, with raw HTML disabled, so every
           string from the scenario or the data is shown as escaped text.
        2. Replace each image by a ``data:`` URI of its file in ``base_dir``, and turn each link
           into its plain text: the file loads nothing else (no CDN, fonts or local files), and
           a Content-Security-Policy refuses scripts and any fetch.
        3. Wrap it in a page with an inline stylesheet and the escaped ``title``.

    Args:
        markdown_text: the report (``report.md``'s text); images as ``![alt](file.png)``.
        out_path: the HTML file to write (UTF-8), e.g. ``run_dir / "report.html"``.
        base_dir: the folder that relative image paths are resolved in (the run directory).
        title: the page title, plain text (escaped here).

    Returns:
        ``out_path``.

    Raises:
        FileNotFoundError: if an image file is missing.
        ValueError: if an image is a URL, an absolute path, outside ``base_dir`` or not an image
            file name.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "r.html"
        >>> text = write_html("# a <b> & [c](x.toml)", out_path=out, base_dir=out.parent, title="t")
        >>> "<h1>a &lt;b&gt; &amp; c</h1>" in text.read_text()
        True
    """
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    env: dict = {}
    tokens = md.parse(markdown_text, env)
    _embed(tokens, Path(base_dir))
    body = md.renderer.render(tokens, md.options, env)
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}</body>\n</html>\n"
    )
    out_path = Path(out_path)
    out_path.write_text(page, encoding="utf-8")
    return out_path
