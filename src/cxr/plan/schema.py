"""params.yaml's JSON schema (workflow/schemas/params.schema.yaml): validation, and its defaults.

Validation fills in the schema's defaults the way Snakemake's ``validate`` does: in every
mapping the schema describes, each missing property with a ``default`` gets it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import best_match

from cxr.plan.parts import PlanError

#: The schema, beside the workflow that reads params.yaml (cxr is installed from its checkout).
SCHEMA = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "params.schema.yaml"


@cache
def schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def _filling_defaults(validator: Any, properties: dict, instance: Any, node: dict) -> Iterator:
    """The ``properties`` keyword, after setting each missing property's default."""
    if isinstance(instance, dict):
        for name, subschema in properties.items():
            if "default" in subschema:
                instance.setdefault(name, copy.deepcopy(subschema["default"]))
    yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, node)


_Validator = validators.extend(Draft202012Validator, {"properties": _filling_defaults})


def validated(params: Mapping) -> dict:
    """A copy of ``params`` with the schema's defaults filled in; PlanError if it is invalid."""
    filled = copy.deepcopy(dict(params))
    errors = list(_Validator(schema()).iter_errors(filled))
    if errors:
        error = best_match(errors)
        where = "/".join(str(part) for part in error.absolute_path) or "the top level"
        raise PlanError(f"params.yaml, {where}: {error.message}")
    return filled


def defaults(definition: str) -> dict:
    """The defaults of a block of ``$defs`` (a ``cam`` block, say), for a stage without one."""
    properties = schema()["$defs"][definition]["properties"]
    return {name: sub["default"] for name, sub in properties.items() if "default" in sub}
