"""Shared by web_latency.py and web_load.py: a ``sketchrnn.web.serve`` server in its own
process on 127.0.0.1, its memory, and pen-up prefixes from real Quick, Draw! drawings."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx  # the dev extra's HTTP client (httpx's successor, same API)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SKETCHRNN_SHARED_DATA", ROOT.parent / "shared" / "data"))
MAGENTA = SHARED / "magenta_models"
RAW = SHARED / "quickdraw" / "raw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(specs: list[str], *, workers: int = 2, max_pending: int = 32, setup: str = ""):
    """``(process, base_url)`` of a server for ``specs`` on a free loopback port; ``setup`` is
    Python run in the server's process first (e.g. a switch for a before/after comparison)."""
    port = free_port()
    code = (
        (f"{setup}\n" if setup else "") + "import sys; from sketchrnn.web import serve; "
        f"serve(sys.argv[1:], host='127.0.0.1', port={port}, workers={workers}, "
        f"max_pending={max_pending})"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *specs],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stdout.read()}")
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start in 120 s")


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pen_up_requests(category: str = "sheep", count: int = 40, seed: int = 0) -> list[dict]:
    """Requests as the page sends them at a pen-up: the first half of the strokes of raw
    Quick, Draw! drawings (canvas pixels), with a canvas the whole drawing fills 60% of."""
    path = RAW / f"{category}.ndjson"
    drawings = [json.loads(line)["drawing"] for line in path.read_text().splitlines() if line]
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.permutation(len(drawings))[:count]:
        lines = [np.column_stack([s[0], s[1]]).astype(float) for s in drawings[i]]
        xy = np.concatenate(lines)
        side = float((xy.max(0) - xy.min(0)).max()) / 0.6
        rows, last = [], np.zeros(2)
        for stroke in lines[: max(1, len(lines) // 2)]:
            for j, p in enumerate(stroke):
                rows.append([*(p - last).round(2).tolist(), int(j == len(stroke) - 1)])
                last = p
        out.append({"sketch": rows, "canvas": {"width": side, "height": side}})
    while len(out) < count:
        out += out[: count - len(out)]
    return out


def percentiles(values: list[float]) -> str:
    a = np.asarray(values) * 1000.0
    return f"p50 {np.percentile(a, 50):7.1f} ms   p95 {np.percentile(a, 95):7.1f} ms   (n={len(a)})"
