"""Ingest the synthetic pretraining corpus (:mod:`cxr.synth.pretrain`): NIH's layout, NIH's
reader."""

from __future__ import annotations

from cxr.ingest.nih import ingest

__all__ = ["ingest"]
