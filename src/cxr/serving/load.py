"""A bounded load on a running ``cxr serve``: concurrent clients posting one image, with the
server's resident memory sampled as requests complete (the load test and its benchmark)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
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


@contextlib.contextmanager
def served(models: Path, port: int, timeout_s: float = 120) -> Iterator[subprocess.Popen]:
    """``cxr serve --models models`` on 127.0.0.1:``port``, answering ``/api/health`` before
    the block runs, stopped after it; fails if it does not answer within ``timeout_s``."""
    import httpx

    cxr = Path(sys.executable).parent / "cxr"
    server = subprocess.Popen(
        [str(cxr), "serve", "--models", str(models), "--port", str(port)],
        cwd=Path(models).resolve().parent,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).is_success:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"cxr serve on port {port} did not answer /api/health")
            time.sleep(0.2)
        yield server
    finally:
        server.terminate()
        server.wait(timeout=30)
