"""Build the plan of params.yaml: validate it, merge its scale, check what refers to what."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from cxr.cascade import CHEST_FRACTION
from cxr.data.presets import Preset
from cxr.explanation.settings import CamSettings, CompareSettings
from cxr.layout import Layout
from cxr.plan.parts import (
    CASCADE_SCHEME,
    CASCADE_SETS,
    PRETRAINING,
    SPLIT,
    Cam,
    Cascade,
    CompareCams,
    Dataset,
    Evaluate,
    PlanError,
    Stage,
    Study,
    Synthetic,
)
from cxr.plan.plan import Plan
from cxr.plan.schema import defaults, validated
from cxr.training import imagenet


def load(params: Mapping, scale: str | None = None, layout: Layout | None = None) -> Plan:
    """The plan of ``params`` (params.yaml as read) at ``scale`` (default: its own), its paths
    laid out by ``layout`` (default: the project's)."""
    layout = layout or Layout()
    raw = validated(params if scale is None else {**params, "scale": scale})
    scale = raw["scale"]
    studies = raw.get("training", {}).get("studies", {})
    schemes = raw["split"]
    presets = {name: _preset(cfg) for name, cfg in raw["preprocess"]["presets"].items()}
    raw["preprocess"]["presets"] = presets
    cascade = _cascade(studies, scale, schemes)
    datasets = {name: _dataset(name, cfg, layout) for name, cfg in raw["datasets"].items()}
    builds = {name: tuple(presets) for name, presets in raw["preprocess"]["build"].items()}
    built = {name: _study(name, cfg, scale, raw, cascade) for name, cfg in studies.items()}
    if "pretraining" in raw:
        built, corpus = _with_stand_ins(built, raw, datasets)
        builds[raw["pretraining"]["dataset"]] = corpus
    return Plan(
        scale=scale,
        seed=raw["seed"],
        datasets=datasets,
        presets=presets,
        builds=builds,
        schemes=schemes,
        studies=built,
        layout=layout,
    )


def _with_stand_ins(
    studies: dict[str, Study], raw: dict, datasets: dict[str, Dataset]
) -> tuple[dict[str, Study], tuple[str, ...]]:
    """Studies whose ``init: auto`` stages, for want of a cached ImageNet file, start from a
    backbone pretrained on the synthetic corpus, led by the :data:`PRETRAINING` study that
    trains those backbones (one per architecture and input size, on the first user's
    preset); and the corpus's presets.

    The corpus is built only when some enabled stage needs it; with none, its dataset is
    switched off and the studies are returned as they are.
    """
    cfg = raw["pretraining"]
    where = "pretraining"
    if PRETRAINING in studies:
        raise PlanError(f"{where}: a study may not be named {PRETRAINING!r} (cxr makes it)")
    corpus = cfg["dataset"]
    if corpus not in datasets:
        raise PlanError(f"{where}: dataset {corpus!r} is not in datasets")
    if cfg["split"] not in raw["split"].get(corpus, {}):
        raise PlanError(f"{where}: {corpus} has no split scheme {cfg['split']!r}")
    stand_ins: dict[str, Stage] = {}
    out: dict[str, Study] = {}
    for name, study in studies.items():
        stages = {}
        for stage in study.stages.values():
            if _reads_enabled_data(study, datasets) and _needs_stand_in(stage):
                key = f"{stage.recipe['architecture']}_{stage.recipe['input_size']}px"
                if key not in stand_ins:
                    stand_ins[key] = _stand_in(key, stage, cfg, raw)
                columns = dict.fromkeys(stage.columns, SPLIT)
                stage = replace(stage, init_from=key, init_study=PRETRAINING, init_columns=columns)
            stages[stage.name] = stage
        out[name] = replace(study, stages=stages)
    if not stand_ins:
        datasets[corpus] = replace(datasets[corpus], enabled=False)
        return studies, ()
    lead = Study(PRETRAINING, True, stand_ins, None, None)
    presets = tuple(dict.fromkeys(s.preset for s in stand_ins.values()))
    return {PRETRAINING: lead, **out}, presets


def _reads_enabled_data(study: Study, datasets: dict[str, Dataset]) -> bool:
    """An enabled study whose datasets (a cascade set's: its sources) are all enabled, as
    :attr:`Plan.trained` will see it: only its stages get stand-ins."""
    names = {stage.dataset for stage in study.stages.values()}
    if study.cascade is not None:
        names = (names - set(CASCADE_SETS)) | set(study.cascade.sources)
    return study.enabled and all(n in datasets and datasets[n].enabled for n in names)


def _needs_stand_in(stage: Stage) -> bool:
    """A stage that asks for ImageNet features (``init: auto``) the cache cannot give."""
    architecture = stage.recipe.get("architecture", "")
    return (
        stage.init_from is None
        and stage.recipe.get("init") == "auto"
        and architecture in imagenet.FILES
        and not imagenet.cached(architecture)
    )


def _stand_in(name: str, user: Stage, cfg: dict, raw: dict) -> Stage:
    """The pretraining stage of ``user``'s architecture at ``user``'s preset and size."""
    architecture = user.recipe["architecture"]
    recipe = {
        "seed": raw["seed"],
        **cfg["recipe"],
        **cfg.get("by_architecture", {}).get(architecture, {}),
        "architecture": architecture,
        "study": PRETRAINING,
        "stage": name,
        "input_size": user.recipe["input_size"],
    }
    evaluate = defaults("evaluate")
    return Stage(
        study=PRETRAINING,
        name=name,
        dataset=cfg["dataset"],
        preset=user.preset,
        split=cfg["split"],
        columns=(SPLIT,),
        init_from=None,
        init_columns={},
        recipe=recipe,
        evaluate=Evaluate(evaluate["threshold"], ()),
        cam=None,  # the stand-in is judged by its test AUROC; its maps explain nothing here
    )


def _preset(cfg: dict) -> dict:
    """A preset of params.yaml with :class:`Preset`'s defaults filled in (the name is added
    where the preset is used)."""
    filled = {f.name: f.default for f in fields(Preset) if f.name not in ("size", "steps", "name")}
    return filled | cfg


def _cam(cfg: dict) -> Cam:
    """A stage's ``cam`` block with :class:`CamSettings`' defaults filled in."""
    default = CamSettings()
    return Cam(
        method=cfg.get("method", default.method),
        top_k=cfg.get("top_k", default.top_k),
        images=cfg.get("images", default.figure_images),
        max_images=cfg.get("max_images", default.max_images or "all"),
        layer=cfg.get("layer", default.layer),
    )


def _merged(base: Mapping, over: Mapping) -> dict:
    """``over`` merged into ``base`` key by key, nested mappings included (a new dict)."""
    out = dict(base)
    for key, value in over.items():
        nested = isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
        out[key] = _merged(out[key], value) if nested else value
    return out


def _at_scale(block: Mapping, scale: str) -> dict:
    """A stage or cascade block at ``scale``: at ``paper``, its ``paper`` block merged over it."""
    cfg = {key: value for key, value in block.items() if key != "paper"}
    return _merged(cfg, block.get("paper", {})) if scale == "paper" else cfg


def _dataset(name: str, cfg: dict, layout: Layout) -> Dataset:
    folder = layout.synthetic(name) if cfg["source"] == "synthetic" else cfg["root"]
    return Dataset(name, cfg["enabled"], cfg["source"], folder, Synthetic(**cfg["synthetic"]))


def _cascade(studies: dict, scale: str, schemes: dict) -> Cascade | None:
    """The cascade block at ``scale``, of the one study that may have one."""
    names = [name for name, cfg in studies.items() if "cascade" in cfg]
    if len(names) > 1:
        raise PlanError(f"only one study may have a cascade; found {', '.join(names)}")
    if not names:
        return None
    study = names[0]
    cfg = _at_scale(studies[study]["cascade"], scale)
    for source, scheme in cfg["sources"].items():
        if scheme not in schemes.get(source, {}):
            raise PlanError(f"{study} cascade: {source} has no split scheme {scheme!r}")
    unknown = [module for module in cfg["modules"] if module not in studies[study]["stages"]]
    if unknown:
        raise PlanError(f"{study} cascade: module(s) {unknown} are not stages of {study}")
    fraction = cfg.get("chest_fraction", CHEST_FRACTION)
    return Cascade(study, cfg["preset"], cfg["sources"], fraction, tuple(cfg["modules"]))


def _study(name: str, cfg: dict, scale: str, raw: dict, cascade: Cascade | None) -> Study:
    stages: dict[str, Stage] = {}
    skipped: list[str] = []
    for stage, block in cfg["stages"].items():
        at_scale = _at_scale(block, scale)
        if not at_scale.get("enabled", True):
            skipped.append(stage)
            continue
        stages[stage] = _stage(name, stage, at_scale, raw, cascade, stages)
    if not stages:
        raise PlanError(f"training {name}: every stage is disabled at scale {scale}")
    own = cascade if cascade is not None and cascade.study == name else None
    compare = None
    if "compare_cams" in cfg:
        compare = _compare(name, stages, _at_scale(cfg["compare_cams"], scale))
    headline = cfg.get("headline", list(stages)[-1])
    if headline not in stages:
        raise PlanError(
            f"training {name}: headline {headline!r} is not a stage of {name} at scale {scale}"
        )
    return Study(name, cfg["enabled"], stages, compare, own, headline, tuple(skipped))


def _stage(
    study: str, name: str, cfg: dict, raw: dict, cascade: Cascade | None, earlier: dict
) -> Stage:
    """A stage, checked: its preset, split scheme (or cascade set), folds and init_from."""
    where = f"training {study}/{name}"
    presets, schemes = raw["preprocess"]["presets"], raw["split"]
    if cfg["preset"] not in presets:
        raise PlanError(f"{where}: unknown preset {cfg['preset']!r}")
    if cfg["dataset"] in CASCADE_SETS:
        _check_cascade_stage(where, study, cfg, cascade)
    elif cfg["split"] not in schemes.get(cfg["dataset"], {}):
        raise PlanError(f"{where}: {cfg['dataset']} has no split scheme {cfg['split']!r}")
    columns = _columns(where, cfg, schemes)
    init_from = cfg.get("init_from")
    if init_from is not None and init_from not in earlier:
        raise PlanError(f"{where}: init_from {init_from!r} is not an earlier stage of {study}")
    recipe = {
        "seed": raw["seed"],
        **cfg["recipe"],
        "study": study,
        "stage": name,
        "input_size": presets[cfg["preset"]]["size"],
    }
    evaluate = defaults("evaluate") | cfg.get("evaluate", {})
    return Stage(
        study=study,
        name=name,
        dataset=cfg["dataset"],
        preset=cfg["preset"],
        split=cfg["split"],
        columns=columns,
        init_from=init_from,
        init_columns={} if init_from is None else _init_columns(where, earlier[init_from], columns),
        recipe=recipe,
        evaluate=Evaluate(evaluate["threshold"], tuple(evaluate.get("paper", ()))),
        cam=_cam(cfg.get("cam", {})) if _draws_maps(cfg, recipe) else None,
    )


def _draws_maps(cfg: dict, recipe: dict) -> bool:
    """Whether ``cxr cam`` explains the stage: not when its cam block says ``enabled: false``,
    nor for logistic regression, which has no feature map to draw."""
    return cfg.get("cam", {}).get("enabled", True) and recipe.get("architecture") != "logreg"


def _check_cascade_stage(where: str, study: str, cfg: dict, cascade: Cascade | None) -> None:
    """A stage on a cascade set reads it at the cascade's preset and ``heldout`` split."""
    if cascade is None or cascade.study != study:
        raise PlanError(f"{where}: {cfg['dataset']} needs a `cascade` block in {study}")
    if cfg["preset"] != cascade.preset or cfg["split"] != CASCADE_SCHEME:
        raise PlanError(
            f"{where}: a cascade set is read at preset {cascade.preset!r} and split "
            f"{CASCADE_SCHEME!r} (the cascade block's), not {cfg['preset']!r} / {cfg['split']!r}"
        )


def _columns(where: str, cfg: dict, schemes: dict) -> tuple[str, ...]:
    """The split columns a stage trains: ("split",), or fold_<i> of its k-fold scheme."""
    folds = cfg.get("folds")
    if folds is None:
        return (SPLIT,)
    scheme: dict[str, Any] = schemes.get(cfg["dataset"], {}).get(cfg["split"], {})
    method = scheme.get("method", "the cascade's held-out split")
    if method != "kfold":
        raise PlanError(
            f"{where}: folds need a kfold scheme; {cfg['split']} is {method} (remove `folds` to "
            f"train its `split` column)"
        )
    numbers = range(scheme["folds"]) if folds == "all" else folds
    beyond = [i for i in numbers if i >= scheme["folds"]]
    if beyond:
        raise PlanError(
            f"{where}: fold(s) {beyond} not in {cfg['split']} (folds 0..{scheme['folds'] - 1})"
        )
    return tuple(f"fold_{i}" for i in numbers)


def _init_columns(where: str, source: Stage, columns: tuple[str, ...]) -> dict[str, str]:
    """The model of the init_from stage that starts each column: its `split` model, else the
    same fold."""
    if source.columns == (SPLIT,):
        return dict.fromkeys(columns, SPLIT)
    for column in columns:
        if column not in source.columns:
            raise PlanError(
                f"{where}: {column} starts from {source.name}'s {column}, which {source.name} "
                f"does not train (it trains {', '.join(source.columns)})"
            )
    return {column: column for column in columns}


def _compare(study: str, stages: dict[str, Stage], cfg: dict) -> CompareCams:
    """A ``compare_cams``, checked: known stages, one label each, seeing the same images
    (dataset, preset, split scheme) on at least one split column they all train."""
    where, names = f"training {study}: compare_cams", cfg["stages"]
    unknown = [s for s in names if s not in stages]
    if unknown:
        raise PlanError(f"{where}: unknown stage(s) {unknown}")
    labels = cfg.get("labels") or names
    if len(labels) != len(names):
        raise PlanError(f"{where}: {len(labels)} labels for {len(names)} stages")
    images = {s: (stages[s].dataset, stages[s].preset, stages[s].split) for s in names}
    if len(set(images.values())) > 1:
        raise PlanError(
            f"{where}: the stages must share dataset, preset and split scheme (they have {images})"
        )
    shared = set.intersection(*(set(stages[s].columns) for s in names))
    columns = tuple(c for c in stages[names[0]].columns if c in shared)
    if not columns:
        raise PlanError(f"{where}: {', '.join(names)} train no split column in common")
    folds = cfg.get("folds", "all")
    if folds != "all":
        wanted = [f"fold_{i}" for i in folds]
        if missing := [c for c in wanted if c not in columns]:
            raise PlanError(f"{where}: {', '.join(names)} do not all train {missing}")
        columns = tuple(wanted)
    default = CompareSettings()
    method, images = cfg.get("method", default.method), cfg.get("images", default.images)
    return CompareCams(tuple(names), tuple(labels), method, images, columns)
