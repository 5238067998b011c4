"""What one ``sketchrnn serve`` sustains now that the page draws in the browser, beside what it
sustained drawing on the server, measured in the same run on the same machine.

Starts ``sketchrnn.web.serve`` in its own process on 127.0.0.1 with the magenta-size sheep
(``--magenta``; its portable form is exported once into the model cache, before timing), then:

1. page loads: ``--clients`` threads load the page as a first visit does (the HTML, its
   modules and style, ``api/models``, sketchrnn.js and onnxruntime-web's two files, gzip
   accepted) for ``--seconds``; then as a return visit does (the same with the ETags the first
   visit got: 304s). Loads/s, MB/s sent, and the server's CPU seconds per load;
2. model downloads: the same threads fetch the sheep's portable folder (manifest and graphs);
   downloads/s, MB/s, CPU per download;
3. drawing in the browser: 1, then 4 concurrent Chromium pages (Debian's chromium, one context
   each) continue pen-up prefixes of real Quick, Draw! sheep: time to the first stroke and to
   the end of the continuation (p50/p95), and the server's CPU seconds meanwhile;
4. the JSON API as it was used before (the server draws): ``--api-clients`` (30) clients
   streaming continuations, nine endings and samples for ``--api-seconds``; p50/p95 per kind.

The server's CPU is read from /proc (utime + stime). Clients and browsers run on the same
machine as the server (2 cores here): the figures are what this box sustains, not the
server alone. Example (the issue's run)::

    .venv/bin/python benchmarks/web_page_load.py --seconds 20 --api-seconds 60
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx2 as httpx  # the dev extra's HTTP client (httpx's successor, same API)
import numpy as np
from _web_server import MAGENTA, pen_up_requests, start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

PAGE_FILES = [
    "/",
    "/static/style.css",
    "/static/app.js",
    "/static/sketches.js",
    "/static/models.js",
    "/static/pad.js",
    "/static/together.js",
    "/static/latent.js",
    "/static/teach.js",
    "/static/fewshot.js",
    "/static/sketchrnn.js",
    "/api/models",
    "/static/ort.wasm.bundle.min.mjs",
    "/static/ort-wasm-simd-threaded.wasm",
]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p(values, q):
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def hammer(url, paths_of, clients, seconds, etags=None):
    """``clients`` threads GET the paths of ``paths_of()`` in turn for ``seconds``; returns
    (rounds, bytes on the wire, errors, wall seconds)."""
    stop = threading.Event()
    lock = threading.Lock()
    totals = {"rounds": 0, "bytes": 0, "errors": 0}

    def loop():
        with httpx.Client(base_url=url, timeout=60, headers={"accept-encoding": "gzip"}) as c:
            while not stop.is_set():
                sent, ok = 0, True
                for path in paths_of():
                    headers = {"if-none-match": etags[path]} if etags and path in etags else {}
                    with c.stream("GET", path, headers=headers) as r:
                        for chunk in r.iter_raw():
                            sent += len(chunk)
                        ok = ok and r.status_code in (200, 304)
                with lock:
                    totals["rounds"] += 1
                    totals["bytes"] += sent
                    totals["errors"] += 0 if ok else 1

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return totals["rounds"], totals["bytes"], totals["errors"], time.monotonic() - t0


def report(what, proc, url, paths_of, clients, seconds, etags=None):
    before = cpu_seconds(proc.pid)
    rounds, sent, errors, wall = hammer(url, paths_of, clients, seconds, etags)
    cpu = cpu_seconds(proc.pid) - before
    print(
        f"  {what:28s} {rounds / wall:7.1f}/s  {sent / wall / 1e6:7.1f} MB/s  "
        f"server CPU {1000 * cpu / max(rounds, 1):6.1f} ms each  ({rounds} in {wall:.0f} s, "
        f"{errors} errors)"
    )
    return rounds / wall


# Set the pad's drawing to a prefix (stroke-3 in the request's canvas pixels, fitted to the
# pad), press Continue, and measure in the page: the first stroke (the page's own
# data-first-stroke-ms, from the press) and the end of the continuation.
PEN_UP = """([rows, canvas]) => {
  const pad = document.querySelector('#pad-together');
  const k = Math.min(pad.clientWidth / canvas.width, pad.clientHeight / canvas.height);
  let x = 0, y = 0, points = [];
  const strokes = [];
  for (const [dx, dy, pen] of rows) {
    x += dx * k; y += dy * k; points.push([x, y]);
    if (pen) { strokes.push({points, by: 'user'}); points = []; }
  }
  window.sketchApp.main.strokes = strokes;
  const given = strokes.reduce((n, s) => n + s.points.length, 0);
  const body = document.body;
  delete body.dataset.firstStrokeMs;
  delete body.dataset.error;
  const t0 = performance.now();
  document.querySelector('#together-go').click();
  window.penUp = new Promise((resolve) => {
    const check = () => {
      if (body.dataset.streaming === 'false' && body.dataset.busy === 'false') {
        resolve({whole: performance.now() - t0, first: Number(body.dataset.firstStrokeMs),
                 drawn: Number(pad.dataset.points) - given, error: body.dataset.error || null});
      } else setTimeout(check, 2);
    };
    check();
  });
}"""


def draw_in_browsers(url, pid, pages, prefixes, per_page):
    """``pages`` Chromium pages at once, each continuing ``per_page`` prefixes: the seconds to
    the first stroke and to the end of each continuation, the points drawn, the failures and
    the server's CPU seconds while they drew (once the pages and the model had loaded)."""
    from web.live import chromium, open_page

    first, whole, drawn, failures = [], [], [], []
    with chromium() as browser:
        opened = []
        for _ in range(pages):
            page = open_page(browser, url)
            page.select_option("#model", "sheep")
            page.wait_for_selector("body[data-model='sheep']")
            page.wait_for_selector("#loading", state="hidden", timeout=300_000)
            page.uncheck("#together-auto")
            opened.append(page)
        # Playwright's sync API drives the pages in turn: each pen-up starts on every page
        # before any is waited on, so that the pages draw at the same time.
        cpu = cpu_seconds(pid)
        for k in range(per_page):
            for i, page in enumerate(opened):
                body = prefixes[(k * pages + i) % len(prefixes)]
                page.evaluate(PEN_UP, [body["sketch"], body["canvas"]])
            for page in opened:
                out = page.evaluate("() => window.penUp")
                if out["error"]:
                    failures.append(out["error"])
                    continue
                whole.append(out["whole"] / 1000)
                drawn.append(out["drawn"])
                if out["first"] == out["first"]:  # not NaN: a stroke came
                    first.append(out["first"] / 1000)
        cpu = cpu_seconds(pid) - cpu
        errors = [e for page in opened for e in page.errors]
        for page in opened:
            page.context.close()
    return first, whole, drawn, failures + errors, cpu


def api_load(url, clients, seconds):
    """The JSON API drawing on the server (web_load.py's client loop)."""
    from web_load import client_loop

    bodies = pen_up_requests("sheep", 60)
    stop, lock, results = threading.Event(), threading.Lock(), []
    threads = [
        threading.Thread(target=client_loop, args=(url, bodies, "sheep", stop, results, lock, k))
        for k in range(clients)
    ]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    by_kind = defaultdict(list)
    for kind, _status, ok, elapsed, _t in results:
        if ok:
            by_kind[kind].append(elapsed)
    busy = sum(1 for r in results if r[1] == 503)
    return by_kind, busy, len(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--magenta", default=str(MAGENTA / "sheep.gen.json"))
    parser.add_argument("--clients", type=int, default=8, help="threads loading pages/models")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--pen-ups", type=int, default=12, help="continuations per page")
    parser.add_argument("--api-clients", type=int, default=30)
    parser.add_argument("--api-seconds", type=float, default=60.0)
    args = parser.parse_args()

    proc, url = start_server([f"sheep={args.magenta}"])
    try:
        models = httpx.get(url + "/api/models").json()["models"]
        sheep = next(m for m in models if m["name"] == "sheep")
        folder = "/" + sheep["portable"]
        manifest = httpx.get(url + folder + "manifest.json", timeout=600).json()  # exported
        model_files = [folder + "manifest.json"] + [
            folder + g["file"] for g in manifest["graphs"].values()
        ]
        with httpx.Client(base_url=url, headers={"accept-encoding": "gzip"}) as c:
            etags = {f: c.get(f).headers.get("etag") for f in PAGE_FILES}
        etags = {k: v for k, v in etags.items() if v}
        size = sheep["portable_bytes"] / 1e6
        print(f"sketchrnn serve (2 workers) on 127.0.0.1, {os.cpu_count()} cores, sheep "
              f"{size:.1f} MB portable; {args.clients} client threads")  # fmt: skip
        print("1-2. what the server sends (loads in parallel, the clients on the same cores):")
        report("page, first visit", proc, url, lambda: PAGE_FILES, args.clients, args.seconds)
        report("page, return visit (304s)", proc, url, lambda: PAGE_FILES, args.clients,
               args.seconds, etags)  # fmt: skip
        report("model download (sheep)", proc, url, lambda: model_files, args.clients,
               args.seconds)  # fmt: skip

        prefixes = pen_up_requests("sheep", 40)
        print("3. drawing in the browser (sketchrnn.js in Chromium; pen-up prefixes of sheep):")
        browser_first = {}
        for pages in (1, 4):
            first, whole, drawn, problems, cpu = draw_in_browsers(
                url, proc.pid, pages, prefixes, args.pen_ups
            )
            browser_first[pages] = p(first, 50)
            print(
                f"  {pages} page(s): first stroke p50 {1000 * p(first, 50):5.0f} ms  "
                f"p95 {1000 * p(first, 95):5.0f} ms;  whole continuation p50 "
                f"{1000 * p(whole, 50):5.0f} ms  p95 {1000 * p(whole, 95):5.0f} ms  "
                f"({len(whole)} pen-ups, median {p(drawn, 50):.0f} points drawn);  "
                f"server CPU meanwhile {1000 * cpu:.0f} ms"
                + (f";  problems: {problems[:3]}" if problems else "")
            )

        print(f"4. the JSON API drawing on the server: {args.api_clients} clients, "
              f"{args.api_seconds:.0f} s:")  # fmt: skip
        before = cpu_seconds(proc.pid)
        by_kind, busy, total = api_load(url, args.api_clients, args.api_seconds)
        cpu = cpu_seconds(proc.pid) - before
        for kind, times in sorted(by_kind.items()):
            print(f"  {kind:8s} p50 {1000 * p(times, 50):7.0f} ms  p95 {1000 * p(times, 95):7.0f}"
                  f" ms  (n={len(times)})")  # fmt: skip
        done = sum(len(v) for v in by_kind.values())
        print(f"  {total} requests, {done} answered, {busy} refused busy (503); server CPU "
              f"{cpu:.0f} s = {1000 * cpu / max(done, 1):.0f} ms per answer")  # fmt: skip
        stream = by_kind.get("stream", [])
        if stream and browser_first.get(4):
            print(f"ratio: a continuation streamed by the server (whole, p50, {args.api_clients} "
                  f"clients) / the first stroke in the browser (p50, 4 pages) = "
                  f"{p(stream, 50) / browser_first[4]:.0f}x")  # fmt: skip
    finally:
        stop_server(proc)


if __name__ == "__main__":
    main()
