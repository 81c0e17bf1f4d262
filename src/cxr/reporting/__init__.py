"""One report of every trained study: tables beside the papers' numbers, captions, figures."""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path

from cxr.core.atomic import atomic_path, check_replaceable
from cxr.reporting.document import to_html, to_markdown
from cxr.reporting.report import build_report

__all__ = ["write_report"]


def write_report(
    results: Path,
    out: Path,
    *,
    html: Path | None = None,
    sources: dict[str, str] | None = None,
    scale: str | None = None,
    expected: dict[str, list[str]] | None = None,
    logs: Path | None = None,
    headlines: dict[str, str] | None = None,
    skipped: dict[str, list[str]] | None = None,
) -> list[str]:
    """Write the Markdown report (and its HTML twin); return what was missing.

    Both outputs are checked before either is written, and each appears only when complete.
    """
    out = Path(out)
    targets = [out] + ([Path(html)] if html is not None else [])
    if html is not None and Path(html).resolve() == out.resolve():
        raise ValueError(f"{html}: --html names the same file as --out; give the HTML its own")
    for target in targets:
        check_replaceable(target)
    build = partial(
        build_report,
        results,
        sources=sources,
        scale=scale,
        expected=expected,
        logs=logs,
        headlines=headlines,
        skipped=skipped,
    )
    doc, problems = build(out.parent)
    if html is not None and Path(html).parent.resolve() != out.parent.resolve():
        # links are relative to the Markdown file's folder: build the HTML's from its own
        html_doc, _ = build(Path(html).parent)
    else:
        html_doc = doc
    with contextlib.ExitStack() as stack:
        work = stack.enter_context(atomic_path(out))
        work.write_text(to_markdown(doc))
        if html is not None:
            stack.enter_context(atomic_path(html)).write_text(to_html(html_doc))
    return problems
