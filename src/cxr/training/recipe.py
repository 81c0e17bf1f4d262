"""A training recipe: every setting of one training run, checked before anything runs.

Written in params.yaml (one per study and stage) and passed to ``cxr train --recipe-json``;
``augment`` is a nested object (see :class:`~cxr.training.augment.Augment`). What depends on
the data (findings present, input size, split sides) is checked when the data is opened.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from cxr.core.settings import Bounds, bounded, check_bounds, from_mapping, is_real
from cxr.tracking import check_name
from cxr.training.augment import Augment
from cxr.training.models import (
    ARCHITECTURES,
    INITS,
    TRANSFER_MODES,
    ModelSpec,
    imagenet_weights_url,
)

TASKS = ("multilabel", "binary", "multiclass")
#: The losses each task accepts.
LOSSES = {
    "multilabel": ("bce", "weighted_bce", "label_weighted_bce"),
    "binary": ("bce", "weighted_bce", "label_weighted_bce"),
    "multiclass": ("cross_entropy", "weighted_cross_entropy"),
}
OPTIMIZERS = ("adam", "radam", "sgd")
SCHEDULERS = ("plateau", "none")
#: Which epoch's weights a run keeps: the lowest validation loss, or the last (pretraining).
KEEPS = ("best", "last")
#: ``imagenet``: ImageNet's RGB mean/std as one grey channel; ``dataset``: the tensor folder's
#: stats.json; ``none``: pixels in [0, 1] (seed 003).
NORMALIZATIONS = ("imagenet", "dataset", "none")
#: The largest seed: torch, numpy and cxr's derived seeds all take it.
MAX_SEED = 2**63 - 1
#: Adam's and RAdam's betas.
BETA = Bounds(low=0, high=1, open_high=True)


@dataclass(frozen=True)
class Recipe:
    """One training run's settings (see the module docstring).

    Targets: ``multilabel`` trains one sigmoid output per finding of ``findings`` (``["all"]``:
    every finding of the data); ``binary`` one sigmoid output for ``positive``, a finding
    (``Nodule``) or a class of the ``label`` column against the rest (``malignant``);
    ``multiclass`` a softmax over the ``label`` classes, sorted as torchvision's ImageFolder.

    ``init``: ``random``, ``imagenet`` (the file must be in the local torch hub cache) or
    ``auto``: ImageNet where the cache has the file, else random with a warning
    (:func:`cxr.training.models.resolve_init`); ``cxr train`` records which one in run.json and
    MLflow (``init_weights``). A ``frozen`` or ``last_blocks`` recipe that would so start from
    random weights (no ImageNet file, no ``--init``) is refused: a frozen random backbone is a
    random projection that measures nothing. ``allow_random_features`` allows it.

    ``keep``: the weights saved, those of the epoch of lowest validation loss (``best``) or of
    the last epoch (``last``: pretraining, where a noisy validation loss would pick an early
    epoch); early stopping and the scheduler watch the validation loss either way.
    """

    study: str
    stage: str = "train"
    task: str = "multilabel"
    findings: tuple[str, ...] = ("all",)
    positive: str = ""
    architecture: str = "smallcnn_v1"
    input_size: int = bounded(64, low=1)
    init: str = "random"
    transfer: str = "full"
    normalize: str = "imagenet"
    loss: str = "bce"
    optimizer: str = "adam"
    lr: float = bounded(1e-3, low=0, open_low=True)
    betas: tuple[float, ...] = (0.9, 0.999)
    momentum: float = bounded(0.9, low=0, high=1, open_high=True)
    weight_decay: float = bounded(0.0, low=0)
    batch_size: int = bounded(32, low=1)
    epochs: int = bounded(10, low=1)
    scheduler: str = "plateau"
    plateau_factor: float = bounded(0.1, low=0, high=1, open_low=True, open_high=True)
    plateau_patience: int = bounded(3, low=0)
    early_stopping: int = bounded(0, low=0)
    keep: str = "best"
    augment: Augment = field(default_factory=Augment)
    seed: int = bounded(0, low=0, high=MAX_SEED)
    deterministic: bool = True
    allow_random_features: bool = False

    def __post_init__(self) -> None:
        for name in ("study", "stage"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise ValueError(f"recipe {name}: a name, got {value!r}")
            check_name(f"recipe {name}", value)
        choices = {
            "task": TASKS,
            "architecture": ARCHITECTURES,
            "init": INITS,
            "transfer": TRANSFER_MODES,
            "normalize": NORMALIZATIONS,
            "optimizer": OPTIMIZERS,
            "scheduler": SCHEDULERS,
            "keep": KEEPS,
        }
        for name, known in choices.items():
            if getattr(self, name) not in known:
                raise ValueError(
                    f"recipe {name}: unknown {getattr(self, name)!r}; choose one of {known}"
                )
        if self.loss not in LOSSES[self.task]:
            raise ValueError(
                f"recipe loss: {self.loss!r} does not fit task {self.task!r}; "
                f"choose one of {LOSSES[self.task]}"
            )
        if (self.task == "binary") != bool(self.positive):
            raise ValueError(
                "recipe positive: task 'binary' needs the positive finding or class, e.g. "
                '"Nodule", and only it takes one'
            )
        self._check_findings()
        check_bounds(self, "recipe")
        if len(self.betas) != 2 or not all(is_real(b) and BETA.holds(b) for b in self.betas):
            raise ValueError(
                f"recipe: 'betas' must be two numbers in [0, 1), got {list(self.betas)}"
            )
        try:
            ModelSpec(self.architecture, 1, self.input_size)
        except ValueError as err:
            raise ValueError(f"recipe input_size: {err}") from None
        if self.init == "imagenet":
            try:
                imagenet_weights_url(self.architecture)
            except ValueError as err:
                raise ValueError(f"recipe init: {err}") from None

    def _check_findings(self) -> None:
        findings = self.findings
        if not findings or not all(isinstance(f, str) and f for f in findings):
            raise ValueError(f"recipe findings: a list of finding names or ['all'], got {findings}")
        if self.task != "multilabel" and findings != ("all",):
            raise ValueError("recipe findings: only task 'multilabel' takes findings")
        if len(set(findings)) < len(findings) or ("all" in findings and len(findings) > 1):
            raise ValueError(
                f"recipe findings: each finding once, and 'all' alone, got {list(findings)}"
            )

    @classmethod
    def from_dict(cls, cfg: object) -> Recipe:
        """A recipe from its JSON form; a string ``findings`` is one name (or ``"all"``)."""
        if not isinstance(cfg, dict):
            raise ValueError(f"a recipe must be a JSON object, got {type(cfg).__name__}")
        cfg = dict(cfg)
        augment = Augment.from_dict(cfg.pop("augment", {}))
        if isinstance(cfg.get("findings"), str):
            cfg["findings"] = [cfg["findings"]]
        return from_mapping(cls, cfg, "recipe", augment=augment)

    def to_dict(self) -> dict:
        """The resolved recipe as plain JSON data (lists for tuples)."""
        return json_ready(dataclasses.asdict(self))


def json_ready(value: object) -> object:
    """Tuples as lists, recursively."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [json_ready(v) for v in value]
    return value
