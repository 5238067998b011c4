"""Web server latency: pen-up -> first streamed stroke and -> whole answer; nine endings vs one;
before and after the fused decoder step, with ``@magenta/sketch`` under Node beside them.

Starts two ``sketchrnn.web.serve`` servers in their own processes on 127.0.0.1 (2 inference
workers each): one as it runs by default (the fused step, :mod:`sketchrnn.nn.fused_step`) and
one with ``set_fused_step(False)`` (the sequence path ``Cell.step`` ran before). Each request
goes to both, one after the other (interleaved, so both see the same machine), one request at
a time, as the page sends it at each pen-up: the first half of raw Quick, Draw! drawings
(canvas pixels, ``canvas`` size along).

* stream: ``POST /api/complete/stream``; time to the first ``stroke`` event and to ``done``;
* endings: ``POST /api/complete`` with ``n=9`` and ``n=1`` (the whole JSON answer).

For the magenta model, ``tests/node/magenta_pdf.js complete`` then continues the same drawings
(as the model reads them: scaled and simplified by the server's own code) with
``@magenta/sketch`` under Node, one at a time as its demos do: time to the end of the first
stroke and to the end of the sketch (``--node-drawings`` of them; no HTTP in between).

Models: the magenta-size decoder-only LSTM (``--magenta``, default the released sheep model)
and any others given with ``--model`` (e.g. the built-in ones). Targets on 2 cores for the
magenta-size model: first stroke <= 150 ms p95, nine endings <= 1.5 s p95. Example::

    .venv/bin/python benchmarks/web_latency.py --repeats 30 --model /work/zoo/runs/shapes-vae/best
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import httpx2 as httpx  # the dev extra's HTTP client (httpx's successor, same API)
import numpy as np
from _web_server import MAGENTA, pen_up_requests, percentiles, start_server, stop_server
from sampling_throughput import find_node_modules  # make node_modules, or --node-modules

SERVERS = {
    "after": "",
    "before": "from sketchrnn.nn.cells import set_fused_step; set_fused_step(False)",
}
LABELS = {"after": "fused step", "before": "step before"}
SCRIPT = Path(__file__).resolve().parents[1] / "tests" / "node" / "magenta_pdf.js"


def stream_once(client: httpx.Client, url: str, body: dict) -> tuple[float, float, int]:
    start = time.perf_counter()
    first = None
    points = 0
    with client.stream("POST", url + "/api/complete/stream", json=body) as r:
        r.raise_for_status()
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "stroke":
                if first is None:
                    first = time.perf_counter() - start
                points += len(json.loads(line[6:])["stroke"])
    whole = time.perf_counter() - start
    return (whole if first is None else first), whole, points


def complete_once(client: httpx.Client, url: str, body: dict, n: int) -> tuple[float, int]:
    start = time.perf_counter()
    r = client.post(url + "/api/complete", json={**body, "n": n})
    r.raise_for_status()
    longest = max(len(s) for s in r.json()["sketches"])
    return time.perf_counter() - start, longest


def measure(client: httpx.Client, urls: dict[str, str], bodies: list[dict]) -> dict:
    """Every measurement of every body on each server, the servers interleaved."""
    out: dict = {
        k: {"first": [], "whole": [], "points": [], 1: [], 9: [], "longest": 0} for k in urls
    }
    for b in bodies[:3]:  # warm up
        for url in urls.values():
            stream_once(client, url, b)
    for b in bodies:
        for key, url in urls.items():
            first, whole, points = stream_once(client, url, b)
            out[key]["first"].append(first)
            out[key]["whole"].append(whole)
            out[key]["points"].append(points)
    for n in (1, 9):
        for b in bodies:
            for key, url in urls.items():
                seconds, longest = complete_once(client, url, b, n)
                out[key][n].append(seconds)
                out[key]["longest"] = max(out[key]["longest"], longest)
    return out


def node_prefixes(magenta_path: str, bodies: list[dict]) -> list[list[list[float]]]:
    """The drawings as the server's model reads them (scaled to the model's pixels and
    prepared by :func:`sketchrnn.generate.prepare_drawing`, as the server does), as stroke-5
    rows for magenta.js."""
    from sketchrnn import generate
    from sketchrnn.web.drawing import ServedModel

    served = ServedModel.load("magenta", magenta_path)
    limit = int(served.info.max_seq_len or 0) - 1
    prefixes = []
    for body in bodies:
        canvas = (body["canvas"]["width"], body["canvas"]["height"])
        s3 = np.asarray(body["sketch"], dtype=np.float32)
        k = served.canvas_scale(canvas)
        prefix = generate.prepare_drawing(served.model, s3, k, max_points=limit)
        rows = [[float(dx), float(dy), 1.0 - float(p), float(p), 0.0] for dx, dy, p in prefix]
        prefixes.append(rows)
    return prefixes


def magenta_js(args: argparse.Namespace, bodies: list[dict], max_len: int) -> dict | None:
    node_modules = find_node_modules(args.node_modules)
    if node_modules is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        prefixes_path = Path(tmp) / "prefixes.json"
        prefixes_path.write_text(json.dumps(node_prefixes(args.magenta, bodies)))
        cmd = [
            "node",
            str(SCRIPT),
            "complete",
            args.magenta,
            str(prefixes_path),
            str(max_len),
            "0.5",
        ]
        env = {**os.environ, "NODE_PATH": str(node_modules)}
        done = subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=3600, check=True
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--magenta", default=str(MAGENTA / "sheep.gen.json"))
    parser.add_argument("--model", action="append", default=[], help="another model to time")
    parser.add_argument("--category", default="sheep", help="raw Quick, Draw! drawings used")
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--node-drawings", type=int, default=10, help="0: no magenta.js run")
    parser.add_argument(
        "--node-modules",
        help="a node_modules folder holding @magenta/sketch (default: the repository's)",
    )
    args = parser.parse_args()

    specs = [f"magenta={args.magenta}"] + [f"m{i}={m}" for i, m in enumerate(args.model)]
    servers = {key: start_server(specs, setup=setup) for key, setup in SERVERS.items()}
    urls = {key: url for key, (_, url) in servers.items()}
    try:
        with httpx.Client(timeout=60) as client:
            models = {
                m["name"]: m for m in client.get(urls["after"] + "/api/models").json()["models"]
            }
            requests = pen_up_requests(args.category, args.repeats)
            for name, info in models.items():
                print(
                    f"\n{name}: {info['kind']}, {info['cell']}, max_seq_len {info['max_seq_len']}"
                )
                extra = {"label": info["classes"][0]} if info["class_conditional"] else {}
                # A seed per drawing: both servers draw the same endings (to float rounding).
                bodies = [
                    {"model": name, "temperature": 0.5, "seed": i, **extra, **r}
                    for i, r in enumerate(requests)
                ]
                bodies = [b for b in bodies if _fits(client, urls["after"], b)]
                results = measure(client, urls, bodies)
                for key in ("before", "after"):
                    r = results[key]
                    label = LABELS[key]
                    print(f"  {label}: stream: first stroke  {percentiles(r['first'])}")
                    print(
                        f"  {label}: stream: whole answer  {percentiles(r['whole'])}   "
                        f"ending points median {np.median(r['points']):.0f}, max {max(r['points'])}"
                    )
                    for n in (1, 9):
                        print(
                            f"  {label}: {n} ending{'s' if n > 1 else ' '} at once   "
                            f"{percentiles(r[n])}   longest sketch {r['longest']} points"
                        )
                for what in ("first", "whole", 9):
                    ratio = np.median(results["before"][what]) / np.median(results["after"][what])
                    what = "nine endings" if what == 9 else what
                    print(f"  median {what}: before / after = {ratio:.2f}x")
                if name == "magenta" and args.node_drawings > 0:
                    js = magenta_js(args, bodies[: args.node_drawings], int(info["max_seq_len"]))
                    if js is not None:
                        print(f"  @magenta/sketch (Node): first stroke  {percentiles(js['first'])}")
                        print(
                            f"  @magenta/sketch (Node): whole ending  {percentiles(js['whole'])}   "
                            f"ending points median {np.median(js['points']):.0f}"
                        )
    finally:
        for proc, _ in servers.values():
            stop_server(proc)


def _fits(client: httpx.Client, url: str, body: dict) -> bool:
    """Whether the model takes the drawing (a model of short sketches refuses long ones)."""
    r = client.post(url + "/api/complete", json={**body, "n": 1, "max_len": None})
    return r.status_code == 200


if __name__ == "__main__":
    main()
