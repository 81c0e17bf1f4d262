"""Leak-proof splits stored as data (``cxr split``), their proof (``cxr check-leakage``) and the
exact and near-duplicate search both rest on (``cxr duplicates``)."""
