"""Screenshots of each mode of the page into docs/figures/web_*.png (desktop, 1280 wide) and
web_phone_*.png (a 390x844 touch screen), drawn in Chromium as a person would (strokes on the
canvas), every drawing made in the browser by sketchrnn.js.

    .venv/bin/python tests/web/screenshots.py [--out docs/figures] [--vae PATH] [--sheep PATH]

Models: the magenta.js sheep (``../shared/data/magenta_models/sheep.gen.json``) for Draw
together and Many endings; a trained sketch-rnn VAE (``--vae``, default the package's built-in
``shapes_vae``) for Mimic and Morph; the built-in SketchEmbedNet ``shapes_omniglot_sen`` for
Imitate (``--embednet`` for another). Their portable forms are kept in the model cache (the
first run exports them); onnxruntime-web comes from node_modules (``make node_modules``) or
from ``sketchrnn runtime install``.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from web.conftest import RUNTIME  # noqa: E402
from web.fixtures import MAGENTA_MODEL, tiny_models  # noqa: E402
from web.live import chromium, draw, live_server, open_page  # noqa: E402

from sketchrnn.io.js_runtime import installed_runtime  # noqa: E402
from sketchrnn.models import load_model  # noqa: E402
from sketchrnn.models.builtin import builtin_models  # noqa: E402
from sketchrnn.web.drawing import ServedModel  # noqa: E402
from sketchrnn.web.portable_cache import PortableStore  # noqa: E402

BUILTIN = builtin_models()
DONE = "#status:has-text('drew'), #status:has-text('finished')"


def circle(cx, cy, r, n=24, ry=None):
    ry = r if ry is None else ry
    return [
        (cx + r * math.cos(2 * math.pi * i / n), cy + ry * math.sin(2 * math.pi * i / n))
        for i in range(n + 1)
    ]


def tour(page, out: Path, prefix: str, drawer: str, phone: bool) -> None:
    """Every mode, one screenshot each, as ``{prefix}{mode}.png``."""

    def shot(name, full=False):
        page.wait_for_selector("body[data-busy=false]")
        page.wait_for_timeout(400)
        path = out / f"{prefix}{name}.png"
        page.screenshot(path=str(path), full_page=full, scale="css")
        print(path)

    def pick(name):
        page.select_option("#model", name)
        page.wait_for_selector(f"body[data-model='{name}']")
        page.wait_for_selector("#loading", state="hidden")

    def temperature(value):
        page.locator("#temperature").evaluate(
            f"(el) => {{ el.value = '{value}'; el.dispatchEvent(new Event('input')); }}"
        )

    pick(drawer)
    temperature(0.3)
    # Draw together: a sheep's body, and the model carries on; then another ending.
    draw(page, "#pad-together", circle(0.45, 0.5, 0.16, 28))
    page.wait_for_selector(DONE)
    page.click("#together-another")
    page.wait_for_selector(DONE)
    shot("together")

    page.click("#together-clear")
    page.click("#tabs [data-mode=endings]")
    page.fill("#endings-n", "9")
    draw(page, "#pad-endings", circle(0.5, 0.5, 0.2, 28)[:16])
    page.wait_for_selector("#endings-grid .cell >> nth=8")
    shot("endings", full=phone)
    page.click("#endings-strip")
    page.wait_for_selector("#endings-grid[data-kind=strip]")
    shot("strip", full=phone)

    pick("shapes")
    page.click("#tabs [data-mode=mimic]")
    page.fill("#mimic-n", "6")
    house = [(0.3, 0.45), (0.3, 0.8), (0.7, 0.8), (0.7, 0.45), (0.3, 0.45)]
    draw(page, "#pad-mimic", house)
    draw(page, "#pad-mimic", [(0.3, 0.45), (0.5, 0.2), (0.7, 0.45)])
    page.click("#mimic-go")
    page.wait_for_selector("#mimic-results .cell >> nth=5")
    shot("mimic", full=phone)

    page.click("#tabs [data-mode=morph]")
    draw(page, "#pad-morph-A", circle(0.5, 0.5, 0.3))
    draw(page, "#pad-morph-B", [(0.2, 0.8), (0.5, 0.2), (0.8, 0.8), (0.2, 0.8)])
    draw(page, "#pad-morph-C", [(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8), (0.2, 0.2)])
    draw(page, "#pad-morph-D", circle(0.5, 0.62, 0.2, 10))
    draw(page, "#pad-morph-D", circle(0.5, 0.3, 0.12, 8))
    page.fill("#morph-steps", "7")
    page.click("#morph-go")
    page.wait_for_selector("#morph-results .cell >> nth=6")
    shot("morph", full=phone)
    page.fill("#grid-size", "4")
    page.click("#grid-go")
    page.wait_for_selector("#morph-results h3:has-text('4 x 4')")
    page.wait_for_selector("body[data-busy=false]")
    page.locator("#morph-results").scroll_into_view_if_needed()
    path = out / f"{prefix}grid.png"
    page.wait_for_timeout(400)
    page.locator("#morph-results").screenshot(path=str(path), scale="css")
    print(path)

    pick("embednet")
    page.click("#tabs [data-mode=imitate]")
    draw(page, "#pad-imitate", circle(0.5, 0.5, 0.3))
    page.click("#imitate-go")
    page.wait_for_selector("#imitate-results .cell >> nth=3")
    page.locator(".concept input").nth(0).fill("circle")
    page.locator(".concept input").nth(1).fill("zigzag")
    draw(page, "#pad-concept-1", circle(0.5, 0.5, 0.3))
    draw(page, "#pad-concept-2", [(0.1, 0.3), (0.3, 0.7), (0.5, 0.3), (0.7, 0.7), (0.9, 0.3)])
    draw(page, "#pad-query", circle(0.5, 0.5, 0.25, 12))
    page.wait_for_selector("#teach-result[data-label]")
    shot("imitate", full=phone)
    problems = page.errors + page.outside + page.drawing_requests
    if problems:
        raise SystemExit(f"page errors, outside or drawing requests: {problems}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="docs/figures")
    parser.add_argument(
        "--vae", default=str(BUILTIN["shapes_vae"]) if "shapes_vae" in BUILTIN else None
    )
    parser.add_argument("--sheep", default=str(MAGENTA_MODEL / "sheep.gen.json"))
    parser.add_argument(
        "--embednet",
        default=str(BUILTIN["shapes_omniglot_sen"]) if "shapes_omniglot_sen" in BUILTIN else None,
        help="a trained SketchEmbedNet",
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runtime = RUNTIME if (RUNTIME / "ort.wasm.bundle.min.mjs").is_file() else installed_runtime()
    if runtime is None:
        raise SystemExit(
            "onnxruntime-web is missing: make node_modules (or sketchrnn runtime install)"
        )

    tiny = tiny_models(Path(tempfile.mkdtemp()))
    models = {}
    if Path(args.sheep).exists():
        models["sheep"] = load_model(args.sheep)
    models["shapes"] = load_model(args.vae) if args.vae else tiny["vae"]
    models["embednet"] = load_model(args.embednet) if args.embednet else tiny["embednet"]
    drawer = "sheep" if "sheep" in models else "shapes"
    store = PortableStore()
    table = {name: ServedModel(name, model) for name, model in models.items()}
    for served in table.values():
        print(f"portable form of {served.name}: {store.export(served)}")

    with live_server(table, portable=store, runtime=runtime) as url, chromium() as browser:
        page = open_page(browser, url, width=1280, height=860)
        tour(page, out, "web_", drawer, phone=False)
        page.context.close()
        page = open_page(browser, url, width=390, height=844, touch=True)
        tour(page, out, "web_phone_", drawer, phone=True)
        page.context.close()


if __name__ == "__main__":
    main()
