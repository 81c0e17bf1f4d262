"""A cascade study's closing section: its end-to-end table and routes figure (``cxr
cascade-evaluate``), with the held-out set's make-up (``cxr cascade-sets``)."""

from __future__ import annotations

from pathlib import Path

from cxr.core.readers import read_json_object, value_at
from cxr.layout import Layout
from cxr.reporting.document import Heading, Paragraph, Table
from cxr.reporting.provenance import recorded_in
from cxr.reporting.scores import Score, interval, number
from cxr.reporting.sections import Sections
from cxr.reporting.tables import md_table

EVALUATED = "a metrics.json written by cxr cascade-evaluate"
MADE = "a report written by cxr cascade-sets"


def cascade_sets(path: Path) -> tuple[dict[str, int], dict]:
    """Images per source of the held-out set, and the whole report of ``cxr cascade-sets``
    (checked to hold what the report reads)."""
    made = read_json_object(path, MADE)
    for key in ("preset", "chest_fraction", "sets", "dropped_across_train_and_val"):
        value_at(made, path, key, MADE)
    dropped = value_at(made, path, "dropped_near_duplicates_of_heldout", MADE)
    by_source = value_at(made, path, "sets.cascade_heldout.by_source", MADE)
    if not isinstance(by_source, dict) or not isinstance(dropped, list | dict):
        raise ValueError(f"{path}: its held-out counts are of the wrong type: not {MADE}")
    try:
        held = {n: sum(v.values()) for n, v in sorted(by_source.items())}
    except (AttributeError, TypeError) as err:
        raise ValueError(f"{path}: held-out counts that are not numbers: not {MADE}") from err
    return held, made


def end_to_end_score(layout: Layout, study: str) -> Score | None:
    """The cascade's end-to-end accuracy with its interval against the majority baseline, from
    its metrics.json (from its predictions.csv where an older metrics.json lacks them); None
    when the study has no end-to-end evaluation."""
    folder = Path(layout.cascade_evaluation(study))
    path = folder / "metrics.json"
    if not path.is_file():
        return None
    metrics = read_json_object(path, EVALUATED)
    if number(metrics.get("end_to_end_accuracy")) is None:
        return None
    predictions = folder / "predictions.csv"
    if "majority_share" not in metrics and predictions.is_file():
        import pandas as pd  # here: only an older metrics.json needs it

        from cxr.cascade.baseline import COLUMNS, baselines

        table = pd.read_csv(predictions)
        if set(COLUMNS) <= set(table.columns):
            metrics = {**baselines(table), **metrics}
    low, high = interval(metrics.get("end_to_end_accuracy_ci"))
    published = metrics.get("paper")
    paper = number(published.get("end_to_end_accuracy")) if isinstance(published, dict) else None
    images = number(metrics.get("images"))
    return Score(
        "accuracy",
        number(metrics.get("end_to_end_accuracy")),
        low,
        high,
        number(metrics.get("majority_share")),
        (("paper", paper),) if paper is not None else (),
        int(images) if images is not None else None,
    )


def end_to_end(sections: Sections, study: str) -> list:
    """A cascade study's end-to-end table (``cxr cascade-evaluate``), if it has one."""
    layout = sections.layout
    folder = Path(layout.cascade_evaluation(study))
    if not folder.is_dir():
        return []
    blocks: list = [Heading(f"{study} / the cascade end to end", 2)]
    settings = "Settings: each module's, in its section above."
    metrics, preset = folder / "metrics.json", ""
    if metrics.is_file():
        heldout = value_at(read_json_object(metrics, EVALUATED), metrics, "heldout", EVALUATED)
        preset = recorded_in(Path(str(heldout)))[1] or ""
    made_path = Path(layout.cascade_report(preset)) if preset else None
    if made_path is not None and made_path.is_file():
        held, made = cascade_sets(made_path)
        kinds = sorted({sections.sources[n] for n in made["sets"] if n in sections.sources})
        kinds = kinds or ["source not given"]
        settings = (
            f"Settings: each module's, in its section above; preset {made['preset']}, "
            f"chest fraction {made['chest_fraction']}. Data: {', '.join(kinds)}."
        )
        blocks.append(
            Paragraph(
                f"Held-out mixed set ({made['preset']}): "
                + ", ".join(f"{n} {v}" for n, v in held.items())
                + f" images, every source's test side; data: {', '.join(kinds)}. "
                f"{len(made['dropped_near_duplicates_of_heldout'])} training image(s) were "
                "left out of every module for sharing a patient or a picture with a "
                f"held-out image, {made['dropped_across_train_and_val']} for crossing "
                "training and validation."
            )
        )
    table = folder / "table.md"
    if not table.is_file():
        return [*blocks, sections.missing(table, "the end-to-end table")]
    title, header, rows = md_table(table)
    caption = (
        f"{study}: {title}. An image is right when every module it should pass is right: "
        "Module I (X-ray or not), Module II (its type), and for a chest X-ray with labels, "
        "Module III's verdict (any finding at its threshold, or none). Paper: 0.91 end "
        f"to end. {settings}"
    )
    blocks.append(Table(header, rows, caption))
    link = sections.link(folder / "routes.png", "routes.png")
    what = (
        f"{study}: each held-out image's true type (rows) against where the cascade sent "
        f"it. {settings}"
    )
    blocks.append(Table(["figure"], [[link]], what))
    return blocks
