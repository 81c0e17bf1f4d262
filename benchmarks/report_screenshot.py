"""Screenshot the first screen of ``cxr report``'s HTML in headless Chromium.

    python benchmarks/report_screenshot.py [results/report.html]
        [--out docs/report_first_screen.png] [--size 1280x900]

Renders the page (it stands alone: its thumbnails are embedded) at the window size and saves
what a reader sees before scrolling as a PNG. Needs Chromium (Debian: ``apt-get install -y
chromium``); as root it runs with ``--no-sandbox``. Exits 1 with a message when there is no
browser, no page, or no screenshot came out.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser() -> str:
    """The first Chromium-like browser on PATH."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit(f"no browser found (tried {', '.join(BROWSERS)}): apt-get install chromium")


def screenshot(page: Path, out: Path, width: int, height: int) -> None:
    """Save ``page`` rendered at ``width`` x ``height`` pixels as ``out`` (a PNG)."""
    if not page.is_file():
        raise SystemExit(f"{page}: no such page (run cxr report --html first)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        command = [
            browser(),
            "--headless",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={out.resolve()}",
            page.resolve().as_uri(),
        ]
        if os.geteuid() == 0:
            command.insert(1, "--no-sandbox")
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0 or not out.is_file():
        raise SystemExit(f"no screenshot ({done.returncode}): {done.stderr.strip()[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", nargs="?", type=Path, default=Path("results/report.html"))
    parser.add_argument("--out", type=Path, default=Path("docs/report_first_screen.png"))
    parser.add_argument("--size", default="1280x900", help="window WIDTHxHEIGHT in pixels")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    screenshot(args.page, args.out, width, height)
    print(f"{args.page} -> {args.out} ({width}x{height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
