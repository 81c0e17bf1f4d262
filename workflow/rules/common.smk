# The adapter between params.yaml and the rules. cxr.plan validates the configuration, merges its
# scale, checks it and expands it (`cxr plan` prints it); cxr.layout says where each file lives.
# The functions here hand the plan's inputs and arguments to the rules, by the job's wildcards.
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from cxr.plan import Jobs, PlanError, Sizing, load

min_version("9.0")

try:
    PLAN = load(config)
except PlanError as err:
    raise WorkflowError(err) from None
JOBS = Jobs(PLAN)
SIZING = Sizing(PLAN)
LAYOUT = PLAN.layout
CASCADE = PLAN.cascade
DATASETS = PLAN.enabled


wildcard_constraints:
    dataset=r"[a-z0-9_]+",
    preset=r"[A-Za-z0-9_]+",
    scheme=r"[A-Za-z0-9_]+",
    study=r"[A-Za-z0-9][A-Za-z0-9_]*",
    stage=r"[A-Za-z0-9][A-Za-z0-9_]*",
    column=r"split|fold_\d+",
    pair=r"[A-Za-z0-9][A-Za-z0-9_]*_vs_[A-Za-z0-9][A-Za-z0-9_]*",


def by_wildcards(method, *names):
    """An input or params function: ``method`` given these wildcards of the job, in order."""
    return lambda wildcards: method(*(getattr(wildcards, name) for name in names))


def half_the_cores():
    """The threads of a data or model job: half the cores Snakemake is given (locally, every
    core: the local profile's `cores: all`), so that two such jobs overlap. A cluster run is
    given no cores: there, 1, or the profile's set-threads, which its jobs get too."""
    try:
        return max(1, workflow.cores // 2)
    except WorkflowError:
        return 1


def mem_mb_of(name):
    """A resources function: the memory (MB) a job of rule ``name`` asks a scheduler for, by
    its wildcards and attempt (a retried job asks for more); cxr.plan.resources sizes it.
    """
    return lambda wildcards, attempt: SIZING.mem_mb(
        name, attempt, **dict(wildcards.items())
    )


def runtime_of(name):
    """A resources function: the wall time (minutes) a job of rule ``name`` asks for."""
    return lambda wildcards, attempt: SIZING.runtime(
        name, attempt, **dict(wildcards.items())
    )


# --- data: synth, ingest, preprocess, split ----------------------------------------------------
dataset_root = by_wildcards(JOBS.dataset_root, "dataset")
dataset_inputs = by_wildcards(JOBS.dataset_inputs, "dataset")
dvc_pointer = by_wildcards(JOBS.dvc_pointer, "dataset")
synth_args = by_wildcards(JOBS.synth_args, "dataset")
preset_json = by_wildcards(JOBS.preset_json, "preset")
scheme_json = by_wildcards(JOBS.scheme_json, "dataset", "scheme")
grouped_data = by_wildcards(JOBS.grouped_data, "dataset")
split_inputs = by_wildcards(JOBS.split_inputs, "dataset")
duplicates_arg = by_wildcards(JOBS.duplicates_arg, "dataset")
data_priority = by_wildcards(JOBS.data_priority, "dataset")

# --- training: a stage of a study on one split column ------------------------------------------
train_inputs = by_wildcards(JOBS.train_inputs, "study", "stage", "column")
init_arg = by_wildcards(JOBS.init_arg, "study", "stage", "column")
recipe_json = by_wildcards(JOBS.recipe_json, "study", "stage")
train_priority = by_wildcards(JOBS.train_priority, "study", "stage")
data_version_arg = by_wildcards(JOBS.data_version_arg, "study", "stage")

# --- evaluation and CAMs of a trained model ------------------------------------------------------
evaluation_inputs = by_wildcards(JOBS.evaluation_inputs, "study", "stage", "column")
evaluate_args = by_wildcards(JOBS.evaluate_args, "study", "stage")
fold_evaluations = by_wildcards(JOBS.fold_evaluations, "study", "stage")
fold_metric_files = by_wildcards(JOBS.fold_metric_files, "study", "stage")
fold_paper_args = by_wildcards(JOBS.fold_paper_args, "study", "stage")
pooled_inputs = by_wildcards(JOBS.pooled_inputs, "study", "stage")
pooled_model_args = by_wildcards(JOBS.pooled_model_args, "study", "stage")
cam_inputs = by_wildcards(JOBS.cam_inputs, "study", "stage", "column")
cam_args = by_wildcards(JOBS.cam_args, "study", "stage", "column")
compare_inputs = by_wildcards(JOBS.compare_inputs, "study", "pair", "column")
compare_args = by_wildcards(JOBS.compare_args, "study", "pair", "column")
