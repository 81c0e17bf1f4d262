"""The README's screenshots of `cxr serve`: a real chest X-ray and a photograph dropped on the
page in Debian's chromium (Playwright), with the pipeline's trained models.

    .venv/bin/python benchmarks/serve_screenshots.py [--models results] [--out docs]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import cv2
import skimage.data
from playwright.sync_api import sync_playwright

from cxr.serving.load import served

REAL = Path(__file__).resolve().parents[2] / "shared" / "real" / "nih" / "images"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path("results"))
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--xray", type=Path, default=REAL / "00000100_000.png")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    out = args.out.resolve()
    url = f"http://127.0.0.1:{args.port}"
    with (
        served(args.models, args.port),
        tempfile.TemporaryDirectory() as tmp,
        sync_playwright() as p,
    ):
        photo = Path(tmp) / "coffee.jpg"
        cv2.imwrite(str(photo), cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR))
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(url)
        page.wait_for_selector("#models:has-text('Module')")
        for image, name in ((args.xray, "serve_chest.png"), (photo, "serve_not_xray.png")):
            page.evaluate("document.getElementById('verdict').dataset.verdict = ''")
            page.set_input_files("#file", str(image))
            page.wait_for_function("document.getElementById('verdict').dataset.verdict")
            page.screenshot(path=str(out / name), full_page=True)
            print(out / name, page.inner_text("#verdict"))
        browser.close()


if __name__ == "__main__":
    main()
