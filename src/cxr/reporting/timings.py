"""How long each job took: Snakemake's benchmark files (``logs/**/*.benchmark.tsv``), and the
report's section of them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from cxr.core.readers import read_csv_rows
from cxr.reporting.document import Heading, Paragraph, Table
from cxr.reporting.tables import fmt

SUFFIX = ".benchmark.tsv"


@dataclass
class Job:
    rule: str
    target: str  # the benchmark path below the rule's folder, without the suffix
    seconds: float
    max_rss_mb: float | None


def read_benchmarks(logs: Path) -> list[Job]:
    """Every benchmark file under ``logs`` (the last row of each: a rerun appends none)."""
    jobs = []
    for path in sorted(logs.rglob(f"*{SUFFIX}")):
        rows = read_csv_rows(path, delimiter="\t")
        if not rows or "s" not in rows[-1]:
            continue
        try:
            seconds = float(rows[-1]["s"])
        except (TypeError, ValueError):
            continue
        try:
            rss = float(rows[-1].get("max_rss", ""))
        except (TypeError, ValueError):
            rss = None
        rel = path.relative_to(logs).as_posix()[: -len(SUFFIX)]
        rule, _, target = rel.partition("/")
        jobs.append(Job(rule, target or rule, seconds, rss))
    return jobs


def study_of(job: Job, studies: list[str]) -> str | None:
    """The study a job belongs to: the first folder of its target, if it names a study."""
    first = job.target.split("/", 1)[0]
    return first if first in studies and "/" in job.target else None


def timing_blocks(logs: Path, studies: list[str]) -> list:
    """The report's last section: seconds per study, then each study's jobs."""
    jobs = read_benchmarks(logs)
    blocks: list = [Heading("How long each job took", 2)]
    if not jobs:
        return [*blocks, Paragraph(f"No benchmark files under `{logs}`.")]
    groups: dict[str, list] = defaultdict(list)
    for job in jobs:
        groups[study_of(job, studies) or "(data preparation, shared)"].append(job)
    order = [s for s in studies if s in groups] + [g for g in groups if g not in studies]
    rows = []
    for group in order:
        longest = max(groups[group], key=lambda j: j.seconds)
        rows.append(
            [
                group,
                str(len(groups[group])),
                fmt(sum(j.seconds for j in groups[group]), 1),
                f"{longest.rule} {longest.target} ({fmt(longest.seconds, 1)} s)",
            ]
        )
    blocks.append(
        Table(
            ["study", "jobs", "total s", "longest job"],
            rows,
            f"Wall-clock seconds of the jobs with a benchmark file under `{logs}` "
            "(Snakemake's `benchmark:`; column `s`), grouped by study.",
        )
    )
    for group in [s for s in studies if s in groups]:
        rows = [
            [j.rule, j.target, fmt(j.seconds, 1), fmt(j.max_rss_mb, 0)]
            for j in sorted(groups[group], key=lambda j: (j.rule, j.target))
        ]
        blocks.append(
            Table(
                ["rule", "job", "s", "max RSS MB"],
                rows,
                f"Jobs of {group}: seconds and peak memory of each.",
            )
        )
    return blocks
