"""Evaluation of predictions against an ingested index: metrics, tables, figures, folds."""
