"""The whole report as one document: a first screen (one row per study, its verdict, the
headline models' figures as thumbnails), every model's verdict, what was read and what is
missing, every study's stages (and a cascade's end-to-end section after its modules), then how
long each job took."""

from __future__ import annotations

from pathlib import Path

from cxr.layout import Layout
from cxr.reporting.discovery import Stage, discover, nothing_found, subfolders
from cxr.reporting.document import Bullets, Document, Heading, Paragraph
from cxr.reporting.end_to_end import end_to_end
from cxr.reporting.every_model import every_model
from cxr.reporting.glance import first_screen
from cxr.reporting.sections import Sections
from cxr.reporting.timings import timing_blocks


def build_report(
    results: Path,
    out_dir: Path,
    *,
    sources: dict[str, str] | None = None,
    scale: str | None = None,
    expected: dict[str, list[str]] | None = None,
    logs: Path | None = None,
    headlines: dict[str, str] | None = None,
    skipped: dict[str, list[str]] | None = None,
) -> tuple[Document, list[str]]:
    """The report's document, and the list of what was missing (also named in it).
    ``headlines``: each study's headline stage (default: its last); ``skipped``: each study's
    stages not trained at this scale."""
    sources, headlines = sources or {}, headlines or {}
    layout = Layout(results=str(Path(results)))
    sections = Sections(layout, Path(out_dir), sources, scale)
    stages = discover(layout, expected)
    if expected != {} and not any(s.columns for s in stages):
        raise ValueError(nothing_found(layout, stages))
    studies = list(dict.fromkeys(s.study for s in stages))
    body = [
        block
        for study in studies
        for block in [
            *(b for stage in stages if stage.study == study for b in sections.stage_blocks(stage)),
            *end_to_end(sections, study),
        ]
    ]
    doc = Document("cxr report")
    doc.add(Paragraph(_data_sentence(sources, scale)))
    for block in [
        *first_screen(stages, sections, headlines),
        *_not_trained(skipped or {}, scale),
        *every_model(stages, layout, headlines),
        Heading("What this report read", 2),
        Bullets(_intro(results, layout, stages, studies, sources, scale, expected)),
    ]:
        doc.add(block)
    timings = timing_blocks(Path(logs), studies) if logs is not None else []
    problems = list(dict.fromkeys(sections.problems))
    doc.add(Heading("Missing outputs", 2))
    if problems:
        doc.add(Bullets(problems))
    elif stages:
        doc.add(Paragraph("None: every expected output is here."))
    else:
        doc.add(Paragraph("None expected: the configuration names no study (--studies-json {})."))
    for block in body + timings:
        doc.add(block)
    return doc, problems


def _not_trained(skipped: dict[str, list[str]], scale: str | None) -> list[Paragraph]:
    """One line naming the stages params.yaml does not train at this scale, if any."""
    names = [f"{study}/{stage}" for study, stages in skipped.items() for stage in stages]
    if not names:
        return []
    return [
        Paragraph(
            f"Not trained at scale {scale or 'unknown'} (their stages in params.yaml say "
            f"`enabled: false` at this scale): {', '.join(names)}."
        )
    ]


def _data_sentence(sources: dict[str, str], scale: str | None) -> str:
    """The report's first line: the scale, and whether the data are synthetic or real."""
    kinds = set(sources.values())
    if kinds == {"synthetic"}:
        data = (
            "every dataset is one of cxr's synthetic miniatures: the numbers show that the "
            "pipeline learns, they are not the papers' results on the real data"
        )
    elif kinds == {"real"}:
        data = "every dataset is the real, downloaded one"
    elif kinds:
        synthetic = ", ".join(sorted(d for d, s in sources.items() if s == "synthetic"))
        data = f"synthetic miniatures: {synthetic}; the others are real"
    else:
        data = "the data's source (synthetic or real) was not given"
    return f"Scale {scale or 'unknown'}; {data}."


def _intro(
    results: Path,
    layout: Layout,
    stages: list[Stage],
    studies: list[str],
    sources: dict[str, str],
    scale: str | None,
    expected: dict[str, list[str]] | None,
) -> list[str]:
    """The report's opening bullets: what was read, which studies, which data is synthetic."""
    synthetic = sorted(d for d, s in sources.items() if s == "synthetic")
    real = sorted(d for d, s in sources.items() if s == "real")
    names = [f"{s} ({', '.join(x.name for x in stages if x.study == s)})" for s in studies]
    intro = [
        f"Results: `{results}`; scale: {scale or 'unknown'}.",
        "Studies: " + (", ".join(names) or "none found") + ".",
        "Synthetic datasets (cxr's miniatures): " + (", ".join(synthetic) or "none") + ".",
        "Real datasets: " + (", ".join(real) or "none") + ".",
    ]
    if expected is not None:
        extra = sorted(set(subfolders(Path(layout.evaluation_tree()))) - set(expected))
        if extra:
            intro.append(
                "Left out (in the results tree, not in the configuration): "
                + ", ".join(extra)
                + "."
            )
    return intro
