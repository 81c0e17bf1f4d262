"""A bounded load on a running ``cxr serve``: concurrent clients posting one image, with the
server's resident memory sampled as requests complete (the load test and its benchmark)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` (MiB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"process {pid}: no VmRSS in /proc")


@dataclass
class LoadResult:
    """What a load run saw: latencies (s), failures, and the server's RSS after N requests."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    rss_at: dict[int, float] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> dict:
        lat = np.array(self.latencies) * 1000
        return {
            "requests": len(self.latencies) + len(self.failures),
            "failed": len(self.failures),
            "first_failures": self.failures[:3],
            "p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
            "p95_ms": round(float(np.percentile(lat, 95)), 1) if len(lat) else None,
            "requests_per_s": round(len(self.latencies) / self.seconds, 2)
            if self.seconds
            else None,
            "server_rss_mb_at": {str(k): round(v, 1) for k, v in sorted(self.rss_at.items())},
        }


def run_load(
    url: str,
    image: bytes,
    *,
    clients: int = 8,
    requests: int = 400,
    pid: int | None = None,
    marks: tuple[int, ...] = (100, 400),
) -> LoadResult:
    """``requests`` POSTs of ``image`` to ``url``/api/predict from ``clients`` threads."""
    import httpx

    result = LoadResult()
    lock = threading.Lock()
    done = 0

    def one(_: int) -> None:
        nonlocal done
        start = time.perf_counter()
        try:
            with httpx.Client(timeout=120) as client:
                r = client.post(f"{url}/api/predict", files={"file": ("x.png", image, "image/png")})
            ok = r.status_code == 200 and "verdict" in r.json()
            failure = None if ok else f"HTTP {r.status_code}: {r.text[:200]}"
        except Exception as err:  # a refused connection, a timeout: a failed request
            failure = f"{type(err).__name__}: {err}"
        elapsed = time.perf_counter() - start
        with lock:
            done += 1
            (result.failures.append(failure) if failure else result.latencies.append(elapsed))
            if pid is not None and done in marks:
                result.rss_at[done] = rss_mb(pid)

    begin = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(requests)))
    result.seconds = time.perf_counter() - begin
    return result
