"""``cxr serve`` as a person uses it: a real headless browser (Debian's chromium through
Playwright) drops a real chest X-ray and a photograph on the page and reads what it shows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from serving.conftest import chromium, held_out_xray, photo_png

pytestmark = pytest.mark.slow

#: Where the screenshots go (the README's come from benchmarks/serve_screenshots.py).
SHOTS = os.environ.get("CXR_SCREENSHOTS")


def test_the_page_shows_each_modules_verdict(server, tmp_path):
    executable = chromium()
    playwright = pytest.importorskip("playwright.sync_api")
    url, _proc = server
    xray, photo = held_out_xray(), photo_png(tmp_path)
    shots = Path(SHOTS) if SHOTS else tmp_path
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=flags)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(url)
            page.wait_for_selector("#models:has-text('Module')")
            page.set_input_files("#file", str(xray))
            page.wait_for_selector("#result:not([hidden])", timeout=30_000)
            page.wait_for_function("document.getElementById('verdict').dataset.verdict")
            assert page.get_attribute("#verdict", "data-verdict") == "chest"
            assert page.inner_text("#verdict").startswith("chest X-ray:")
            assert page.inner_text("#module-i .answer").startswith("xray (score")
            assert page.inner_text("#module-ii .answer").startswith("chest (score")
            assert page.locator(".bar").count() == 14
            assert page.is_visible("#overlay")
            assert page.inner_text("#overlay-caption").startswith("Grad-CAM of ")
            assert page.evaluate("document.getElementById('overlay').naturalWidth") > 0
            page.screenshot(path=str(shots / "serve_chest.png"), full_page=True)

            page.set_input_files("#file", str(photo))
            page.wait_for_function(
                "document.getElementById('verdict').dataset.verdict === 'not_xray'",
                timeout=30_000,
            )
            assert page.inner_text("#verdict").startswith("not an X-ray (score")
            assert page.inner_text("#module-ii .answer") == "not reached"
            assert page.inner_text("#module-iii .answer") == "not reached"
            assert page.locator(".bar").count() == 0
            assert not page.is_visible("#overlay")
            page.screenshot(path=str(shots / "serve_not_xray.png"), full_page=True)

            (tmp_path / "notes.png").write_text("not an image")
            page.set_input_files("#file", str(tmp_path / "notes.png"))
            page.wait_for_selector("#error:has-text('not an image')", timeout=30_000)
            assert page.inner_text("#error") == (
                "notes.png: not an image: no PNG, JPEG, TIFF, BMP, WebP or DICOM header"
            )
        finally:
            browser.close()
    assert (shots / "serve_chest.png").stat().st_size > 10_000
