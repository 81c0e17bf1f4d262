"""cxr: a reproducible, workflow-orchestrated deep-learning pipeline for X-ray diagnosis."""

__version__ = "0.1.0"
