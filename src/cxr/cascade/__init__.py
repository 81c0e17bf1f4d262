"""Seed 002's cascade: its held-out mixed set and module sets (``cxr cascade-sets``) and its
end-to-end evaluation (``cxr cascade-evaluate``)."""
