# Shared helpers: config validation, dataset lists and input functions. No file is written here.
import json
import shlex
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")


validate(config, schema="../schemas/params.schema.yaml")

DATASETS = [name for name, ds in config["datasets"].items() if ds["enabled"]]


wildcard_constraints:
    dataset=r"[a-z0-9_]+",
    preset=r"[A-Za-z0-9_]+",
    scheme=r"[A-Za-z0-9_]+",


def synthetic_root(dataset):
    """Where the embedded miniature of a dataset is generated."""
    return f"data/synthetic/{dataset}"


def root_of(dataset):
    """The folder `cxr ingest` reads: the generated miniature, or the user's real download."""
    ds = config["datasets"][dataset]
    return synthetic_root(dataset) if ds["source"] == "synthetic" else ds["root"]


def dataset_root(wildcards):
    return root_of(wildcards.dataset)


def pointer_of(dataset):
    """Where the DVC pointer of a dataset's folder is (it may not exist)."""
    root = Path(root_of(dataset))  # Path drops a trailing separator
    return root.with_name(f"{root.name}.dvc")


def dataset_inputs(wildcards):
    """The raw inputs of a dataset: its folder, plus its DVC pointer when it is DVC-tracked.

    The pointer matters: `dvc checkout` restores old files with old timestamps, which Snakemake
    would miss; git rewrites the small pointer, so listing it triggers the rerun.
    """
    root, pointer = dataset_root(wildcards), pointer_of(wildcards.dataset)
    return [root, str(pointer)] if pointer.exists() else [root]


def synth_args(wildcards):
    """Command-line arguments of `cxr synth` for a dataset (a params value: edits rerun it)."""
    s = config["datasets"][wildcards.dataset]["synthetic"]
    return f"--n {s['n']} --size {s['size']} --variant {s['variant']} --seed {config['seed']}"


def gallery_panels(wildcards):
    """`--panel NAME INDEX ROOT` arguments of `cxr gallery`, one per enabled dataset."""
    return " ".join(
        f"--panel {name} results/ingest/{name}/index.parquet {root_of(name)}"
        for name in DATASETS
    )


def dvc_pointer(wildcards):
    """The dataset's DVC pointer when it is DVC-tracked (so new data versions rerun), else []."""
    return [p for p in dataset_inputs(wildcards) if p.endswith(".dvc")]


def preset_json(wildcards):
    """A preset as JSON (a params value: editing the preset reruns exactly its outputs)."""
    return json.dumps(config["preprocess"]["presets"][wildcards.preset], sort_keys=True)


def grouped_preset_dir(wildcards):
    """The preprocessed tensors a dataset's splits are made from (its first built preset)."""
    if wildcards.dataset in CASCADE_SETS:
        return f"results/preprocessed/{wildcards.dataset}/{cascade_config()['preset']}"
    preset = config["preprocess"]["build"][wildcards.dataset][0]
    return f"results/preprocessed/{wildcards.dataset}/{preset}"


def scheme_json(wildcards):
    return json.dumps(
        config["split"][wildcards.dataset][wildcards.scheme], sort_keys=True
    )


def preprocessed_targets():
    build = config["preprocess"]["build"]
    return [f"results/preprocessed/{d}/{p}" for d in DATASETS for p in build.get(d, [])]


def leakage_reports():
    split = config["split"]
    return [
        f"results/metrics/splits/{d}/{s}.json"
        for d in DATASETS
        for s in split.get(d, {})
    ]


# --- training: studies x stages x split columns (params.yaml `training`, `scale`) -------------

SCALE = config.get("scale", "demo")
STUDIES = config.get("training", {}).get("studies", {})


wildcard_constraints:
    study=r"[A-Za-z0-9][A-Za-z0-9_]*",
    stage=r"[A-Za-z0-9][A-Za-z0-9_]*",
    column=r"split|fold_\d+",


def merged(base, over):
    """``over`` merged into ``base`` key by key, nested mappings included (a new dict)."""
    out = dict(base)
    for key, value in over.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merged(out[key], value) if nested else value
    return out


def stage_config(study, stage):
    """A stage at the configured scale: at `paper`, its `paper` block merged over it."""
    cfg = dict(STUDIES[study]["stages"][stage])
    paper = cfg.pop("paper", {})
    return merged(cfg, paper) if SCALE == "paper" else cfg


def stage_columns(study, stage):
    """The split columns a stage trains: ["split"], or "fold_<i>" of its k-fold scheme."""
    cfg = stage_config(study, stage)
    folds = cfg.get("folds")
    if folds is None:
        return ["split"]
    scheme = config["split"][cfg["dataset"]][cfg["split"]]
    if scheme["method"] != "kfold":
        raise WorkflowError(
            f"training {study}/{stage}: folds need a kfold scheme; {cfg['split']} is "
            f"{scheme['method']} (remove `folds` to train its `split` column)"
        )
    numbers = range(scheme["folds"]) if folds == "all" else folds
    beyond = [i for i in numbers if i >= scheme["folds"]]
    if beyond:
        raise WorkflowError(
            f"training {study}/{stage}: fold(s) {beyond} not in {cfg['split']} "
            f"(folds 0..{scheme['folds'] - 1})"
        )
    return [f"fold_{i}" for i in numbers]


def init_column(study, stage, column):
    """The model of `init_from` that starts `column`: its `split` model, else the same fold."""
    source = stage_config(study, stage)["init_from"]
    columns = stage_columns(study, source)
    if columns == ["split"]:
        return "split"
    if column in columns:
        return column
    raise WorkflowError(
        f"training {study}/{stage}: {column} starts from {source}'s {column}, which "
        f"{source} does not train (it trains {', '.join(columns)})"
    )


def check_stages(study):
    """Fail at parse time on a stage naming an unknown preset, scheme or init stage."""
    earlier = []
    for stage in STUDIES[study]["stages"]:
        cfg = stage_config(study, stage)
        where = f"training {study}/{stage}"
        if cfg["preset"] not in config["preprocess"]["presets"]:
            raise WorkflowError(f"{where}: unknown preset {cfg['preset']!r}")
        if cfg["dataset"] in CASCADE_SETS:
            check_cascade_stage(study, stage, cfg)
        elif cfg["split"] not in config["split"].get(cfg["dataset"], {}):
            raise WorkflowError(
                f"{where}: {cfg['dataset']} has no split scheme {cfg['split']!r}"
            )
        columns = stage_columns(study, stage)  # checks the folds
        if "init_from" in cfg:
            if cfg["init_from"] not in earlier:
                raise WorkflowError(
                    f"{where}: init_from {cfg['init_from']!r} is not an earlier stage of {study}"
                )
            for column in columns:
                init_column(study, stage, column)
        earlier.append(stage)


# --- seed 002's cascade: a held-out mixed set and its modules' sets (cxr cascade-sets) --------

CASCADE_SETS = ("cascade_xray", "cascade_type", "cascade_chest")
CASCADE_SCHEME = "heldout"


def cascade_study():
    """The study with a `cascade` block, or None (at most one study may have one)."""
    studies = [study for study, cfg in STUDIES.items() if "cascade" in cfg]
    if len(studies) > 1:
        raise WorkflowError(
            f"only one study may have a cascade; found {', '.join(studies)}"
        )
    return studies[0] if studies else None


def cascade_config():
    """The cascade block at the configured scale (its `paper` block merged at `paper`)."""
    cfg = dict(STUDIES[cascade_study()]["cascade"])
    paper = cfg.pop("paper", {})
    return merged(cfg, paper) if SCALE == "paper" else cfg


def available(dataset):
    """An enabled dataset, or a cascade set whose sources are all enabled."""
    if dataset in CASCADE_SETS:
        return cascade_study() is not None and all(
            source in DATASETS for source in cascade_config()["sources"]
        )
    return dataset in DATASETS


def check_cascade_stage(study, stage, cfg):
    """A stage on a cascade set reads it at the cascade's preset and `heldout` split."""
    where = f"training {study}/{stage}"
    if "cascade" not in STUDIES[study]:
        raise WorkflowError(
            f"{where}: {cfg['dataset']} needs a `cascade` block in {study}"
        )
    cascade = cascade_config()
    if cfg["preset"] != cascade["preset"] or cfg["split"] != CASCADE_SCHEME:
        raise WorkflowError(
            f"{where}: a cascade set is read at preset {cascade['preset']!r} and split "
            f"{CASCADE_SCHEME!r} (the cascade block's), not {cfg['preset']!r} / {cfg['split']!r}"
        )
    for source, scheme in cascade["sources"].items():
        if scheme not in config["split"].get(source, {}):
            raise WorkflowError(
                f"{study} cascade: {source} has no split scheme {scheme!r}"
            )


def cascade_trained():
    """Whether the default target trains the cascade study."""
    study = cascade_study()
    return study is not None and study in trained_studies()


def cascade_inputs(wildcards):
    """Each source's tensors at the cascade preset, split table and passed leakage check."""
    cascade = cascade_config()
    inputs = {}
    for source, scheme in cascade["sources"].items():
        inputs[f"{source}_data"] = f"results/preprocessed/{source}/{cascade['preset']}"
        inputs[f"{source}_split"] = f"results/splits/{source}/{scheme}.parquet"
        inputs[f"{source}_leakage"] = f"results/metrics/splits/{source}/{scheme}.json"
    return inputs


def cascade_source_args(wildcards):
    """`--source NAME DATA SPLIT` of `cxr cascade-sets`, one per source."""
    cascade = cascade_config()
    return " ".join(
        f"--source {source} results/preprocessed/{source}/{cascade['preset']}"
        f" results/splits/{source}/{scheme}.parquet"
        for source, scheme in cascade["sources"].items()
    )


def cascade_outputs():
    """What `cxr cascade-sets` writes: the sets' folders, split tables and its report."""
    preset = cascade_config()["preset"]
    folders = {
        name.removeprefix("cascade_"): f"results/preprocessed/{name}/{preset}"
        for name in ("cascade_heldout", *CASCADE_SETS)
    }
    splits = {
        f"{name.removeprefix('cascade_')}_split": f"results/splits/{name}/{CASCADE_SCHEME}.parquet"
        for name in CASCADE_SETS
    }
    return folders, splits, f"results/metrics/cascade/{preset}.json"


def cascade_modules():
    """The model folders of Modules I, II and III (their `split` column)."""
    study = cascade_study()
    return [model_dir(study, stage, "split") for stage in cascade_config()["modules"]]


def cascade_targets():
    """The cascade's end-to-end evaluation and its sets' leakage reports, when it trains."""
    if not cascade_trained():
        return []
    return [
        f"results/evaluation/{cascade_study()}/end_to_end",
        *(
            f"results/metrics/splits/{name}/{CASCADE_SCHEME}.json"
            for name in CASCADE_SETS
        ),
    ]


for _study in STUDIES:
    check_stages(_study)


def trained_studies():
    """Enabled studies whose datasets are all enabled: those the default target trains."""
    return [
        study
        for study, cfg in STUDIES.items()
        if cfg.get("enabled", True)
        and all(available(stage["dataset"]) for stage in cfg["stages"].values())
    ]


def trained_models():
    """(study, stage, column) of every model the default target trains, stages in order."""
    return [
        (study, stage, column)
        for study in trained_studies()
        for stage in STUDIES[study]["stages"]
        for column in stage_columns(study, stage)
    ]


def model_dir(study, stage, column):
    return f"results/models/{study}/{stage}/{column}"


def model_targets():
    return [model_dir(*model) for model in trained_models()]


def train_metric_targets():
    return [f"results/metrics/train/{s}/{t}/{c}.json" for s, t, c in trained_models()]


def train_inputs(wildcards):
    """A training job's inputs: tensors, split, the split's passed leakage check, the MLflow
    marker of its stage, and the model folder of its `init_from` stage."""
    study, stage, column = wildcards.study, wildcards.stage, wildcards.column
    if study not in STUDIES or stage not in STUDIES[study]["stages"]:
        raise WorkflowError(f"no training stage {study}/{stage} in params.yaml")
    if column not in stage_columns(study, stage):
        raise WorkflowError(f"training {study}/{stage} does not train {column}")
    cfg = stage_config(study, stage)
    dataset, scheme = cfg["dataset"], cfg["split"]
    inputs = {
        "data": f"results/preprocessed/{dataset}/{cfg['preset']}",
        "split": f"results/splits/{dataset}/{scheme}.parquet",
        "leakage": f"results/metrics/splits/{dataset}/{scheme}.json",
        "tracking": f"results/tracking/{study}/{stage}.json",
    }
    if "init_from" in cfg:
        source = cfg["init_from"]
        inputs["init"] = model_dir(study, source, init_column(study, stage, column))
    return inputs


def init_arg(wildcards):
    """`--init <model.pt>` of the `init_from` stage, or nothing."""
    init = train_inputs(wildcards).get("init")
    return f"--init {init}/model.pt" if init else ""


def recipe_json(wildcards):
    """The recipe of `cxr train` (a params value: editing it reruns exactly that stage)."""
    cfg = stage_config(wildcards.study, wildcards.stage)
    recipe = {
        "seed": config["seed"],
        **cfg["recipe"],
        "study": wildcards.study,
        "stage": wildcards.stage,
        "input_size": config["preprocess"]["presets"][cfg["preset"]]["size"],
    }
    return json.dumps(recipe, sort_keys=True)


def data_version_arg(wildcards):
    """`--data-version <md5>` from the dataset's DVC pointer when it has one, else nothing."""
    dataset = stage_config(wildcards.study, wildcards.stage)["dataset"]
    if dataset not in config["datasets"]:
        return ""  # a cascade set: its sources' versions reach it through its inputs
    pointer = pointer_of(dataset)
    if not pointer.exists():
        return ""
    outs = yaml.safe_load(pointer.read_text()).get("outs") or [{}]
    md5 = outs[0].get("md5")
    return f"--data-version {md5}" if md5 else ""


def parent_stage_arg(wildcards):
    """`--stage S` for a stage that trains folds (one MLflow parent run holds its folds)."""
    columns = stage_columns(wildcards.study, wildcards.stage)
    return "" if columns == ["split"] else f"--stage {wildcards.stage}"


# --- evaluation and CAM of every trained model -------------------------------------------------


def stage_of(wildcards):
    """The stage's configuration at the configured scale."""
    return stage_config(wildcards.study, wildcards.stage)


def evaluation_inputs(wildcards):
    """The model folder and the tensors it was trained on (their index holds the labels)."""
    cfg = stage_of(wildcards)
    return {
        "model": model_dir(wildcards.study, wildcards.stage, wildcards.column),
        "data": f"results/preprocessed/{cfg['dataset']}/{cfg['preset']}",
    }


def evaluate_args(wildcards):
    """`--threshold` and `--paper` of `cxr evaluate` from the stage's `evaluate` block."""
    cfg = stage_of(wildcards).get("evaluate", {})
    papers = " ".join(f"--paper {name}" for name in cfg.get("paper", []))
    return f"--threshold {cfg.get('threshold', 'youden')} {papers}".strip()


def fold_evaluations(wildcards):
    """The evaluation folders of every fold a stage trains."""
    columns = stage_columns(wildcards.study, wildcards.stage)
    if columns == ["split"]:
        raise WorkflowError(f"{wildcards.study}/{wildcards.stage} trains no folds")
    return [
        f"results/evaluation/{wildcards.study}/{wildcards.stage}/{c}" for c in columns
    ]


def fold_metric_files(wildcards, input):
    """The metrics.json of every fold's evaluation folder."""
    return " ".join(f"{folder}/metrics.json" for folder in input)


def fold_paper_args(wildcards):
    papers = stage_of(wildcards).get("evaluate", {}).get("paper", [])
    return " ".join(f"--paper {name}" for name in papers)


def cam_inputs(wildcards):
    """The model folder, its tensors and its split table."""
    cfg = stage_of(wildcards)
    return {
        "model": model_dir(wildcards.study, wildcards.stage, wildcards.column),
        "data": f"results/preprocessed/{cfg['dataset']}/{cfg['preset']}",
        "split": f"results/splits/{cfg['dataset']}/{cfg['split']}.parquet",
    }


def cam_args(wildcards):
    """`--method`, `--top-k`, `--figure-images` and `--max-images` of `cxr cam` from the
    stage's `cam` block."""
    cfg = stage_of(wildcards).get("cam", {})
    cap = cfg.get("max_images", "all")
    return (
        f"--method {cfg.get('method', 'auto')} --top-k {cfg.get('top_k', 4)}"
        f" --figure-images {cfg.get('images', 4)} --split-column {wildcards.column}"
        + ("" if cap == "all" else f" --max-images {cap}")
    )


# --- side-by-side heatmaps of a study's stages (its optional `compare_cams`) -------------------


wildcard_constraints:
    pair=r"[A-Za-z0-9][A-Za-z0-9_]*_vs_[A-Za-z0-9][A-Za-z0-9_]*",


def compare_pair(study):
    """The folder of a study's comparison: its stages joined by `_vs_`."""
    return "_vs_".join(STUDIES[study]["compare_cams"]["stages"])


def compare_columns(study):
    """The split columns every compared stage trains, in the first stage's order."""
    stages = STUDIES[study]["compare_cams"]["stages"]
    shared = set.intersection(*(set(stage_columns(study, s)) for s in stages))
    return [c for c in stage_columns(study, stages[0]) if c in shared]


def check_compare(study):
    """Fail at parse time on a `compare_cams` of unknown stages, of stages that do not see
    the same images (dataset, preset, split scheme), or of stages sharing no split column.
    """
    compare = STUDIES[study].get("compare_cams")
    if compare is None:
        return
    where, stages = f"training {study}: compare_cams", compare["stages"]
    unknown = [s for s in stages if s not in STUDIES[study]["stages"]]
    if unknown:
        raise WorkflowError(f"{where}: unknown stage(s) {unknown}")
    if len(compare.get("labels") or stages) != len(stages):
        raise WorkflowError(
            f"{where}: {len(compare['labels'])} labels for {len(stages)} stages"
        )
    images = {
        s: tuple(stage_config(study, s)[k] for k in ("dataset", "preset", "split"))
        for s in stages
    }
    if len(set(images.values())) > 1:
        raise WorkflowError(
            f"{where}: the stages must share dataset, preset and split scheme (they have "
            f"{images})"
        )
    if not compare_columns(study):
        raise WorkflowError(
            f"{where}: {', '.join(stages)} train no split column in common"
        )


for _study in STUDIES:
    check_compare(_study)


def compare_targets():
    """The comparison figure of each split column of every trained study with `compare_cams`."""
    return [
        f"results/cam_compare/{study}/{compare_pair(study)}/{column}.png"
        for study in trained_studies()
        if "compare_cams" in STUDIES[study]
        for column in compare_columns(study)
    ]


def compare_of(wildcards):
    """The `compare_cams` block a cam_compare job draws (checked against its wildcards)."""
    study, pair, column = wildcards.study, wildcards.pair, wildcards.column
    compare = STUDIES.get(study, {}).get("compare_cams")
    if compare is None or pair != compare_pair(study):
        raise WorkflowError(f"{study} has no compare_cams of {pair} in params.yaml")
    if column not in compare_columns(study):
        raise WorkflowError(f"{study}/{pair}: not every stage trains {column}")
    return compare


def compare_inputs(wildcards):
    """The model folder of each compared stage, and the tensors and split they share."""
    stages = compare_of(wildcards)["stages"]
    cfg = stage_config(wildcards.study, stages[0])
    return {
        "models": [model_dir(wildcards.study, s, wildcards.column) for s in stages],
        "data": f"results/preprocessed/{cfg['dataset']}/{cfg['preset']}",
        "split": f"results/splits/{cfg['dataset']}/{cfg['split']}.parquet",
    }


def compare_args(wildcards):
    """`--model`, `--label`, `--method` and `--images` of `cxr cam-compare`."""
    compare = compare_of(wildcards)
    models = compare_inputs(wildcards)["models"]
    labels = compare.get("labels") or compare["stages"]
    return " ".join(
        [f"--model {m} --label {shlex.quote(t)}" for m, t in zip(models, labels)]
        + [
            f"--method {compare.get('method', 'auto')} --images {compare.get('images', 4)}"
        ]
    )


def evaluation_targets():
    """Every model's evaluation and CAM folders (logistic regression has no map to draw),
    each fold stage's fold summary, and each study's CAM comparison figures."""
    targets = []
    for study, stage, column in trained_models():
        targets.append(f"results/evaluation/{study}/{stage}/{column}")
        if (
            stage_config(study, stage)["recipe"]["architecture"] != "logreg"
        ):  # no feature map
            targets.append(f"results/cam/{study}/{stage}/{column}")
    for study in trained_studies():
        for stage in STUDIES[study]["stages"]:
            if stage_columns(study, stage) != ["split"]:
                targets.append(f"results/evaluation/{study}/{stage}/folds")
    return targets + compare_targets()


# --- the report of every trained study ---------------------------------------------------------


def cascade_sources():
    """A cascade set's source for the captions: synthetic, real, or mixed of its sources."""
    if not cascade_trained():
        return {}
    kinds = {config["datasets"][d]["source"] for d in cascade_config()["sources"]}
    kind = kinds.pop() if len(kinds) == 1 else "mixed (synthetic and real)"
    return dict.fromkeys(("cascade_heldout", *CASCADE_SETS), kind)


def report_sources():
    """Each enabled dataset's source (synthetic or real) as JSON, for `cxr report`'s captions."""
    return json.dumps(
        {name: config["datasets"][name]["source"] for name in DATASETS}
        | cascade_sources(),
        sort_keys=True,
    )


def report_studies():
    """The trained studies and their stages, in order, as JSON: what `cxr report` covers."""
    return json.dumps(
        {study: list(STUDIES[study]["stages"]) for study in trained_studies()}
    )
