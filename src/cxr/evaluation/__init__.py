"""Evaluation of predictions against an ingested index: metrics, tables, figures, folds."""

from cxr.evaluation.folds import summarize_folds
from cxr.evaluation.inputs import Cohort, align, read_predictions
from cxr.evaluation.paper import REFERENCES, Reference
from cxr.evaluation.report import evaluate, run_id_of

__all__ = [
    "REFERENCES",
    "Cohort",
    "Reference",
    "align",
    "evaluate",
    "read_predictions",
    "run_id_of",
    "summarize_folds",
]
