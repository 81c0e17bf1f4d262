# Shared helpers: config validation, dataset lists and input functions. No file is written here.
import json
from pathlib import Path

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


def dataset_inputs(wildcards):
    """The raw inputs of a dataset: its folder, plus its DVC pointer when it is DVC-tracked.

    The pointer matters: `dvc checkout` restores old files with old timestamps, which Snakemake
    would miss; git rewrites the small pointer, so listing it triggers the rerun.
    """
    root = dataset_root(wildcards)
    pointer = Path(root.rstrip("/") + ".dvc")
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


def hashed_preset_dir(wildcards):
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
