"""What each job asks a scheduler for: memory (``mem_mb``) and wall time (``runtime``, minutes).

Calibrated on the job benchmarks of a full default run at demo scale on 2 CPU cores
(``logs/**/*.benchmark.tsv``: seconds ``s`` and peak resident memory ``max_rss``), then scaled to
the job in hand by the work it does:

* time: a start-up cost plus a cost per unit of work, the unit being an image at 64 x 64 pixels
  (training: per image and epoch). A job on 224 px images does (224/64)^2 = 12.25 units an image.
  At paper scale the training and CAM jobs run on a GPU, assumed :data:`GPU_SPEEDUP` times as
  fast as 2 CPU cores (DenseNet-121 at 224 px trains at 5-6 images/s on 2 cores here).
* memory: the process as measured (Python, torch and the model: ``max_rss``), plus the uint8
  tensors it maps (images x side^2 bytes), plus, on the CPU, activations growing with the
  pixels and batch size; on a GPU the activations live on the device and the host holds the
  CUDA context instead (:data:`CUDA_HOST_MB`).

Declared values carry a margin over the estimate (:data:`TIME_MARGIN`, :data:`MEMORY_MARGIN`)
and grow with each retry (``attempt``). Counts of images: a synthetic dataset's ``n``; a real
one's published size (:data:`REAL_IMAGES`), else its ``n``; a cascade set: its sources' sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cxr.plan.parts import CASCADE_SETS, Stage
from cxr.plan.plan import Plan

#: Declared = estimate x margin: the benchmarks ran on a quiet machine; a node may be shared.
TIME_MARGIN = 2.0
MEMORY_MARGIN = 1.5
#: No job asks for less (SLURM's time limit is in minutes; memory in MB, rounded to 256).
MIN_RUNTIME = 5
MIN_MEM_MB = 512
#: A GPU job's speed over 2 CPU cores (assumed; a data-centre GPU trains DenseNet-121 at
#: 224 px at several hundred images/s, these cores at 5-6).
GPU_SPEEDUP = 50
#: Host memory of a process holding a CUDA context, beside the model and data (assumed).
CUDA_HOST_MB = 4000
#: Python + torch + cxr, imported, before any model or data (logistic regression's 937 MB).
BASE_MB = 900
#: Start-up of a cxr command that imports torch (seconds).
STARTUP_S = 15.0

#: Seconds per training image and epoch at 64 px on 2 cores (``(s - STARTUP_S) / units`` of the
#: slowest demo job of each architecture), and that job's ``max_rss`` in MB (batch 32).
TRAIN_COST: dict[str, tuple[float, float]] = {
    "densenet121": (0.020, 1503),  # pretraining 5 ep x 1000: 106 s; seed000 model_b: 1503 MB
    "resnet50": (0.028, 1750),  # pretraining 8 ep x 1000 images: 233 s, 1750 MB
    "vgg19_bn": (0.030, 1409),  # seed004 3 ep x 800 images: 84 s, 1409 MB
    "alexnet": (0.002, 1012),  # pretraining 20 ep x 1000 images: 52 s, 1012 MB
    "smallcnn_v1": (0.002, 1082),  # seed003 15 ep x 800 images: 28-34 s, 1028-1082 MB
    "smallcnn_v2": (0.002, 1082),
    "smallcnn_v3": (0.002, 1082),
    "logreg": (0.0005, 937),  # seed004 20 ep x 800 images: 11 s, 937 MB
}
#: A forward pass's share of a training step (forward + backward + update).
FORWARD_SHARE = 1 / 3
#: An architecture not measured: the slowest and largest.
UNKNOWN_ARCHITECTURE = (0.030, 1750)
#: Grad-CAM: seconds per explained image and class at 64 px on 2 cores (seed001 resnet50:
#: 64 images x top 4 in 21 s); its peak memory (seed004 vgg19_bn: 1426 MB).
CAM_S = 0.025
CAM_MB = 1430

#: Published image counts of the real datasets (when ``source: real``).
REAL_IMAGES: dict[str, int] = {
    "nih": 112_120,  # ChestX-ray14
    "jsrt": 247,
    "covid_radiography": 21_165,  # COVID-19 Radiography Database, update 2
    "mura": 40_005,  # MURA v1.1: 36,808 train + 3,197 valid
}
#: Side in pixels of a real dataset's files (decoding cost); others: 1024.
REAL_SIDE: dict[str, int] = {"jsrt": 2048}

#: Rules that run on a GPU at paper scale (they declare ``gpu=1``).
GPU_RULES = frozenset({"train", "cam", "cam_compare"})


@dataclass(frozen=True)
class Need:
    """A job's estimate before margins: seconds and MB."""

    seconds: float
    mb: float


@dataclass(frozen=True)
class Sizing:
    """``mem_mb`` and ``runtime`` of every rule's jobs, by the job's wildcards, for a plan."""

    plan: Plan

    # --- what Snakemake asks -----------------------------------------------------------------

    def mem_mb(self, rule: str, attempt: int = 1, **wildcards: str) -> int:
        """Memory to ask for, in MB: the estimate x margin x attempt, rounded up to 256."""
        mb = max(MIN_MEM_MB, self.need(rule, **wildcards).mb * MEMORY_MARGIN)
        return 256 * math.ceil(mb * attempt / 256)

    def runtime(self, rule: str, attempt: int = 1, **wildcards: str) -> int:
        """Wall time to ask for, in minutes: the estimate x margin x attempt."""
        minutes = self.need(rule, **wildcards).seconds * TIME_MARGIN / 60
        return max(MIN_RUNTIME, math.ceil(minutes)) * attempt

    def need(self, rule: str, **wildcards: str) -> Need:
        """The estimate of one job of ``rule`` (before margins)."""
        estimate = getattr(self, f"_{rule}", None)
        if estimate is None:
            return Need(STARTUP_S + 60, 1024)  # bookkeeping: tables, figures, the report
        return estimate(**wildcards)

    # --- counts ------------------------------------------------------------------------------

    @property
    def on_gpu(self) -> bool:
        """Paper scale: training and CAM jobs run on a GPU."""
        return self.plan.scale == "paper"

    def images(self, dataset: str) -> int:
        """Images of a dataset (a cascade set: of its sources, an upper bound)."""
        if dataset in CASCADE_SETS or dataset == "cascade_heldout":
            cascade = self.plan.cascade
            sources = cascade.sources if cascade is not None else {}
            return sum(self.images(source) for source in sources)
        found = self.plan.datasets[dataset]
        if found.source == "real":
            return REAL_IMAGES.get(dataset, found.synthetic.n)
        return found.synthetic.n

    def side(self, dataset: str) -> int:
        """The side of a dataset's files, as decoded by cxr preprocess."""
        found = self.plan.datasets[dataset]
        if found.source == "real":
            return REAL_SIDE.get(dataset, 1024)
        return 2048 if dataset == "jsrt" else found.synthetic.size  # JSRT files: 2048 raw

    def tensors_mb(self, dataset: str, preset: str) -> float:
        """The uint8 tensors of a dataset at a preset."""
        size = self.plan.presets[preset]["size"]
        return self.images(dataset) * size * size / 2**20

    @staticmethod
    def pixels(size: int) -> float:
        """Units of work of one image of ``size`` px: 1 at 64 px."""
        return (size / 64) ** 2

    # --- data --------------------------------------------------------------------------------

    def _synth(self, dataset: str) -> Need:
        found = self.plan.datasets[dataset].synthetic
        return Need(5 + 0.02 * found.n * (found.size / 256) ** 2, 500)  # jsrt: 9 s, 431 MB

    def _ingest(self, dataset: str) -> Need:
        return Need(5 + 0.001 * self.images(dataset), 256 + 0.005 * self.images(dataset))

    def _preprocess(self, dataset: str, preset: str) -> Need:
        # decode + equalise + median + resize of a 1024 px PNG: about 0.011 s (environment.md)
        seconds = 5 + 0.011 * self.images(dataset) * (self.side(dataset) / 1024) ** 2
        return Need(seconds, 400 + self.tensors_mb(dataset, preset))  # jsrt 224: 5 s, 416 MB

    def _duplicates(self, dataset: str) -> Need:
        # NIH 1,200 images: 29 s, 802 MB; 112,120 images in under 2 minutes, flat memory
        built = self.plan.builds.get(dataset, ())
        tensors = self.tensors_mb(dataset, built[0]) if built else 0.0
        return Need(30 + 0.001 * self.images(dataset), 900 + tensors)

    def _split(self, dataset: str, scheme: str) -> Need:
        return Need(10 + 0.001 * self.images(dataset), 512 + 0.01 * self.images(dataset))

    _check_leakage = _split

    def _cascade_sets(self) -> Need:
        cascade = self.plan.cascade
        if cascade is None:
            return Need(STARTUP_S, 1100)
        size = self.plan.presets[cascade.preset]["size"]
        units = self.images("cascade_heldout") * self.pixels(size)
        tensors = sum(self.tensors_mb(s, cascade.preset) for s in cascade.sources)
        # 3,000 images at 64 px: 26 s, 1062 MB (reads the sources' tensors, writes the sets')
        return Need(STARTUP_S + 0.005 * units, 1100 + 2 * tensors)

    # --- models ------------------------------------------------------------------------------

    def _stage(self, study: str, stage: str) -> Stage:
        return self.plan.stage(study, stage)

    def _model_mb(self, stage: Stage, rss: float, batch: int) -> float:
        """A model job's memory: the process as measured at 64 px and batch 32, its activations
        scaled (CPU) or a CUDA context instead (GPU), and the stage's tensors."""
        extra = rss - BASE_MB
        size = stage.recipe["input_size"]
        if self.on_gpu:
            process = CUDA_HOST_MB + rss
        else:
            process = BASE_MB + extra * max(1.0, self.pixels(size) * batch / 32)
        return process + self.tensors_mb(stage.dataset, stage.preset)

    def _train(self, study: str, stage: str, column: str) -> Need:
        found = self._stage(study, stage)
        recipe = found.recipe
        per_unit, rss = TRAIN_COST.get(recipe["architecture"], UNKNOWN_ARCHITECTURE)
        passes = self.backbone_passes(recipe)
        units = self.images(found.dataset) * passes * self.pixels(recipe["input_size"])
        speed = GPU_SPEEDUP if self.on_gpu else 1
        seconds = STARTUP_S + per_unit * units / speed
        return Need(seconds, self._model_mb(found, rss, recipe["batch_size"]))

    @staticmethod
    def backbone_passes(recipe: dict) -> float:
        """Epochs of backbone work, in full training epochs: a frozen backbone only runs
        forward (:data:`FORWARD_SHARE` of a training step), and without augmentation only
        once (cxr train caches its features)."""
        epochs = recipe["epochs"]
        if recipe.get("transfer") != "frozen":
            return epochs
        augmented = any(recipe.get("augment", {}).values())
        return (epochs if augmented else 1) * FORWARD_SHARE

    def _evaluate(self, study: str, stage: str, column: str = "") -> Need:
        # 1,200 images: 9 s, 347 MB (bootstrap intervals over the test predictions)
        images = self.images(self._stage(study, stage).dataset)
        return Need(10 + 0.002 * images, 400 + 0.02 * images)

    def _evaluate_pooled(self, study: str, stage: str) -> Need:
        return self._evaluate(study, stage)

    def _explained(self, stage: Stage) -> int:
        cam = stage.cam
        images = self.images(stage.dataset)
        if cam is None or cam.max_images == "all":
            return images
        return min(images, int(cam.max_images))

    def _cam(self, study: str, stage: str, column: str) -> Need:
        found = self._stage(study, stage)
        top_k = found.cam.top_k if found.cam is not None else 1
        units = self._explained(found) * top_k * self.pixels(found.recipe["input_size"])
        speed = GPU_SPEEDUP if self.on_gpu else 1
        return Need(STARTUP_S + CAM_S * units / speed, self._model_mb(found, CAM_MB, 1))

    def _cam_compare(self, study: str, pair: str, column: str) -> Need:
        compare = self.plan.studies[study].compare
        names = compare.stages if compare is not None else tuple(pair.split("_vs_"))
        first = self._stage(study, names[0])
        units = (compare.images if compare else 4) * len(names)
        units *= self.pixels(first.recipe["input_size"])
        speed = GPU_SPEEDUP if self.on_gpu else 1
        # 2 stages x 4 images: 11 s, 1007 MB
        return Need(STARTUP_S + CAM_S * units / speed, self._model_mb(first, CAM_MB, 1))

    def _cascade_evaluate(self) -> Need:
        cascade = self.plan.cascade
        if cascade is None:
            return Need(STARTUP_S, CAM_MB)
        images = self.images("cascade_heldout")
        size = self.plan.presets[cascade.preset]["size"]
        # three modules in a row on the held-out set, on the CPU: 3,000 images: 19 s, 1305 MB
        seconds = STARTUP_S + 0.003 * images * self.pixels(size)
        return Need(
            seconds, 1300 + sum(self.tensors_mb(s, cascade.preset) for s in cascade.sources)
        )
