# Shared helpers: config validation, dataset lists and input functions. No file is written here.
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")


validate(config, schema="../schemas/params.schema.yaml")

DATASETS = [name for name, ds in config["datasets"].items() if ds["enabled"]]


wildcard_constraints:
    dataset=r"[a-z0-9_]+",


def synthetic_root(dataset):
    """Where the embedded miniature of a dataset is generated."""
    return f"data/synthetic/{dataset}"


def dataset_root(wildcards):
    """The folder `cxr ingest` reads: the generated miniature, or the user's real download."""
    ds = config["datasets"][wildcards.dataset]
    return (
        synthetic_root(wildcards.dataset) if ds["source"] == "synthetic" else ds["root"]
    )


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
        f"--panel {name} results/ingest/{name}/index.parquet " f"{root_of(name)}"
        for name in DATASETS
    )
