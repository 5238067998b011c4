"""Web server latency: pen-up -> first streamed stroke and -> whole answer; nine endings vs one.

Starts ``sketchrnn.web.serve`` in its own process on 127.0.0.1 (2 inference workers) and
sends what the page sends at each pen-up: the first half of raw Quick, Draw! drawings (canvas
pixels, ``canvas`` size along), one request at a time.

* stream: ``POST /api/complete/stream``; time to the first ``stroke`` event and to ``done``;
* endings: ``POST /api/complete`` with ``n=9`` and ``n=1`` (the whole JSON answer).

Models: the magenta-size decoder-only LSTM (``--magenta``, default the released sheep model)
and any others given with ``--model`` (e.g. the built-in ones). Targets on 2 cores for the
magenta-size model: first stroke <= 150 ms p95, nine endings <= 1.5 s p95. Example::

    .venv/bin/python benchmarks/web_latency.py --repeats 30 --model /work/zoo/runs/shapes-vae/best
"""

from __future__ import annotations

import argparse
import json
import time

import httpx2 as httpx  # the dev extra's HTTP client (httpx's successor, same API)
import numpy as np
from _web_server import MAGENTA, pen_up_requests, percentiles, start_server, stop_server


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--magenta", default=str(MAGENTA / "sheep.gen.json"))
    parser.add_argument("--model", action="append", default=[], help="another model to time")
    parser.add_argument("--category", default="sheep", help="raw Quick, Draw! drawings used")
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()

    specs = [f"magenta={args.magenta}"] + [f"m{i}={m}" for i, m in enumerate(args.model)]
    proc, url = start_server(specs)
    try:
        with httpx.Client(timeout=60) as client:
            models = {m["name"]: m for m in client.get(url + "/api/models").json()["models"]}
            requests = pen_up_requests(args.category, args.repeats)
            for name, info in models.items():
                print(
                    f"\n{name}: {info['kind']}, {info['cell']}, max_seq_len {info['max_seq_len']}"
                )
                extra = {"label": info["classes"][0]} if info["class_conditional"] else {}
                bodies = [{"model": name, "temperature": 0.5, **extra, **r} for r in requests]
                bodies = [b for b in bodies if _fits(client, url, b)]
                for b in bodies[:3]:  # warm up
                    stream_once(client, url, b)
                firsts, wholes, points = [], [], []
                for b in bodies:
                    f, w, p = stream_once(client, url, b)
                    firsts.append(f)
                    wholes.append(w)
                    points.append(p)
                print(f"  stream: first stroke  {percentiles(firsts)}")
                print(
                    f"  stream: whole answer  {percentiles(wholes)}   "
                    f"ending points median {np.median(points):.0f}, max {max(points)}"
                )
                for n in (1, 9):
                    times, longest = [], 0
                    for b in bodies:
                        start = time.perf_counter()
                        r = client.post(url + "/api/complete", json={**b, "n": n})
                        r.raise_for_status()
                        times.append(time.perf_counter() - start)
                        sketches = r.json()["sketches"]
                        longest = max(longest, max(len(s) for s in sketches))
                    print(
                        f"  {n} ending{'s' if n > 1 else ' '} at once   {percentiles(times)}   "
                        f"longest sketch {longest} points"
                    )
    finally:
        stop_server(proc)


def _fits(client: httpx.Client, url: str, body: dict) -> bool:
    """Whether the model takes the drawing (a model of short sketches refuses long ones)."""
    r = client.post(url + "/api/complete", json={**body, "n": 1, "max_len": None})
    return r.status_code == 200


if __name__ == "__main__":
    main()
