"""The package's shape: packages in pipeline order import only from earlier ones, no module
imports mlflow but ``cxr.tracking``, and no import circles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "cxr"

#: Packages (and top-level modules) from the bottom up. Each may import from those before it,
#: never from one after it. ``ingest`` comes before ``synth`` because a generator writes the
#: files a reader defines (file names, headers), so the reader owns the format.
LAYERS: tuple[str, ...] = (
    "core",
    "layout",
    "tracking",
    "data",
    "ingest",
    "synth",
    "splits",
    "evaluation",  # before training: training scores its validation side with evaluation's metrics
    "training",
    "explanation",
    "cascade",
    "reporting",
    "plan",
    "serving",  # the cascade as a command and a web page; reads params.yaml through plan
    "cli",
)


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    """The modules ``path`` imports (``from cxr import x`` counts as ``cxr.x``)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "cxr":
                found.update(f"cxr.{alias.name}" for alias in node.names)
    return found


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


MODULES = {_module(p): p for p in sorted(SRC.rglob("*.py"))}


def test_every_package_has_a_layer() -> None:
    packages = {_package(m) for m in MODULES} - {"", "__main__"}
    assert packages <= set(LAYERS), f"packages without a layer: {packages - set(LAYERS)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_pipeline(module: str) -> None:
    own = _package(module)
    if own not in LAYERS:
        return
    upward = sorted(
        imported
        for imported in _imports(MODULES[module])
        if imported.startswith("cxr.")
        and _package(imported) in LAYERS
        and LAYERS.index(_package(imported)) > LAYERS.index(own)
    )
    assert not upward, f"{module} imports from a later stage: {upward}"


def test_only_tracking_imports_mlflow() -> None:
    users = sorted(
        m for m, p in MODULES.items() if any(i.split(".")[0] == "mlflow" for i in _imports(p))
    )
    assert users == ["cxr.tracking"]


def test_no_import_circles() -> None:
    # A submodule importing its own package is not a circle: the package is initialised first.
    graph = {
        m: {
            i
            for i in _imports(p, top_level_only=True)
            if i in MODULES and not m.startswith(i + ".")
        }
        for m, p in MODULES.items()
    }
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for nxt in sorted(graph[module]):
            if state.get(nxt) == 1:
                pytest.fail("import circle: " + " -> ".join([*trail, module, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_each_stage_declares_its_commands_and_rules() -> None:
    """Every subcommand comes from its stage's ``commands`` module, and every stage with
    commands run by the workflow has its own rule file."""
    from cxr.cli import REGISTRY

    rules = Path(__file__).resolve().parents[2] / "workflow" / "rules"
    owners = {command.run.__module__ for command in REGISTRY}
    assert all(o.endswith(".commands") and o.count(".") == 2 for o in owners), owners
    assert len({c.name for c in REGISTRY}) == len(REGISTRY)
    # plan: common.smk, the adapter; serving: run by its users, not by the workflow
    packages = {o.split(".")[1] for o in owners} - {"plan", "serving"}
    assert {p.stem for p in rules.glob("*.smk")} == packages | {"common"}
