"""What ``cxr predict`` writes: per image a JSON (its verdicts, or what is wrong with the file)
and the Grad-CAM overlay PNG(s) of a chest X-ray; one summary table over all images."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from cxr.data.images import is_hidden
from cxr.serving import overlay
from cxr.serving.predictor import Result

SUMMARY = "summary.csv"


def walk(paths: Iterable[Path]) -> Iterator[tuple[Path, str]]:
    """Every file named or found in a named folder (recursively, hidden files left out), with
    a unique, safe output stem; a path that does not exist is yielded too (it gets an error)."""
    seen: set[str] = set()
    for given in paths:
        if given.is_dir():
            found = sorted(p for p in given.rglob("*") if not p.is_dir())
            items = [
                (p, p.relative_to(given)) for p in found
                if not any(is_hidden(part) for part in p.relative_to(given).parents)
                and not is_hidden(p)
            ]  # fmt: skip
        else:
            items = [(given, Path(given.name))]
        for path, relative in items:
            stem = re.sub(r"[^\w.\-]+", "_", "__".join(relative.parts)) or "image"
            unique, n = stem, 1
            while unique in seen:
                n += 1
                unique = f"{stem}.{n}"
            seen.add(unique)
            yield path, unique


def write_image(
    work: Path, stem: str, path: Path, result: Result | None, error: str | None
) -> dict:
    """``<stem>.json`` (and ``<stem>.cam.<finding>.png``) into ``work``; the summary row."""
    record: dict = {"file": str(path)}
    if error is not None:
        record |= {"status": "error", "error": error}
    else:
        assert result is not None
        record |= {"status": "ok", **result.report, "overlays": {}}
        for finding, picture in result.overlays.items():
            name = f"{stem}.cam.{finding}.png"
            (work / name).write_bytes(overlay.png_bytes(picture))
            record["overlays"][finding] = name
    (work / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    return _row(stem, record)


def _row(stem: str, record: dict) -> dict:
    first, second, chest = (record.get(k) for k in ("module_i", "module_ii", "module_iii"))
    return {
        "file": record["file"],
        "json": f"{stem}.json",
        "status": record["status"],
        "verdict": record.get("verdict"),
        "module_i": first and first["answer"],
        "module_i_score": first and first["score"],
        "module_ii": second and second["answer"],
        "module_ii_score": second and second["score"],
        "findings": chest and "|".join(chest["findings"]),
        "top_finding": (record.get("heatmaps") or [{}])[0].get("finding"),
        "error": record.get("error"),
    }


def write_summary(work: Path, rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(_row("", {"file": "", "status": ""})))
    frame.to_csv(work / SUMMARY, index=False)
    return frame
