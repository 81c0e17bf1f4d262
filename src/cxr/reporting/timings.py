"""How long each job took: Snakemake's benchmark files (``logs/**/*.benchmark.tsv``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cxr.core.readers import read_csv_rows

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
