"""Screenshots of each mode of the page into docs/figures/web_*.png, drawn in Chromium as a
person would (mouse strokes on the canvas), with the best models at hand.

    .venv/bin/python tests/web/screenshots.py [--out docs/figures] [--vae PATH] [--sheep PATH]

Models: the magenta.js sheep (``../shared/data/magenta_models/sheep.gen.json``) for Draw
together and Many endings; a trained sketch-rnn VAE (``--vae``, default the shapes model of
the package's built-in ``shapes_vae``) for Mimic and Morph; the built-in SketchEmbedNet
``shapes_omniglot_sen`` for Imitate (``--embednet`` for another).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from web.fixtures import MAGENTA_MODEL, tiny_models  # noqa: E402
from web.live import chromium, draw, live_server, open_page  # noqa: E402

from sketchrnn.models import load_model  # noqa: E402
from sketchrnn.models.builtin import builtin_models  # noqa: E402

BUILTIN = builtin_models()


def circle(cx, cy, r, n=24):
    return [
        (cx + r * math.cos(2 * math.pi * i / n), cy + r * math.sin(2 * math.pi * i / n))
        for i in range(n + 1)
    ]


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

    tiny = tiny_models(Path(tempfile.mkdtemp()))
    models = {}
    if Path(args.sheep).exists():
        models["sheep"] = load_model(args.sheep)
    models["shapes"] = load_model(args.vae) if args.vae else tiny["vae"]
    models["embednet"] = load_model(args.embednet) if args.embednet else tiny["embednet"]
    drawer = "sheep" if "sheep" in models else "shapes"

    with live_server(models) as url, chromium() as browser:
        page = open_page(browser, url, width=1280, height=860)

        def shot(name):
            page.wait_for_timeout(300)
            page.screenshot(path=str(out / f"web_{name}.png"))
            print(out / f"web_{name}.png")

        page.select_option("#model", drawer)
        page.locator("#temperature").evaluate(
            "(el) => { el.value = '0.3'; el.dispatchEvent(new Event('input')); }"
        )
        # Draw together: a sheep's body, and the model carries on.
        draw(page, "#pad-together", circle(0.45, 0.5, 0.16, 28))
        page.wait_for_selector("#status:has-text('drew'), #status:has-text('finished')")
        shot("together")

        page.click("#together-clear")
        page.click("#tabs [data-mode=endings]")
        page.fill("#endings-n", "9")
        draw(page, "#pad-endings", circle(0.5, 0.5, 0.2, 28)[:16])
        page.wait_for_selector("#endings-grid .cell >> nth=8")
        shot("endings")

        page.select_option("#model", "shapes")
        page.click("#tabs [data-mode=mimic]")
        page.fill("#mimic-n", "6")
        house = [(0.3, 0.45), (0.3, 0.8), (0.7, 0.8), (0.7, 0.45), (0.3, 0.45)]
        draw(page, "#pad-mimic", house)
        draw(page, "#pad-mimic", [(0.3, 0.45), (0.5, 0.2), (0.7, 0.45)])
        page.click("#mimic-go")
        page.wait_for_selector("#mimic-results .cell >> nth=5")
        shot("mimic")

        page.click("#tabs [data-mode=morph]")
        draw(page, "#pad-morph-A", circle(0.5, 0.5, 0.3))
        draw(page, "#pad-morph-B", [(0.2, 0.8), (0.5, 0.2), (0.8, 0.8), (0.2, 0.8)])
        draw(page, "#pad-morph-C", [(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8), (0.2, 0.2)])
        draw(page, "#pad-morph-D", circle(0.5, 0.62, 0.2, 10))
        draw(page, "#pad-morph-D", circle(0.5, 0.3, 0.12, 8))
        page.fill("#morph-steps", "7")
        page.click("#morph-go")
        page.wait_for_selector("#morph-results .cell >> nth=6")
        shot("morph")
        page.fill("#grid-size", "4")
        page.click("#grid-go")
        page.wait_for_selector("#morph-results h3:has-text('4 x 4')")
        page.locator("#morph-results").scroll_into_view_if_needed()
        page.locator("#morph-results").screenshot(path=str(out / "web_grid.png"))
        print(out / "web_grid.png")

        page.select_option("#model", "embednet")
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
        shot("imitate")
        if page.errors or page.outside:
            raise SystemExit(f"page errors {page.errors}, outside requests {page.outside}")


if __name__ == "__main__":
    main()
