"""The jobs' measured time and memory beside what the rules declare (cxr.plan.resources).

Reads the benchmarks a run left (``logs/**/*.benchmark.tsv``) and its params.yaml, and prints a
Markdown table, per rule (and architecture, for model jobs): the most a job of that kind took
(seconds, peak RSS) and the most its jobs declare at demo scale, and at paper scale on the
published datasets (every ``source: real``; their sizes from cxr.plan.resources.REAL_IMAGES).

    python benchmarks/resources_table.py RUN_FOLDER   # a folder where `snakemake` ran
"""

from __future__ import annotations

import argparse
import copy
import csv
from collections import defaultdict
from pathlib import Path

import yaml

from cxr.plan import PlanError, Sizing, load

#: Rules whose benchmarks lie at logs/<rule>/<study>/<stage>/<column>.
MODEL_RULES = {"train", "evaluate", "cam"}
#: Rules of one job (their benchmark is named after the cascade's study).
NO_WILDCARDS = {"cascade_sets", "cascade_evaluate"}


def jobs(logs: Path, datasets: list[str]) -> list[tuple[str, dict[str, str], float, float]]:
    """(rule, wildcards, seconds, max_rss MB) of each benchmarked job of a run."""
    found = []
    for path in sorted(logs.rglob("*.benchmark.tsv")):
        rule, *rest = path.relative_to(logs).parts
        stem = path.name.removesuffix(".benchmark.tsv")
        if rule.endswith(".benchmark.tsv"):  # logs/<rule>.benchmark.tsv: no wildcards
            rule, rest, stem = stem, [], ""
        row = list(csv.DictReader(path.open(), delimiter="\t"))[-1]
        found.append(
            (rule, wildcards(rule, [*rest[:-1], stem], datasets), float(row["s"]), _mb(row))
        )
    return found


def _mb(row: dict[str, str]) -> float:
    try:
        return float(row["max_rss"])
    except ValueError:  # "-": too short to sample
        return 0.0


def wildcards(rule: str, parts: list[str], datasets: list[str]) -> dict[str, str]:
    """A job's wildcards from its benchmark's path (logs/<rule>/<parts>.benchmark.tsv)."""
    parts = [p for p in parts if p]
    if rule == "evaluate" and parts[-1] == "pooled":
        return {"study": parts[0], "stage": parts[1]}
    if rule in MODEL_RULES:
        return dict(zip(("study", "stage", "column"), parts, strict=True))
    if rule == "cam_compare":
        return dict(zip(("study", "pair", "column"), parts, strict=True))
    if rule == "preprocess":  # <dataset>_<preset>
        dataset = max((d for d in datasets if parts[0].startswith(f"{d}_")), key=len)
        return {"dataset": dataset, "preset": parts[0].removeprefix(f"{dataset}_")}
    if rule in NO_WILDCARDS:
        return {}
    return {"dataset": parts[0]}


def declared(resources: Sizing, rule: str, found: dict[str, str]) -> list[int]:
    """(runtime, mem_mb) a job declares; zeros for a stage not trained at that scale."""
    try:
        return [resources.runtime(rule, **found), resources.mem_mb(rule, **found)]
    except (KeyError, PlanError):
        return [0, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a folder where the workflow ran")
    args = parser.parse_args()
    params = yaml.safe_load((args.run / "params.yaml").read_text())
    demo = Sizing(load(params, "demo"))
    # paper scale on the published data: every dataset real but the synthetic corpus
    real = copy.deepcopy(params)
    for name, dataset in real["datasets"].items():
        dataset["source"] = "synthetic" if name == real["pretraining"]["dataset"] else "real"
    paper = Sizing(load(real, "paper"))
    rows: dict[str, list[float]] = defaultdict(lambda: [0] * 7)
    for rule, found, seconds, mb in jobs(args.run / "logs", list(demo.plan.datasets)):
        name = "evaluate_pooled" if rule == "evaluate" and "column" not in found else rule
        key = name
        if rule in {"train", "cam"}:
            study = params["training"]["studies"].get(found["study"], {})
            recipe = study.get("stages", {}).get(found["stage"], {}).get("recipe", {})
            key = f"{rule} ({recipe.get('architecture', 'stand-in')})"
        row = rows[key]
        new = [1, seconds, mb, *declared(demo, name, found), *declared(paper, name, found)]
        rows[key] = [row[0] + 1, *(max(a, b) for a, b in zip(row[1:], new[1:], strict=True))]
    print(
        "| jobs of | n | measured s (max) | measured MB (max) | demo runtime min | demo mem_mb"
        " | paper runtime min | paper mem_mb |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for key, (n, s, mb, d_t, d_mb, p_t, p_mb) in sorted(rows.items()):
        print(
            f"| {key} | {n} | {s:.0f} | {mb:.0f} | {d_t} | {d_mb} | {p_t or '-'} | {p_mb or '-'} |"
        )


if __name__ == "__main__":
    main()
