"""A bounded load on `cxr serve` on 127.0.0.1: 8 concurrent clients, 400 requests of one chest
X-ray; failures, p50/p95 latency and the server's peak RSS after 100 and 400 requests.

    .venv/bin/python benchmarks/serve_load.py [--models results] [--image PNG] [--port 8765]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cxr.serving.load import run_load, served

REAL = Path(__file__).resolve().parents[2] / "shared" / "real" / "nih" / "images"


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"process {pid}: no VmHWM")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path("results"))
    parser.add_argument("--image", type=Path, default=next(iter(sorted(REAL.glob("*.png"))), None))
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    url = f"http://127.0.0.1:{args.port}"
    with served(args.models, args.port) as server:
        marks = (100, args.requests)
        peaks: dict[int, float] = {}
        import cxr.serving.load as load

        real_rss = load.rss_mb
        load.rss_mb = lambda pid: (peaks.__setitem__(len(peaks), peak_rss_mb(pid)), real_rss(pid))[
            1
        ]
        result = run_load(url, args.image.read_bytes(), clients=args.clients,
                          requests=args.requests, pid=server.pid, marks=marks)  # fmt: skip
        summary = result.summary()
        summary["server_peak_rss_mb_at"] = {
            str(mark): round(peaks[k], 1) for k, mark in enumerate(sorted(result.rss_at))
        }
        summary["clients"] = args.clients
        print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
