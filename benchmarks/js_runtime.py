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
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from sketchrnn import generate
from sketchrnn.models import load_model

ROOT = Path(__file__).resolve().parents[1]
MAGENTA = Path(os.environ.get("SKETCHRNN_SHARED_DATA", ROOT.parent / "shared" / "data")) / (
    "magenta_models"
)
NODE_MODULES = ROOT / "node_modules"
STATIC = ROOT / "src" / "sketchrnn" / "web" / "static"
BUILTIN = ROOT / "src" / "sketchrnn" / "builtin_models"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
# tfjs's default in headless Chromium (WebGL on a software GPU there) and its CPU backend.
MAGENTA_BACKENDS = ("default", "cpu")
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


def prefix_of(model: Any, z_from: str) -> list[list[float]]:
    """A prefix the model goes on drawing from: the first half of the points of a sketch it
    drew (the first seed whose nine endings at temperature 0.5 add 4 or more points each on
    average), in its pixels, the pen lifted after the last point as a page sends it."""
    for seed in range(50):
        [s] = generate.sample(model, 1, temperature=0.5, seed=seed)
        if len(s) < 8:
            continue
        prefix = s[: len(s) // 2].copy()
        prefix[-1, 2] = 1
        endings = generate.complete(model, prefix, 9, temperature=0.5, seed=0, z_from=z_from)
        if np.mean([len(e) - len(prefix) for e in endings]) >= 4:
            return prefix.tolist()
    raise RuntimeError("found no prefix the model continues")


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


def start_server(specs: list[str]) -> tuple[subprocess.Popen, str]:
    """``sketchrnn serve SPECS`` on a free loopback port, once it answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "sketchrnn.cli", "serve", *specs, "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(url + "/api/health", timeout=2).close()
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("sketchrnn serve did not start")


def post(url: str, body: dict) -> Any:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    return urllib.request.urlopen(request, timeout=300)


def server_figures(
    url: str, name: str, prefix: list, repeats: int, tau: float, z_from: str
) -> dict:
    """The same measurements through the Python server's JSON API."""
    first, whole, whole_points, nine, nine_points = [], [], [], [], []
    common = {"model": name, "temperature": tau}
    post(url + "/api/sample", {**common, "n": 1, "seed": 0}).read()  # warm-up
    for r in range(repeats):
        body = {**common, "sketch": prefix, "seed": r}
        if z_from != "prefix":
            body["z_from"] = z_from
        start = time.perf_counter()
        got = None
        with post(url + "/api/complete/stream", body) as stream:
            event = None
            for raw in stream:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif event == "stroke" and line.startswith("data: ") and got is None:
                    got = time.perf_counter() - start
        first.append(1000 * (got if got is not None else time.perf_counter() - start))
        start = time.perf_counter()
        answer = json.load(post(url + "/api/sample", {**common, "n": 1, "seed": r}))
        whole.append(1000 * (time.perf_counter() - start))
        whole_points.append(len(answer["sketches"][0]))
        start = time.perf_counter()
        answer = json.load(post(url + "/api/complete", {**body, "n": 9}))
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
    ("read_prefix", "reading the prefix", "ms"),
    ("first_stroke", "first stroke of a continuation", "ms"),
    ("whole_sketch", "a whole sketch", "ms"),
    ("nine_endings", "nine endings", "ms"),
]


def table(title: str, columns: dict[str, dict | None]) -> None:
    ours = columns["sketchrnn.js"]
    assert ours is not None
    names = [n for n, c in columns.items() if c is not None]
    print(f"\n{title}  (in brackets: the time over sketchrnn.js's)")
    print(f"  {'':32s}" + "".join(f"{n:>30s}" for n in names))
    for key, label, unit in ROWS:
        cells = []
        for n in names:
            c = columns[n]
            assert c is not None
            if key not in c:
                cells.append(f"{'-':>30s}")
                continue
            points = {"whole_sketch": "whole_points", "nine_endings": "nine_points"}.get(key)
            text = f"{c[key]:.2f} {unit}" if c[key] < 10 else f"{c[key]:.0f} {unit}"
            if points:
                text += f" ({c[points]:.0f} pts)"
            if n != "sketchrnn.js":
                text += f" [{c[key] / ours[key]:.2f}x]"
            cells.append(f"{text:>30s}")
        print(f"  {label:32s}" + "".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--magenta", type=Path, default=MAGENTA / "sheep.gen.json")
    ap.add_argument("--vae", type=Path, default=BUILTIN / "shapes_vae")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=100, help="decoder steps timed per repeat")
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--no-server", action="store_true", help="skip the Python server")
    args = ap.parse_args()
    if not (NODE_MODULES / "onnxruntime-web").is_dir():
        sys.exit("node_modules lacks onnxruntime-web: run `make node_modules`")
    from sketchrnn.models.onnx_export import export_portable

    models = {"sheep": load_model(args.magenta), "vae": load_model(args.vae)}
    # The shapes VAE ends a half shape it has encoded at once: its endings draw z from the
    # prior (complete's z_from="prior"), in every runtime alike.
    z_from = {"sheep": "prefix", "vae": "prior"}
    prefixes = {name: prefix_of(m, z_from[name]) for name, m in models.items()}
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
            {"runtime": "ours", "url": f"{site}models/sheep/", "prefix": prefixes["sheep"],
             "zFrom": "prefix"},
            *({"runtime": "magenta", "url": f"{site}models/sheep.gen.json",
               "prefix": prefixes["sheep"], "backend": backend} for backend in MAGENTA_BACKENDS),
            {"runtime": "ours", "url": f"{site}models/vae/", "prefix": prefixes["vae"],
             "zFrom": "prior"},
        ]  # fmt: skip
        try:
            ours_sheep, magenta_gl, magenta_cpu, ours_vae = in_chromium(
                site, [{**common, **j} for j in jobs]
            )
        finally:
            httpd.shutdown()
    server: dict[str, dict | None] = {"sheep": None, "vae": None}
    if not args.no_server:
        proc, url = start_server([f"sheep={args.magenta}", f"vae={args.vae}"])
        try:
            for name in server:
                server[name] = server_figures(
                    url, name, prefixes[name], args.repeats, args.temperature, z_from[name]
                )
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    print(f"{ours_sheep['chromium']}, onnxruntime-web 1.30.0 (wasm, 1 thread); medians of "
          f"{args.repeats}; temperature {args.temperature}")  # fmt: skip
    print(f"model load: sheep {ours_sheep['load']:.0f} ms, vae {ours_vae['load']:.0f} ms")
    table(
        f"sheep ({args.magenta.name}: LSTM 512, 20 mixtures), prefix of "
        f"{len(prefixes['sheep'])} points",
        {
            "sketchrnn.js": ours_sheep,
            f"magenta.js ({magenta_gl['backend']})": magenta_gl,
            f"magenta.js ({magenta_cpu['backend']})": magenta_cpu,
            "sketchrnn serve": server["sheep"],
        },
    )
    table(
        f"LayerNorm VAE ({args.vae.name}), prefix of {len(prefixes['vae'])} points, "
        "endings from z ~ N(0, I)",
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
    fastest = min(magenta_gl["step"], magenta_cpu["step"])
    ratio = ours_sheep["step"] / fastest
    print(
        f"  sheep: a step takes {ratio:.2f}x @magenta/sketch's faster backend (<= 1: {ratio <= 1})"
    )


if __name__ == "__main__":
    main()
