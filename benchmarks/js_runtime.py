"""The JavaScript runtime's speed in headless Chromium, beside @magenta/sketch and our server.

For the magenta-size decoder-only LSTM (``--magenta``, default the released sheep model: 512
units, 20 mixtures) and a LayerNorm VAE (``--vae``, default the built-in ``shapes_vae``), each
exported to a portable model folder, measures in Debian's Chromium (Playwright, headless):

* sketchrnn.js on onnxruntime-web (WebAssembly, one thread: a page without cross-origin
  isolation gets no threads): the time per decoder step (batch 1), to the first stroke of a
  continuation (reading a prefix, then drawing until the pen first lifts), to draw a whole
  sketch, to draw nine endings at once;
* @magenta/sketch 0.2.0 (its browser bundle, tfjs's default backend there) on the same sheep,
  doing the same the way its demos do, one sketch at a time;
* our Python server (``sketchrnn serve``, its JSON API, 2 workers) on the same models, from a
  client in this process: ``/api/complete/stream`` to the first stroke, ``/api/sample``,
  ``/api/complete`` with ``n=9``.

Medians of ``--repeats`` runs, temperature 0.5, the prefix the first half of the strokes of a
sketch the model drew (seed 0). Prints each figure and its ratio to sketchrnn.js's, measured in
the same run, and the targets (2 cores: first stroke <= 50 ms, nine endings <= 1 s, a step no
slower than @magenta/sketch's). Needs ``make node_modules`` (the runtime and @magenta/sketch
from package-lock.json) and the export extra. Example (about two minutes)::

    nice .venv/bin/python benchmarks/js_runtime.py --repeats 5
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _web_server import MAGENTA, start_server, stop_server

from sketchrnn import generate
from sketchrnn.models import load_model

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = ROOT / "node_modules"
STATIC = ROOT / "src" / "sketchrnn" / "web" / "static"
BUILTIN = ROOT / "src" / "sketchrnn" / "builtin_models"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TARGET_FIRST_STROKE_MS = 50
TARGET_NINE_ENDINGS_MS = 1000


def serve_folder(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


def prefix_of(model: Any) -> list[list[float]]:
    """The first half of the strokes of a sketch the model draws (seed 0), in its pixels."""
    for seed in range(20):
        [s] = generate.sample(model, 1, temperature=0.5, seed=seed)
        ends = np.flatnonzero(s[:, 2] == 1)
        if len(ends) >= 2:
            return s[: int(ends[len(ends) // 2 - 1]) + 1].tolist()
    raise RuntimeError("the model draws no sketch of two strokes")


def in_chromium(site: str, jobs: list[dict]) -> list[dict]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(site + "index.html")
            page.wait_for_function("() => window.ms !== undefined")
            version = browser.version
            out = page.evaluate(
                """async (jobs) => {
                    const sk = await import('/static/sketchrnn.js');
                    const ort = await import('/ort/ort.wasm.bundle.min.mjs');
                    const bench = await import('/bench/js_runtime_page.mjs');
                    const results = [];
                    for (const job of jobs) {
                        if (job.runtime === 'magenta') {
                            const json = await (await fetch(job.url)).json();
                            results.push(await bench.benchMagenta(window.ms, json, job));
                        } else {
                            results.push(await bench.benchOurs(sk, ort, job.url, job));
                        }
                    }
                    return results;
                }""",
                jobs,
            )
            if errors:
                raise RuntimeError(f"the page failed: {errors}")
            return [{**r, "chromium": version} for r in out]
        finally:
            browser.close()


def server_figures(url: str, name: str, prefix: list, repeats: int, tau: float) -> dict:
    """The same measurements through the Python server's JSON API."""
    first, whole, whole_points, nine, nine_points = [], [], [], [], []
    with httpx.Client(timeout=120) as client:
        common = {"model": name, "temperature": tau}
        client.post(url + "/api/sample", json={**common, "n": 1, "seed": 0})  # warm-up
        for r in range(repeats):
            body = {**common, "sketch": prefix, "seed": r}
            start = time.perf_counter()
            got = None
            with client.stream("POST", url + "/api/complete/stream", json=body) as resp:
                resp.raise_for_status()
                event = None
                for line in resp.iter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif event == "stroke" and line.startswith("data: ") and got is None:
                        got = time.perf_counter() - start
            first.append(1000 * (got if got is not None else time.perf_counter() - start))
            start = time.perf_counter()
            answer = client.post(url + "/api/sample", json={**common, "n": 1, "seed": r}).json()
            whole.append(1000 * (time.perf_counter() - start))
            whole_points.append(len(answer["sketches"][0]))
            start = time.perf_counter()
            answer = client.post(url + "/api/complete", json={**body, "n": 9}).json()
            nine.append(1000 * (time.perf_counter() - start))
            nine_points.append(sum(len(e) for e in answer["endings"]))
    return {
        "first_stroke": float(np.median(first)),
        "whole_sketch": float(np.median(whole)),
        "whole_points": float(np.median(whole_points)),
        "nine_endings": float(np.median(nine)),
        "nine_points": float(np.median(nine_points)),
    }


ROWS = [
    ("step", "decoder step (batch 1)", "ms"),
    ("first_stroke", "first stroke of a continuation", "ms"),
    ("whole_sketch", "a whole sketch", "ms"),
    ("nine_endings", "nine endings", "ms"),
]


def table(title: str, columns: dict[str, dict | None]) -> None:
    ours = columns["sketchrnn.js"]
    assert ours is not None
    names = [n for n, c in columns.items() if c is not None]
    print(f"\n{title}")
    print(f"  {'':34s}" + "".join(f"{n:>22s}" for n in names))
    for key, label, unit in ROWS:
        cells = []
        for n in names:
            c = columns[n]
            assert c is not None
            if key not in c:
                cells.append(f"{'-':>22s}")
                continue
            points = {"whole_sketch": "whole_points", "nine_endings": "nine_points"}.get(key)
            text = f"{c[key]:.2f} {unit}" if c[key] < 10 else f"{c[key]:.0f} {unit}"
            if points:
                text += f" ({c[points]:.0f} pts)"
            if n != "sketchrnn.js":
                text += f" {c[key] / ours[key]:.2f}x"
            cells.append(f"{text:>22s}")
        print(f"  {label:34s}" + "".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--magenta", type=Path, default=MAGENTA / "sheep.gen.json")
    ap.add_argument("--vae", type=Path, default=BUILTIN / "shapes_vae")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=100, help="decoder steps timed per repeat")
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--magenta-backend", default="default", help="tfjs backend: default, cpu")
    ap.add_argument("--no-server", action="store_true", help="skip the Python server")
    args = ap.parse_args()
    if not (NODE_MODULES / "onnxruntime-web").is_dir():
        sys.exit("node_modules lacks onnxruntime-web: run `make node_modules`")
    from sketchrnn.models.onnx_export import export_portable

    models = {"sheep": load_model(args.magenta), "vae": load_model(args.vae)}
    prefixes = {name: prefix_of(m) for name, m in models.items()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, m in models.items():
            export_portable(m, root / "models" / name, name=name)
        for name, target in {
            "static": STATIC,
            "ort": NODE_MODULES / "onnxruntime-web" / "dist",
            "magenta": NODE_MODULES / "@magenta" / "sketch" / "dist",
            "bench": Path(__file__).resolve().parent,
        }.items():
            (root / name).symlink_to(target, target_is_directory=True)
        shutil.copy(args.magenta, root / "models" / "sheep.gen.json")
        (root / "index.html").write_text(
            '<!doctype html><script src="/magenta/magentasketch.js"></script>\n'
        )
        httpd, site = serve_folder(root)
        common = {"steps": args.steps, "reps": args.repeats, "temperature": args.temperature}
        jobs = [
            {"runtime": "ours", "url": f"{site}models/sheep/", "prefix": prefixes["sheep"]},
            {"runtime": "magenta", "url": f"{site}models/sheep.gen.json",
             "prefix": prefixes["sheep"], "backend": args.magenta_backend},
            {"runtime": "ours", "url": f"{site}models/vae/", "prefix": prefixes["vae"]},
        ]  # fmt: skip
        try:
            ours_sheep, magenta, ours_vae = in_chromium(site, [{**common, **j} for j in jobs])
        finally:
            httpd.shutdown()
    server: dict[str, dict | None] = {"sheep": None, "vae": None}
    if not args.no_server:
        proc, url = start_server([f"sheep={args.magenta}", f"vae={args.vae}"])
        try:
            for name in server:
                server[name] = server_figures(
                    url, name, prefixes[name], args.repeats, args.temperature
                )
        finally:
            stop_server(proc)

    print(f"{ours_sheep['chromium']}, onnxruntime-web 1.30.0 (wasm, 1 thread); medians of "
          f"{args.repeats}; temperature {args.temperature}")  # fmt: skip
    print(f"model load: sheep {ours_sheep['load']:.0f} ms, vae {ours_vae['load']:.0f} ms")
    table(
        f"sheep ({args.magenta.name}: LSTM 512, 20 mixtures), prefix of "
        f"{len(prefixes['sheep'])} points; @magenta/sketch on tfjs {magenta['backend']}",
        {
            "sketchrnn.js": ours_sheep,
            "@magenta/sketch": magenta,
            "sketchrnn serve": server["sheep"],
        },
    )
    table(
        f"LayerNorm VAE ({args.vae.name}), prefix of {len(prefixes['vae'])} points",
        {"sketchrnn.js": ours_vae, "sketchrnn serve": server["vae"]},
    )
    print("\ntargets (2 cores):")
    for name, f in (("sheep", ours_sheep), ("vae", ours_vae)):
        first_ok = f["first_stroke"] <= TARGET_FIRST_STROKE_MS
        nine_ok = f["nine_endings"] <= TARGET_NINE_ENDINGS_MS
        print(
            f"  {name}: first stroke {f['first_stroke']:.0f} ms (<= {TARGET_FIRST_STROKE_MS}: "
            f"{first_ok}), nine endings {f['nine_endings']:.0f} ms "
            f"(<= {TARGET_NINE_ENDINGS_MS}: {nine_ok})"
        )
    ratio = ours_sheep["step"] / magenta["step"]
    print(f"  sheep: a step takes {ratio:.2f}x @magenta/sketch's (<= 1: {ratio <= 1})")


if __name__ == "__main__":
    main()
