"""Counts of the probe's cases by class (clear error, handled correctly, data loss, silent
wrong result, bare or unexpected error, another message, half-written output).

    python benchmarks/probe_tally.py [--src OTHER/src] [--world BUILT_TREE]

``--src`` runs the same cases against another checkout's package (say, an earlier commit's
``git worktree``), to count what the probe finds there; ``--world`` reuses a tree the tiny
workflow already built (else the probe builds one, a few minutes).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, help="another checkout's src/ to probe")
    parser.add_argument("--world", type=Path, help="a tree the tiny workflow built")
    parser.add_argument("tests", nargs="*", default=["tests/probe"], help="probe files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tally = Path(tmp) / "tally.jsonl"
        env = {**os.environ, "CXR_PROBE_TALLY": str(tally)}
        if args.src:
            env["PYTHONPATH"] = str(args.src.resolve())
        if args.world:
            env["CXR_PROBE_WORLD"] = str(args.world.resolve())
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args.tests]
        proc = subprocess.run(cmd, cwd=REPO, env=env, check=False, capture_output=True, text=True)
        if not tally.exists():
            sys.exit(f"the probe ran no case:\n{proc.stdout[-3000:]}")
        rows = [json.loads(line) for line in tally.read_text().splitlines()]
    by_class = collections.Counter(r["class"] for r in rows)
    print(f"{len(rows)} cases")
    for name, count in by_class.most_common():
        print(f"  {name}: {count}")
    by_verb = collections.defaultdict(collections.Counter)
    for r in rows:
        by_verb[r["verb"]][r["class"]] += 1
    for verb, counts in sorted(by_verb.items()):
        print(f"{verb}: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))


if __name__ == "__main__":
    main()
