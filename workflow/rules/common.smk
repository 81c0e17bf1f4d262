# Shared helpers: config validation, dataset lists and input functions. No file is written here.
import json
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
        if cfg["split"] not in config["split"].get(cfg["dataset"], {}):
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


for _study in STUDIES:
    check_stages(_study)


def trained_studies():
    """Enabled studies whose datasets are all enabled: those the default target trains."""
    return [
        study
        for study, cfg in STUDIES.items()
        if cfg.get("enabled", True)
        and all(stage["dataset"] in DATASETS for stage in cfg["stages"].values())
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
    pointer = pointer_of(stage_config(wildcards.study, wildcards.stage)["dataset"])
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
    """`--method`, `--top-k` and `--figure-images` of `cxr cam` from the stage's `cam` block."""
    cfg = stage_of(wildcards).get("cam", {})
    return (
        f"--method {cfg.get('method', 'auto')} --top-k {cfg.get('top_k', 4)}"
        f" --figure-images {cfg.get('images', 4)} --split-column {wildcards.column}"
    )


def evaluation_targets():
    """Every model's evaluation and CAM folders (logistic regression has no map to draw), and
    each fold stage's fold summary."""
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
    return targets


# --- the report of every trained study ---------------------------------------------------------


def report_sources():
    """Each enabled dataset's source (synthetic or real) as JSON, for `cxr report`'s captions."""
    return json.dumps(
        {name: config["datasets"][name]["source"] for name in DATASETS}, sort_keys=True
    )


def report_studies():
    """The trained studies and their stages, in order, as JSON: what `cxr report` covers."""
    return json.dumps(
        {study: list(STUDIES[study]["stages"]) for study in trained_studies()}
    )
