"""A small document model rendered to Markdown and to standalone HTML from the same blocks.

An :class:`Image` is a relative ``<img>`` in the Markdown and embedded (a data URI) in the HTML,
which so stands alone.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    """A table with its caption (printed above it, as in a paper)."""

    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    number: int = 0


@dataclass
class Link:
    """A link in a table cell or a paragraph: ``text`` pointing at ``target`` (a path)."""

    text: str
    target: str


@dataclass
class Image:
    """A thumbnail in a table cell: ``path`` (read when the HTML is written) shown as ``target``
    (its path relative to the report) in the Markdown, both linking to the full figure."""

    text: str
    target: str
    path: Path


#: Height of a thumbnail in the Markdown (px); the HTML's CSS bounds both sides.
THUMB_HEIGHT = 150
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}


@dataclass
class Document:
    title: str
    blocks: list = field(default_factory=list)
    tables: int = 0

    def add(self, block: object) -> None:
        if isinstance(block, Table):
            self.tables += 1
            block.number = self.tables
        self.blocks.append(block)


def _md_cell(cell: object) -> str:
    if isinstance(cell, Link):
        return f"[{cell.text}]({cell.target})"
    if isinstance(cell, Image):
        src, alt = html.escape(cell.target), html.escape(cell.text)
        return f'<a href="{src}"><img src="{src}" alt="{alt}" height="{THUMB_HEIGHT}"></a>'
    return str(cell).replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document) -> str:
    lines = [f"# {doc.title}", ""]
    for block in doc.blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Bullets):
            lines += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            lines += [f"**Table {block.number}.** {block.caption}", ""]
            lines.append("| " + " | ".join(_md_cell(c) for c in block.header) + " |")
            lines.append("|" + "---|" * len(block.header))
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _html_inline(text: str) -> str:
    """Escape text, keeping `code` and **bold** (the only inline markup the report uses)."""
    parts = html.escape(text).split("`")
    text = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    parts = text.split("**")
    if len(parts) % 2 == 0:  # an unpaired marker: leave the text as it is
        return text
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def _html_cell(cell: object) -> str:
    if isinstance(cell, Link):
        return f'<a href="{html.escape(cell.target)}">{html.escape(cell.text)}</a>'
    if isinstance(cell, Image):
        return _html_image(cell)
    return _html_inline(str(cell))


def _html_image(image: Image) -> str:
    """The image embedded as a data URI, linking to its file beside the report."""
    try:
        data = base64.b64encode(image.path.read_bytes()).decode("ascii")
    except OSError:
        return f"<b>missing</b> ({html.escape(image.path.name)})"
    mime = MIME.get(image.path.suffix.lower(), "application/octet-stream")
    alt = html.escape(image.text)
    return (
        f'<a href="{html.escape(image.target)}"><img class="thumb" alt="{alt}" title="{alt}" '
        f'src="data:{mime};base64,{data}"></a>'
    )


_STYLE = """
body { font-family: sans-serif; margin: 1em auto; padding: 0 1.5em; max-width: 80em; color: #222; }
table { border-collapse: collapse; margin: 0.3em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
th { background: #f0f0f0; }
p.caption { margin: 1em 0 0.2em; max-width: 70em; font-size: 0.9em; }
code { background: #f4f4f4; padding: 0 0.2em; }
h1 { margin: 0 0 0.3em; }
table.thumbs td, table.thumbs th { text-align: center; vertical-align: middle; }
img.thumb { display: block; margin: auto; max-height: 150px; max-width: 200px; }
"""


def to_html(doc: Document) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(doc.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(doc.title)}</h1>",
    ]
    for block in doc.blocks:
        if isinstance(block, Heading):
            anchor = re.sub(r"[^a-z0-9]+", "-", block.text.lower()).strip("-")
            level = block.level
            out.append(f'<h{level} id="{anchor}">{_html_inline(block.text)}</h{level}>')
        elif isinstance(block, Paragraph):
            out.append(f"<p>{_html_inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{_html_inline(i)}</li>" for i in block.items))
            out.append("</ul>")
        elif isinstance(block, Table):
            out.append(
                f'<p class="caption"><b>Table {block.number}.</b> {_html_inline(block.caption)}</p>'
            )
            thumbs = any(isinstance(c, Image) for row in block.rows for c in row)
            out.append('<table class="thumbs">' if thumbs else "<table>")
            out.append("<tr>" + "".join(f"<th>{_html_cell(c)}</th>" for c in block.header))
            out += [
                "<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in row) + "</tr>"
                for row in block.rows
            ]
            out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
