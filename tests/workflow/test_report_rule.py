"""The report of the tiny default target: results/report.md and `snakemake --report`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import snakemake

pytestmark = pytest.mark.workflow


def _trained_stages(workdir: Path) -> dict[str, list[str]]:
    """The studies (and their stages) the default target trained in ``workdir``."""
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    enabled = {name for name, ds in params["datasets"].items() if ds["enabled"]}
    return {
        study: list(cfg["stages"])
        for study, cfg in params["training"]["studies"].items()
        if cfg.get("enabled", True)
        and all(stage["dataset"] in enabled for stage in cfg["stages"].values())
    }


def test_report_names_every_trained_stage(built: Path) -> None:
    report = built / "results" / "report.md"
    assert report.is_file()
    text = report.read_text()
    stages = _trained_stages(built)
    assert stages
    for study, names in stages.items():
        for stage in names:
            assert f"## {study} / {stage}" in text
    assert "None: every expected output is here." in text
    assert "synthetic miniature" in text
    assert "## How long each job took" in text
    assert (built / "results" / "report.html").is_file()


def test_snakemake_html_report(built: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    snakemake(built, "--report", str(page))
    text = page.read_text()
    assert text.lstrip().lower().startswith("<!doctype html>")
    for study in _trained_stages(built):
        assert study in text
    assert "roc.png" in text
    assert "cam_grid.png" in text
    assert "ingest_gallery.png" in text
