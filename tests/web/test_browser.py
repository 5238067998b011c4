"""The page as a person uses it, in Debian's Chromium driven by Playwright: drawing with
pointer events, the model's streamed strokes, every mode, the downloads, the error message."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from web.live import chromium, chromium_missing, draw, live_server, open_page

pytestmark = pytest.mark.slow

missing = chromium_missing()
if missing:
    pytest.skip(f"browser tests need Chromium and Playwright: {missing}", allow_module_level=True)
pytest.importorskip("uvicorn", reason="the web extra is not installed")

from web.fixtures import tiny_model_table  # noqa: E402

from sketchrnn.web import Limits  # noqa: E402

STROKE = [(0.30, 0.30), (0.45, 0.28), (0.55, 0.40), (0.50, 0.55), (0.35, 0.60)]
BOX = [(0.3, 0.3), (0.7, 0.3), (0.7, 0.7), (0.3, 0.7), (0.3, 0.3)]
LINE = [(0.2, 0.5), (0.5, 0.5), (0.8, 0.5)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_model_table(tmp_path_factory.mktemp("browser-models"))


@pytest.fixture(scope="module")
def server(models):
    with live_server(models) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, server):
    page = open_page(browser, server)
    yield page
    assert page.errors == [], page.errors
    assert page.outside == [], f"the page fetched from outside: {page.outside}"
    page.context.close()


def attr(page, selector, name):
    return page.locator(selector).get_attribute(name)


def pick_model(page, name):
    page.select_option("#model", name)
    page.wait_for_selector(f"body[data-model='{name}']")


def wait_idle(page):
    page.wait_for_selector("body[data-busy=false]")


def test_draw_together_streams_the_models_strokes(page, models):
    model = "sheep" if "sheep" in models else "vae"
    pick_model(page, model)
    draw(page, "#pad-together", STROKE)
    page.wait_for_selector("#status:has-text('drew')")
    assert int(attr(page, "#pad-together", "data-model-strokes")) >= 1
    assert page.locator("#error").is_hidden()
    first_ms = int(page.locator("body").get_attribute("data-first-stroke-ms"))
    assert first_ms < 10_000

    # Undo takes back the model's answer, then your stroke.
    page.click("#together-undo")
    assert page.evaluate("() => window.sketchApp.main.strokes.map(s => s.by)") == ["user"]
    page.click("#together-undo")
    assert attr(page, "#pad-together", "data-strokes") == "0"

    # Drawing while the model draws interrupts it; it goes on from everything so far.
    draw(page, "#pad-together", STROKE)
    page.wait_for_selector("#pad-together:not([data-model-strokes='0'])")
    box = page.locator("#pad-together").bounding_box()
    page.mouse.move(box["x"] + 0.6 * box["width"], box["y"] + 0.6 * box["height"])
    still_drawing = page.locator("body").get_attribute("data-streaming") == "true"
    page.mouse.down()
    if still_drawing:
        page.wait_for_selector("#status:has-text('interrupted')")
    kept = int(attr(page, "#pad-together", "data-model-strokes"))
    assert kept >= 1
    page.mouse.move(box["x"] + 0.7 * box["width"], box["y"] + 0.7 * box["height"], steps=5)
    page.mouse.up()
    page.wait_for_selector("#status:has-text('drew'), #status:has-text('finished')")
    wait_idle(page)
    by = page.evaluate("() => window.sketchApp.main.strokes.map(s => s.by)")
    assert by.count("user") == 2 and by.count("model") >= kept
    page.click("#together-clear")
    assert attr(page, "#pad-together", "data-strokes") == "0"


def test_switching_models_keeps_the_strokes_and_greys_out_modes(page):
    page.uncheck("#together-auto")
    draw(page, "#pad-together", STROKE)
    before = attr(page, "#pad-together", "data-points")
    pick_model(page, "decoder")
    assert attr(page, "#pad-together", "data-points") == before
    mimic_tab = page.locator("#tabs [data-mode=mimic]")
    assert "unsupported" in mimic_tab.get_attribute("class")
    assert "decoder-only" in mimic_tab.get_attribute("title")
    page.click("#tabs [data-mode=mimic]")
    assert page.locator("#panel-mimic .unsupported").is_visible()
    assert page.locator("#mimic-go").is_disabled()

    page.click("#tabs [data-mode=together]")
    pick_model(page, "classes")  # class-conditional: the class picker appears
    assert page.locator("#class").is_visible()
    page.select_option("#class", "truck")
    page.click("#together-go")
    page.wait_for_selector("#status:has-text('drew')")
    assert int(attr(page, "#pad-together", "data-model-strokes")) >= 1
    assert int(attr(page, "#pad-together", "data-points")) > int(before)


def test_many_endings_and_adopting_one(page):
    pick_model(page, "vae")
    page.click("#tabs [data-mode=endings]")
    page.fill("#endings-n", "4")
    draw(page, "#pad-endings", STROKE)
    page.wait_for_selector("#endings-grid .cell >> nth=3")
    assert page.locator("#endings-grid .cell").count() == 4
    before = int(attr(page, "#pad-endings", "data-strokes"))
    page.locator("#endings-grid .cell").nth(1).click()
    assert page.locator("#endings-grid .cell").count() == 0
    after = int(attr(page, "#pad-endings", "data-strokes"))
    assert after >= before
    # the same drawing in Draw together
    page.click("#tabs [data-mode=together]")
    assert int(attr(page, "#pad-together", "data-strokes")) == after


def test_mimic_with_a_second_model(page):
    pick_model(page, "vae")
    page.click("#tabs [data-mode=mimic]")
    page.fill("#mimic-n", "3")
    draw(page, "#pad-mimic", BOX)
    page.select_option("#mimic-other", "classes")
    page.select_option("#mimic-other-class", "cat")
    page.click("#mimic-go")
    page.wait_for_selector("#mimic-results .result-row >> nth=1")
    rows = page.locator("#mimic-results .result-row")
    assert rows.count() == 2
    assert rows.nth(0).locator(".cell").count() == 3
    assert "classes (cat)" in rows.nth(1).locator("h3").text_content()


def test_morph_and_the_four_corner_grid(page):
    pick_model(page, "vae")
    page.click("#tabs [data-mode=morph]")
    page.click(".slot[data-slot=A] .sample")
    page.click(".slot[data-slot=B] .sample")
    wait_idle(page)
    draw(page, "#pad-morph-C", BOX)
    draw(page, "#pad-morph-D", LINE)
    for slot in "ABCD":
        assert attr(page, f"#pad-morph-{slot}", "data-strokes") != "0"
    page.fill("#morph-steps", "5")
    page.click("#morph-go")
    page.wait_for_selector("#morph-results .cell >> nth=4")
    assert page.locator("#morph-results .cell").count() == 5
    page.fill("#grid-size", "3")
    page.click("#grid-go")
    page.wait_for_selector("#morph-results h3:has-text('3 x 3')")
    assert page.locator("#morph-results .cell").count() == 9


def test_imitate_and_teach_by_example(page):
    pick_model(page, "embednet")
    assert "unsupported" in page.locator("#tabs [data-mode=together]").get_attribute("class")
    page.click("#tabs [data-mode=imitate]")
    draw(page, "#pad-imitate", BOX)
    page.click("#imitate-go")
    page.wait_for_selector("#imitate-results .cell >> nth=3")
    assert page.locator("#imitate-results .cell").count() == 4

    page.locator(".concept input").nth(0).fill("box")
    page.locator(".concept input").nth(1).fill("line")
    draw(page, "#pad-concept-1", BOX)
    draw(page, "#pad-concept-2", LINE)
    page.click("#concept-add")
    assert page.locator(".concept").count() == 3  # an empty concept is left out
    draw(page, "#pad-query", BOX)  # classified at pen-up
    page.wait_for_selector("#teach-result[data-label]")
    assert attr(page, "#teach-result", "data-label") in ("box", "line")
    assert "sure" in page.locator("#teach-result .verdict").text_content()
    assert page.locator("#teach-result .bar-row").count() == 2


def test_downloads_hold_the_strokes(page, tmp_path):
    from PIL import Image

    page.uncheck("#together-auto")
    draw(page, "#pad-together", STROKE)
    draw(page, "#pad-together", LINE)
    exports = page.locator("#panel-together .exports")
    with page.expect_download() as info:
        exports.locator("button", has_text="SVG").click()
    svg_path = tmp_path / info.value.suggested_filename
    info.value.save_as(svg_path)
    assert svg_path.suffix == ".svg"
    root = ET.parse(svg_path).getroot()
    paths = root.findall(".//{http://www.w3.org/2000/svg}path")
    assert len(paths) == 2
    assert len(paths[1].get("d").split("L")) >= 2

    with page.expect_download() as info:
        exports.locator("button", has_text="PNG").click()
    png_path = tmp_path / info.value.suggested_filename
    info.value.save_as(png_path)
    image = Image.open(png_path).convert("L")
    assert image.size == (512, 512)
    lo, hi = image.getextrema()
    assert hi == 255 and lo < 100  # white paper, dark ink

    exports.locator("button", has_text="JSON").click()
    page.wait_for_selector("body[data-last-copied]")
    rows = json.loads(page.locator("body").get_attribute("data-last-copied"))
    assert len(rows) == int(attr(page, "#pad-together", "data-points"))
    assert sum(r[2] for r in rows) == 2
    clip = page.evaluate("() => navigator.clipboard.readText()")
    assert json.loads(clip) == rows

    # a result's downloads too
    page.click("#tabs [data-mode=endings]")
    page.fill("#endings-n", "2")
    page.click("#endings-go")
    page.wait_for_selector("#endings-grid .cell >> nth=1")
    with page.expect_download() as info:
        page.locator("#endings-grid .cell").nth(0).locator("button", has_text="SVG").click()
    assert info.value.suggested_filename == "ending-1.svg"


def test_an_oversized_drawing_gets_the_pages_error(browser, models):
    with live_server(models, limits=Limits(max_points=60)) as url:
        page = open_page(browser, url)
        try:
            pick_model(page, "vae")
            zigzag = [(0.1 + 0.8 * i / 40, 0.3 + 0.3 * (i % 2)) for i in range(41)]
            draw(page, "#pad-together", zigzag)
            page.wait_for_selector("#error:not([hidden])")
            text = page.locator("#error-text").text_content()
            assert "points" in text and "60" in text
            # not a dead page: clear, draw something small, the model answers
            page.click("#together-clear")
            draw(page, "#pad-together", STROKE[:3])
            page.wait_for_selector("#status:has-text('drew')")
            assert page.locator("#error").is_hidden()
            assert page.errors == [] and page.outside == []
        finally:
            page.context.close()


def test_touch_and_pen_pointers(browser, server):
    page = open_page(browser, server)
    try:
        pick_model(page, "vae")
        page.uncheck("#together-auto")
        box = page.locator("#pad-together").bounding_box()
        for kind, pointer_id in (("touch", 7), ("pen", 8)):
            page.evaluate(
                """([kind, id, box]) => {
                  const c = document.querySelector('#pad-together');
                  const at = (fx, fy) => ({clientX: box.x + fx * box.width,
                    clientY: box.y + fy * box.height, pointerId: id, pointerType: kind,
                    isPrimary: true, bubbles: true, button: 0});
                  c.dispatchEvent(new PointerEvent('pointerdown', at(0.2, 0.2)));
                  for (let i = 1; i <= 10; i++)
                    c.dispatchEvent(new PointerEvent('pointermove', at(0.2 + i * 0.03, 0.2)));
                  c.dispatchEvent(new PointerEvent('pointerup', at(0.5, 0.2)));
                }""",
                [kind, pointer_id, box],
            )
        assert attr(page, "#pad-together", "data-strokes") == "2"
        assert int(attr(page, "#pad-together", "data-points")) >= 20
        assert page.errors == []
    finally:
        page.context.close()
