"""Seed 002's cascade data: one held-out mixed set and the three modules' training sets.

The cascade answers, for one image, "is it an X-ray?" (Module I), "which type?" (Module II) and,
for a chest X-ray, "which findings?" (Module III). Its end-to-end accuracy is measured on a
held-out mix of every source's test side, so no module may have trained on one of those images,
nor on a near-duplicate of one. The sources overlap in the real world (a type collection's chest
folder is often ChestX-ray14 images, which Module III also trains on), so the check runs across
sources, not inside each:

1. every source's ``test`` side becomes the held-out set; its ``train``/``val`` sides are the
   candidates of the modules' training sets;
2. near-duplicate groups are found on all of those images together, across sources; a
   candidate grouped with a held-out image is dropped from every module (and listed);
3. each module gets a preprocessed folder (``images.npy``, ``index.parquet``, ``stats.json``,
   ``manifest.csv``) holding its candidates plus the held-out images it can be scored on, and a
   split table whose ``test`` side is exactly those held-out images. ``cxr check-leakage`` on
   that folder re-derives the groups from the pixels: the cross-module check, independent of
   step 2.

Module I: X-ray (every X-ray source; of the chest source only ``chest_fraction``, by patient,
as the paper took 10% of ChestX-ray14) against the photographs, the larger class sampled down
to the smaller on each training side. Module II: the X-ray type (``label`` of a type collection,
``body_part`` of MURA, ``chest`` for the chest source). Module III: the chest source's findings.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cxr.core.atomic import atomic_path
from cxr.core.readers import read_json_object
from cxr.data.index import FINDING_PREFIX, finding_columns
from cxr.data.preprocess import INDEX_FILE, MANIFEST_FILE, STATS_FILE, TENSOR_FILE
from cxr.explanation.inputs import data_identity, split_sides
from cxr.splits.assign import UNUSED, groups_of, keep_groups_on_one_side
from cxr.splits.files import read_data
from cxr.splits.near_duplicates import Measured, near_duplicate_groups

log = logging.getLogger(__name__)

#: The folders written, by role (``results/preprocessed/<name>/<preset>``).
SETS = {
    "heldout": "cascade_heldout",
    "xray": "cascade_xray",
    "type": "cascade_type",
    "chest": "cascade_chest",
}
#: The split scheme name of the modules' sets (``results/splits/<name>/heldout.parquet``).
SCHEME = "heldout"
NOT_XRAY = "not_xray"
XRAY = "xray"
CHEST = "chest"
CHUNK = 1024  # images copied per step into an output tensor
#: The cascade's sources, by dataset name, and what each gives it.
SOURCES = {
    NOT_XRAY: "photographs: Module I's not-X-ray class",
    "xray_types": "X-ray types for Module II",
    "mura": "body parts for Module II",
    "nih": "chest X-rays: Module III's findings, chest for Modules I and II",
}


@dataclass(frozen=True)
class Source:
    """One dataset's preprocessed folder and split table (its ``split`` column is used)."""

    dataset: str
    data: Path
    split: Path


def _check_names(sources: list[Source]) -> None:
    """Refuse an unknown source, and a dataset or a folder given twice."""
    for source in sources:
        if source.dataset not in SOURCES:
            raise ValueError(
                f"--source {source.dataset}: not a source of the cascade; it takes "
                f"{', '.join(SOURCES)}"
            )
    seen: dict[object, str] = {}
    for source in sources:
        for key, what in ((source.dataset, "dataset"), (Path(source.data).resolve(), "folder")):
            if key in seen:
                raise ValueError(
                    f"--source {source.dataset} {source.data}: the same {what} as --source "
                    f"{seen[key]}; give each dataset once, with its own folder"
                )
            seen[key] = source.dataset


def check_sources(sources: list[Source], preset: str) -> None:
    """Refuse sources that are not the cascade's four datasets, each once, in folders of
    ``preset`` (cxr preprocess writes ``<results>/preprocessed/<dataset>/<preset>``)."""
    _check_names(sources)
    missing = [name for name in SOURCES if name not in {s.dataset for s in sources}]
    if missing:
        needed = "; ".join(f"{name} ({SOURCES[name]})" for name in missing)
        raise ValueError(f"--source: the cascade also needs {needed}")
    for source in sources:
        where = f"--source {source.dataset} {source.data} {source.split}"
        if not Path(source.data).is_dir():
            raise ValueError(f"{where}: no such folder {source.data}")
        if not Path(source.split).is_file():
            raise ValueError(f"{where}: no such split table {source.split}")
        recorded = _recorded_preset(source).get("name")
        if recorded != preset:
            raise ValueError(
                f"--preset {preset}: --source {source.dataset} {source.data} is a folder of "
                f"preset {recorded or 'unrecorded'!r} (its {STATS_FILE}); give the sources' preset"
            )


def _recorded_preset(source: Source) -> dict:
    """The preset recorded in a source's ``stats.json`` (empty if none)."""
    path = Path(source.data) / STATS_FILE
    if not path.is_file():
        raise ValueError(f"{source.data}: no {STATS_FILE}; is it a folder of cxr preprocess?")
    preset = read_json_object(path, f"a {STATS_FILE} of cxr preprocess").get("preset")
    return preset if isinstance(preset, dict) else {}


def _in_words(preset: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(preset.items())) or "unrecorded"


def xray_type(index: pd.DataFrame, dataset: str) -> pd.Series:
    """The X-ray type of each row: ``not_xray`` for photographs, ``chest`` for chest sets,
    else the type collection's class or MURA's body part."""
    body = index["body_part"].astype("string").str.lower()
    if dataset == NOT_XRAY or body.eq(NOT_XRAY).all():
        return pd.Series(NOT_XRAY, index=index.index, dtype="string")
    if finding_columns(index) or body.eq(CHEST).all():
        return pd.Series(CHEST, index=index.index, dtype="string")
    label = index["label"].astype("string").str.lower()
    return label.where(label.notna() & ~label.isin(["normal", "abnormal"]), body)


def _load(source: Source) -> tuple[pd.DataFrame, np.ndarray]:
    """A source's index with its split side, type and namespaced ids; and its tensor."""
    index, images = read_data(source.data)
    holds = data_identity(source.data)
    if holds != source.dataset:
        raise ValueError(
            f"--source {source.dataset} {source.data}: holds {holds} images (its index), not "
            f"{source.dataset}; give each dataset its own preprocessed folder"
        )
    side = split_sides(source.split, index, source.data)
    if side.isna().any():
        missing = index.loc[side.isna(), "image_id"].head(3).tolist()
        raise ValueError(
            f"{source.split}: no side for image(s) {missing} of {source.data}: is it the split "
            f"of {source.dataset} made from that folder?"
        )
    rows = index.assign(
        side=side.to_numpy(),
        kind=xray_type(index, source.dataset).to_numpy(),
        source_row=np.arange(len(index)),
        image_id=source.dataset + "/" + index["image_id"].astype(str),
        patient_id=(source.dataset + ":" + index["patient_id"].astype("string")),
    )
    rows["dataset"] = source.dataset
    return rows, images


def _patients_sample(rows: pd.DataFrame, fraction: float, rng: np.random.Generator) -> pd.Index:
    """Row labels of about ``fraction`` of the patients (images without one count alone)."""
    key = rows["patient_id"].fillna(rows["image_id"])
    patients = key.unique()
    chosen = rng.permutation(len(patients))[: max(1, round(fraction * len(patients)))]
    return rows.index[key.isin(patients[chosen])]


def _balanced(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Per side, the larger of X-ray / not-X-ray sampled down to the smaller (stratified)."""
    kept = []
    for _, side in rows.groupby("side", sort=False):
        xray = side["label"] == XRAY
        n = min(int(xray.sum()), int((~xray).sum()))
        for part in (side[xray], side[~xray]):
            order = rng.permutation(len(part))
            kept.append(part.iloc[np.sort(order[:n])] if n else part.iloc[:0])
    return pd.concat(kept).sort_index()


def _module_rows(
    rows: pd.DataFrame, chest_fraction: float, rng: np.random.Generator
) -> dict[str, pd.DataFrame]:
    """The rows of each module's set (candidates and its held-out images), labels set."""
    heldout = rows["side"] == "test"
    chest_source = rows["kind"].eq(CHEST) & rows[finding_columns(rows)].notna().any(axis=1)
    sampled = rows.index.isin(_patients_sample(rows[chest_source & ~heldout], chest_fraction, rng))
    few_chest = ~chest_source | heldout | sampled
    photo = rows["kind"] == NOT_XRAY
    xray = rows[few_chest].assign(label=np.where(photo[few_chest], NOT_XRAY, XRAY))
    xray = pd.concat([xray[xray["side"] == "test"], _balanced(xray[xray["side"] != "test"], rng)])
    return {
        "heldout": rows[heldout].assign(label=rows["kind"]),
        "xray": xray.sort_index(),
        "type": rows[few_chest & ~photo].assign(label=rows["kind"]),
        "chest": rows[chest_source],
    }


def _stacked(rows: pd.DataFrame, images: dict[str, np.ndarray], path: Path) -> np.ndarray:
    """The images of ``rows`` (sorted by dataset, then source row) in one on-disk tensor."""
    size = next(iter(images.values())).shape[1]
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(len(rows), size, size))
    at = 0
    for dataset, part in rows.groupby("dataset", sort=False):
        source_rows = part["source_row"].to_numpy()
        for start in range(0, len(source_rows), CHUNK):
            chunk = images[dataset][source_rows[start : start + CHUNK]]
            out[at : at + len(chunk)] = chunk
            at += len(chunk)
    out.flush()
    return out


def _one_side_per_group(
    rows: pd.DataFrame,
    images: dict[str, np.ndarray],
    work: Path,
    measured: Measured,
    rounds: int = 3,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``rows`` without the images that share a patient or a near-duplicate group with an
    image of another side (the held-out side wins, then validation), and those dropped.

    The groups are found on exactly these images, as ``cxr check-leakage`` will find them on
    the written set; dropping images changes the neighbours a search sees, so this repeats
    until nothing moves (at most ``rounds`` times). ``heldout_twin`` names a held-out image
    of a dropped image's group. ``measured`` keeps the pairs' re-checked distances, by
    (dataset, source row), across rounds and calls.
    """
    dropped = []
    for _ in range(rounds):
        rows = rows.sort_values(["dataset", "source_row"], kind="stable").reset_index(drop=True)
        ids = list(zip(rows["dataset"], rows["source_row"].tolist(), strict=True))
        with tempfile.TemporaryDirectory(dir=work, prefix=".cascade-") as tmp:
            stacked = _stacked(rows, images, Path(tmp) / TENSOR_FILE)
            near = near_duplicate_groups(stacked, ids, measured)[0]
            del stacked
        rows["split_group"] = groups_of(rows, near).to_numpy()
        side = keep_groups_on_one_side(rows["side"], rows["split_group"], rows["image_id"])
        gone = (side == UNUSED).to_numpy()
        if not gone.any():
            break
        held = rows[rows["side"] == "test"].groupby("split_group")["image_id"].first()
        twins = rows.loc[gone, "split_group"].map(held)
        dropped.append(rows.loc[gone, ["image_id"]].assign(heldout_twin=twins.to_numpy()))
        rows = rows[~gone]
    lost = pd.concat(dropped) if dropped else pd.DataFrame(columns=["image_id", "heldout_twin"])
    return rows, lost


def _write_set(
    out: Path,
    name: str,
    rows: pd.DataFrame,
    sources: dict[str, np.ndarray],
    findings: bool,
    preset: dict,
) -> None:
    """One module's preprocessed folder: tensor, index, stats and manifest."""
    rows = rows.sort_values(["dataset", "source_row"], kind="stable")
    index = rows.drop(columns=["side", "kind", "source_row", "split_group"])
    if not findings:
        index = index.drop(columns=[c for c in index if c.startswith(FINDING_PREFIX)])
    index = index.reset_index(drop=True).assign(tensor_row=np.arange(len(rows)))
    with atomic_path(out) as work:
        work.mkdir()
        tensor = _stacked(rows, sources, work / TENSOR_FILE)
        total = total_sq = 0.0
        for start in range(0, len(tensor), CHUNK):
            pixels = tensor[start : start + CHUNK].astype(np.float64) / 255.0
            total, total_sq = total + pixels.sum(), total_sq + (pixels * pixels).sum()
        count = max(tensor.size, 1)
        del tensor
        index.to_parquet(work / INDEX_FILE, index=False)
        index[["image_id", "path"]].assign(status="kept", reason="").to_csv(
            work / MANIFEST_FILE, index=False
        )
        mean = total / count
        stats = {
            "images": len(rows),
            "rejected": 0,
            "flagged": 0,
            "mean": mean,
            "std": float(np.sqrt(max(total_sq / count - mean * mean, 0.0))),
            "preset": preset,
            "dataset": name,
            "cascade": name,
        }
        (work / STATS_FILE).write_text(json.dumps(stats, indent=2) + "\n")


def build_cascade_sets(
    sources: list[Source],
    out_root: Path,
    preset: str,
    chest_fraction: float = 0.1,
    seed: int = 0,
) -> dict:
    """Write the held-out set and Modules I-III's sets of ``sources`` under ``out_root``.

    Folders go to ``<out_root>/preprocessed/<set>/<preset>`` and split tables to
    ``<out_root>/splits/<set>/heldout.parquet`` (names in :data:`SETS`); a report of what was
    kept, sampled and dropped to ``<out_root>/metrics/cascade/<preset>.json``, returned too.
    Every source must hold the same image size (one preprocessing preset).
    """
    if not 0 < chest_fraction <= 1:
        raise ValueError(f"--chest-fraction must be in (0, 1], got {chest_fraction:g}")
    _check_names(sources)
    loaded = [_load(s) for s in sources]
    sizes = {s.dataset: images.shape[1:] for s, (_, images) in zip(sources, loaded, strict=True)}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"the cascade's sources differ in image size: {sizes}; use one preset")
    recorded = [_recorded_preset(source) for source in sources]
    presets: dict[str, list[str]] = {}
    for source, preset_of in zip(sources, recorded, strict=True):
        presets.setdefault(_in_words(preset_of), []).append(source.dataset)
    if len(presets) != 1:
        shown = "; ".join(f"{', '.join(names)}: {p}" for p, names in presets.items())
        raise ValueError(f"the cascade's sources differ in preprocessing ({shown}); use one preset")
    for source, (rows, _) in zip(sources, loaded, strict=True):
        if not (rows["side"] == "test").any():
            raise ValueError(f"{source.split}: no test image of {source.dataset} to hold out")
    rows = pd.concat([r for r, _ in loaded], ignore_index=True)
    rows = rows[rows["side"].isin(["train", "val", "test"])]
    rows = rows.sort_values(["dataset", "source_row"], kind="stable").reset_index(drop=True)
    images = {s.dataset: img for s, (_, img) in zip(sources, loaded, strict=True)}
    out_root.mkdir(parents=True, exist_ok=True)
    measured: Measured = {}
    rows, dropped = _one_side_per_group(rows, images, out_root, measured)
    sets = _module_rows(rows, chest_fraction, np.random.default_rng(seed))
    for role in ("xray", "type", "chest"):
        sets[role], more = _one_side_per_group(sets[role], images, out_root, measured)
        dropped = pd.concat([dropped, more])
    # A twin of a held-out image found in one module's set leaves every module's set.
    twins = dropped[dropped["heldout_twin"].notna()].drop_duplicates("image_id")
    for role in ("xray", "type", "chest"):
        sets[role] = sets[role][~sets[role]["image_id"].isin(twins["image_id"])]
    for _, row in twins.iterrows():
        log.warning(
            "%s left out of every module's training data: it shares a patient or a picture "
            "with held-out %s",
            row["image_id"],
            row["heldout_twin"],
        )
    report: dict = {
        "preset": preset,
        "chest_fraction": chest_fraction,
        "sets": {},
        "dropped_near_duplicates_of_heldout": twins["image_id"].tolist(),
        "dropped_across_train_and_val": int(
            dropped.loc[dropped["heldout_twin"].isna(), "image_id"].nunique()
        ),
    }
    for role, name in SETS.items():
        part = sets[role]
        folder = out_root / "preprocessed" / name / preset
        _write_set(folder, name, part, images, role in ("heldout", "chest"), recorded[0])
        report["sets"][name] = {
            "images": len(part),
            "by_side": part["side"].value_counts().sort_index().to_dict(),
            "by_source": part.groupby(["dataset", "side"])
            .size()
            .unstack(fill_value=0)
            .to_dict("index"),
            "by_label": part["label"].value_counts().sort_index().to_dict()
            if role in ("xray", "type")
            else None,
        }
        if role == "heldout":
            continue
        table = pd.DataFrame(
            {
                "image_id": part["image_id"].to_numpy(),
                "group": part["split_group"].to_numpy(),
                "patient_id": part["patient_id"].to_numpy(),
                "split": part["side"].to_numpy(),
            }
        )
        with atomic_path(out_root / "splits" / name / f"{SCHEME}.parquet") as tmp:
            table.to_parquet(tmp, index=False)
    with atomic_path(out_root / "metrics" / "cascade" / f"{preset}.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=int) + "\n")
    return report
