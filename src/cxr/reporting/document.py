"""A small document model rendered to Markdown and to standalone HTML from the same blocks."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field


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
    return _html_inline(str(cell))


_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 80em; color: #222; }
table { border-collapse: collapse; margin: 0.3em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
th { background: #f0f0f0; }
p.caption { margin: 1em 0 0.2em; max-width: 70em; font-size: 0.9em; }
code { background: #f4f4f4; padding: 0 0.2em; }
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
            out.append("<table>")
            out.append("<tr>" + "".join(f"<th>{_html_cell(c)}</th>" for c in block.header))
            out += [
                "<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in row) + "</tr>"
                for row in block.rows
            ]
            out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
