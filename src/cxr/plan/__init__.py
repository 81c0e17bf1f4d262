"""The typed plan of params.yaml: what the workflow trains, evaluates and explains.

``load(params, scale)`` validates params.yaml against workflow/schemas/params.schema.yaml,
merges each stage's (and the cascade's) ``paper`` block at scale ``paper``, checks what refers
to what (presets, split schemes, folds, ``init_from``, ``compare_cams``, the cascade) and
returns a frozen :class:`Plan`. A :class:`PlanError` names the study and stage at fault.

Defaults live in the schema only. Validation fills them in wherever a block is written, as
Snakemake's ``validate`` does; a stage without an ``evaluate`` or ``cam`` block gets the
schema's defaults of that block. ``paper`` blocks are filled in too, before they are merged: a
``paper: {cam: {...}}`` therefore also sets the ``cam`` keys it leaves out to their defaults.

Snakemake reads the plan through workflow/rules/common.smk and :class:`Jobs`; paths come from
:mod:`cxr.layout`; what each job asks a scheduler for (memory, wall time) from
:class:`Sizing`.
"""

from cxr.plan.jobs import Jobs
from cxr.plan.load import load
from cxr.plan.parts import (
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
from cxr.plan.resources import Sizing

__all__ = [
    "Cam",
    "Cascade",
    "CompareCams",
    "Dataset",
    "Evaluate",
    "Jobs",
    "Plan",
    "PlanError",
    "Sizing",
    "Stage",
    "Study",
    "Synthetic",
    "load",
]
