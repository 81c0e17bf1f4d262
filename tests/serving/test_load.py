"""8 concurrent clients, 400 requests to ``cxr serve`` on 127.0.0.1: none fails, memory flat."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cxr.serving.load import run_load

pytestmark = pytest.mark.slow


def test_400_requests_from_8_clients(server):
    url, proc = server
    image = cv2.imencode(".png", np.tile(np.arange(0, 250, 2, dtype=np.uint8), (300, 2)))[1]
    result = run_load(url, image.tobytes(), clients=8, requests=400, pid=proc.pid)
    summary = result.summary()
    print(summary)
    assert summary["failed"] == 0, summary["first_failures"]
    assert summary["requests"] == 400
    rss = result.rss_at
    assert set(rss) == {100, 400}
    assert rss[400] - rss[100] < 50, f"server memory grew: {summary['server_rss_mb_at']}"
