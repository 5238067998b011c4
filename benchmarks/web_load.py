"""A bounded loopback load test of the web server: C clients for S seconds against 127.0.0.1.

Starts ``sketchrnn.web.serve`` in its own process (2 inference workers, 32 waiting places)
with the magenta-size sheep model (``--magenta``) and any ``--model``; each client thread
loops over what the page sends, in turn: a streamed continuation at a pen-up (read to the
end), nine endings, one sample. Prints requests/s, latency p50/p99 per kind, errors (any
answer but 200 and 503, or a broken stream; target 0), 503s (the queue's bound at work),
and the server's resident memory at the start, every 10 s, and at the end (target: flat).
Only 127.0.0.1 is ever contacted. Example (the issue's run)::

    .venv/bin/python benchmarks/web_load.py --clients 20 --seconds 60
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import defaultdict

import httpx2 as httpx  # the dev extra's HTTP client (httpx's successor, same API)
import numpy as np
from _web_server import MAGENTA, pen_up_requests, rss_mb, start_server, stop_server


def client_loop(url, bodies, model, stop, results, lock, seed):
    rng = np.random.default_rng(seed)
    kinds = ("stream", "endings", "sample")
    i = int(rng.integers(3))
    with httpx.Client(timeout=120) as client:
        while not stop.is_set():
            kind = kinds[i % 3]
            i += 1
            body = {**bodies[int(rng.integers(len(bodies)))], "model": model, "temperature": 0.5}
            start = time.perf_counter()
            status, ok = 0, False
            try:
                if kind == "stream":
                    with client.stream("POST", url + "/api/complete/stream", json=body) as r:
                        status = r.status_code
                        text = "".join(r.iter_text())
                        ok = status == 200 and "event: done" in text
                elif kind == "endings":
                    r = client.post(url + "/api/complete", json={**body, "n": 9})
                    status, ok = r.status_code, r.status_code == 200
                else:
                    sample = {"model": model, "n": 1, "canvas": body["canvas"]}
                    r = client.post(url + "/api/sample", json=sample)
                    status, ok = r.status_code, r.status_code == 200
            except httpx.HTTPError:
                status = -1
            elapsed = time.perf_counter() - start
            with lock:
                results.append((kind, status, ok, elapsed, time.monotonic()))
            if status == 503:
                time.sleep(1.0)  # Retry-After: 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--magenta", default=str(MAGENTA / "sheep.gen.json"))
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-pending", type=int, default=32)
    args = parser.parse_args()

    proc, url = start_server([f"sheep={args.magenta}"], max_pending=args.max_pending)
    try:
        bodies = pen_up_requests("sheep", 60)
        with httpx.Client(timeout=60) as c:  # warm up, then the memory baseline
            for b in bodies[:5]:
                c.post(url + "/api/complete", json={**b, "model": "sheep", "n": 9})
        rss = [(0.0, rss_mb(proc.pid))]
        stop, lock, results = threading.Event(), threading.Lock(), []
        threads = [
            threading.Thread(
                target=client_loop, args=(url, bodies, "sheep", stop, results, lock, k)
            )
            for k in range(args.clients)
        ]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        while time.monotonic() - t0 < args.seconds:
            time.sleep(min(10.0, args.seconds - (time.monotonic() - t0)))
            rss.append((time.monotonic() - t0, rss_mb(proc.pid)))
        stop.set()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        rss.append((wall, rss_mb(proc.pid)))
        health = httpx.get(url + "/api/health").json()
    finally:
        stop_server(proc)

    done = [r for r in results if r[2]]
    errors = [r for r in results if not r[2] and r[1] != 503]
    busy = [r for r in results if r[1] == 503]
    print(f"{args.clients} clients x {args.seconds:.0f} s on 127.0.0.1, magenta-size sheep model")
    print(
        f"  requests: {len(results)} ({len(results) / wall:.2f}/s), ok {len(done)}, "
        f"errors {len(errors)}, 503 busy {len(busy)}"
    )
    by_kind = defaultdict(list)
    for kind, _s, ok, elapsed, _t in results:
        if ok:
            by_kind[kind].append(elapsed * 1000)
    for kind, times in sorted(by_kind.items()):
        a = np.asarray(times)
        print(
            f"  {kind:8s} n={len(a):4d}  p50 {np.percentile(a, 50):7.0f} ms  "
            f"p99 {np.percentile(a, 99):7.0f} ms"
        )
    print("  server RSS (MB): " + ", ".join(f"{t:.0f}s {m:.0f}" for t, m in rss))
    print(f"  queue at the end: {health['queue']}")
    if errors:
        print(f"  first errors: {[(k, s) for k, s, *_ in errors[:5]]}")


if __name__ == "__main__":
    main()
