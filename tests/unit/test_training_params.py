"""params.yaml's training section: its schema knows exactly the recipe's keys and choices, so a
misspelled key or value stops the workflow at parse time, before any job runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from cxr.training import models, recipe
from cxr.training.augment import Augment

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "params.schema.yaml"
#: Filled in by the plan (cxr.plan) from the study, the stage and the preset.
FILLED_IN = {"study", "stage", "input_size"}


def recipe_schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())["$defs"]["recipe"]


def test_the_schema_lists_every_recipe_key_but_those_filled_in() -> None:
    fields = {f.name for f in dataclasses.fields(recipe.Recipe)}
    assert set(recipe_schema()["properties"]) == fields - FILLED_IN
    assert recipe_schema()["additionalProperties"] is False
    augment = recipe_schema()["properties"]["augment"]["properties"]
    assert set(augment) == {f.name for f in dataclasses.fields(Augment)}


def test_the_schema_choices_are_the_recipe_choices() -> None:
    props = recipe_schema()["properties"]
    expected = {
        "task": recipe.TASKS,
        "architecture": models.ARCHITECTURES,
        "init": models.INITS,
        "transfer": models.TRANSFER_MODES,
        "normalize": recipe.NORMALIZATIONS,
        "optimizer": recipe.OPTIMIZERS,
        "scheduler": recipe.SCHEDULERS,
        "loss": tuple(dict.fromkeys(loss for losses in recipe.LOSSES.values() for loss in losses)),
    }
    for key, choices in expected.items():
        assert props[key]["enum"] == list(choices), key
