"""Seed 002's cascade: its held-out mixed set and module sets (``cxr cascade-sets``) and its
end-to-end evaluation (``cxr cascade-evaluate``)."""

#: The share of the chest source's patients given to Modules I and II (the paper's 10%): the
#: default of ``cxr cascade-sets --chest-fraction`` and of params.yaml's ``chest_fraction``.
CHEST_FRACTION = 0.1
