"""The numbers the seed studies report (../shared/seeds.md), to print beside ours.

A :class:`Reference` mirrors the shape of ``metrics.json``: ``{metric: value}`` for a headline
number (``accuracy_overall``, ``auroc_macro``) or ``{metric: {output: value}}`` per finding or
class, with the dataset's own names (``Pleural_Thickening``, ``Viral Pneumonia``). The output
``"*"`` stands for the single output of a binary task, whatever its name. Fractions, not
percentages; ``std`` holds the spread over folds where the paper gives mean ± std.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: A reference value: a headline number, or one number per output.
Value = float | Mapping[str, float]


@dataclass(frozen=True)
class Reference:
    """One column of published numbers: ``label`` heads it in our tables."""

    label: str
    metrics: Mapping[str, Value]
    std: Mapping[str, Value] = field(default_factory=dict)

    def per_output(self) -> dict[str, Mapping[str, float]]:
        """The per-output metrics: ``{metric: {output: value}}``."""
        return {m: v for m, v in self.metrics.items() if isinstance(v, Mapping)}

    def headline(self) -> dict[str, float]:
        """The single-number metrics: ``{metric: value}``."""
        return {m: float(v) for m, v in self.metrics.items() if not isinstance(v, Mapping)}


def _auroc(*values: float) -> dict[str, float]:
    """Seed 002's order of the 14 ChestX-ray14 findings, as named in the label file."""
    names = [
        "Atelectasis",
        "Cardiomegaly",
        "Effusion",
        "Infiltration",
        "Mass",
        "Nodule",
        "Pneumonia",
        "Pneumothorax",
        "Consolidation",
        "Edema",
        "Emphysema",
        "Fibrosis",
        "Pleural_Thickening",
        "Hernia",
    ]
    return dict(zip(names, values, strict=True))


#: Seed 002, Module III: per-label AUROC of the ChestX-ray14 paper, CheXNet, and seed 002.
CHESTXRAY14_AUROC = _auroc(
    0.71, 0.80, 0.78, 0.60, 0.70, 0.67, 0.63, 0.80, 0.70, 0.83, 0.81, 0.76, 0.70, 0.76
)
CHEXNET_AUROC = _auroc(
    0.80, 0.92, 0.86, 0.73, 0.86, 0.78, 0.76, 0.88, 0.79, 0.88, 0.93, 0.80, 0.80, 0.91
)
SEED002_AUROC = _auroc(
    0.81, 0.91, 0.87, 0.72, 0.85, 0.78, 0.74, 0.90, 0.79, 0.91, 0.92, 0.81, 0.79, 0.99
)


def _per_finding(label: str, auroc: dict[str, float]) -> Reference:
    """A paper's 14 per-finding AUROCs, and their mean as its ``auroc_macro`` (what ours is:
    the mean over the findings), so that the headline tables show one number beside ours."""
    macro = round(sum(auroc.values()) / len(auroc), 4)
    return Reference(label, {"auroc": auroc, "auroc_macro": macro})


def _binary(label: str, acc: float, spec: float, sens: float, std: tuple = ()) -> Reference:
    """Seed 000 Table II row: accuracy, specificity, sensitivity (and their std over folds)."""
    names = ("accuracy", "specificity", "sensitivity")
    metrics = {m: {"*": v} for m, v in zip(names, (acc, spec, sens), strict=True)}
    return Reference(label, metrics, {m: {"*": s} for m, s in zip(names, std, strict=False)})


#: Published references by name (``cxr evaluate --paper NAME``).
REFERENCES: dict[str, tuple[Reference, ...]] = {
    "seed000-model-a": (_binary("Seed 000 Model A", 0.8402, 0.8534, 0.8271),),
    "seed000-model-b": (
        _binary("Seed 000 Model B", 0.6551, 0.8095, 0.4567, (0.0767, 0.2059, 0.2136)),
    ),
    "seed000-model-c": (
        _binary("Seed 000 Model C", 0.7443, 0.7496, 0.7468, (0.0601, 0.0985, 0.1533)),
    ),
    # Seed 001 reports the 14-label accuracy at 0.5 (correct labels / (14 x images)); its best
    # per-label AUROC (0.775, fibrosis) is given without saying which backbone: kept with both.
    "seed001-densenet121": (
        Reference("Seed 001 DenseNet121", {"label_accuracy": 0.84, "auroc": {"Fibrosis": 0.775}}),
    ),
    "seed001-densenet121-noaug": (
        Reference("Seed 001 DenseNet121 (no aug.)", {"label_accuracy": 0.82}),
    ),
    "seed001-resnet50": (
        Reference("Seed 001 ResNet50", {"label_accuracy": 0.76, "auroc": {"Fibrosis": 0.775}}),
    ),
    "seed002": tuple(
        _per_finding(label, auroc)
        for label, auroc in (
            ("ChestX-ray14", CHESTXRAY14_AUROC),
            ("CheXNet", CHEXNET_AUROC),
            ("Seed 002", SEED002_AUROC),
        )
    ),
    "seed002-module-i": (Reference("Seed 002 Module I", {"accuracy_overall": 0.987}),),
    "seed002-module-ii": (Reference("Seed 002 Module II", {"accuracy_overall": 0.976}),),
    # Seed 003's comparison of its three versions (test accuracy); "seed003" is the best, v3.
    "seed003": (Reference("Seed 003", {"accuracy_overall": 0.81}),),
    "seed003-v1": (Reference("Seed 003 version 1", {"accuracy_overall": 0.72}),),
    "seed003-v2": (Reference("Seed 003 version 2", {"accuracy_overall": 0.73}),),
    "seed004-alexnet": (Reference("Seed 004 AlexNet", {"accuracy_overall": 0.9386}),),
    "seed004-vgg19_bn": (Reference("Seed 004 VGG19_bn", {"accuracy_overall": 0.9433}),),
    "seed004-resnet50": (
        Reference("Seed 004 ResNet50", {"accuracy_overall": 0.9546, "recall": {"COVID": 0.9771}}),
    ),
    "seed004-logreg": (Reference("Seed 004 logistic regression", {"accuracy_overall": 0.6224}),),
}

#: Seed 002 Module I's reported confusion matrix (rows actual, columns predicted; the order of
#: the two classes is as printed in the paper, not given in seeds.md).
SEED002_MODULE_I_CONFUSION = ((4712, 5), (72, 4928))


#: What ``paper=`` accepts: a name of :data:`REFERENCES`, a Reference, ``{finding: AUROC}``,
#: or a list of names and References.
Paper = str | Reference | Mapping[str, float] | Sequence[str | Reference] | None


def references(paper: Paper) -> tuple[Reference, ...]:
    """The References that ``paper`` names (see :data:`Paper`)."""
    if paper is None:
        return ()
    if isinstance(paper, Sequence) and not isinstance(paper, str):
        return tuple(ref for item in paper for ref in references(item))
    if isinstance(paper, Reference):
        return (paper,)
    if isinstance(paper, str):
        if paper not in REFERENCES:
            raise ValueError(f"paper {paper!r}: unknown (known: {', '.join(REFERENCES)})")
        return REFERENCES[paper]
    return (Reference("paper", {"auroc": {str(k): float(v) for k, v in paper.items()}}),)
