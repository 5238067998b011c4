"""The page as a person uses it, in Debian's Chromium driven by Playwright: every mode drawn in
the browser by sketchrnn.js for every model kind (a VAE, a decoder-only model, a
class-conditional HyperLSTM, a SketchEmbedNet, the magenta-size sheep), with no request asking
the server to draw; retry, another ending, the temperature strips, empty endings said and drawn
on, strokes kept in view, the loading prompt, touch on a phone, the downloads, the errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import torch
from web.live import chromium, chromium_missing, draw, live_server, open_page

pytestmark = pytest.mark.slow

missing = chromium_missing()
if missing:
    pytest.skip(f"browser tests need Chromium and Playwright: {missing}", allow_module_level=True)
pytest.importorskip("uvicorn", reason="the web extra is not installed")
pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install -e .[onnx])")

from web.fixtures import tiny_model_table  # noqa: E402

from sketchrnn.models import SketchRNN, SketchRNNConfig  # noqa: E402

STROKE = [(0.30, 0.30), (0.45, 0.28), (0.55, 0.40), (0.50, 0.55), (0.35, 0.60)]
BOX = [(0.3, 0.3), (0.7, 0.3), (0.7, 0.7), (0.3, 0.7), (0.3, 0.3)]
LINE = [(0.2, 0.5), (0.5, 0.5), (0.8, 0.5)]
DONE = "#status:has-text('drew'), #status:has-text('finished')"


def ender() -> SketchRNN:
    """A VAE that ends every drawing at its first step (as omniglot_vae often does)."""
    torch.manual_seed(1)
    model = SketchRNN(
        SketchRNNConfig(cell="lstm", enc_hidden=16, dec_hidden=32, z_size=8, num_mixtures=3,
                        max_seq_len=60)
    )  # fmt: skip
    with torch.no_grad():
        model.decoder.output.weight[:3] *= 0.01
        model.decoder.output.bias[:3] = torch.tensor([0.0, 0.0, 8.0])
    model.set_units(scale_factor=10.0)
    return model.eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    table = tiny_model_table(tmp_path_factory.mktemp("browser-models"))
    table["ender"] = ender()
    return table


def exported(models, store):
    """The models as served, each exported before the page asks (the first run of the tests
    exports them; later runs find them in pytest's cache): no test waits on an export."""
    from sketchrnn.web.drawing import ServedModel

    table = {name: ServedModel(name, model) for name, model in models.items()}
    for served in table.values():
        store.export(served)
    return table


@pytest.fixture(scope="module")
def server(models, portable_store, runtime_dir):
    table = exported(models, portable_store)
    with live_server(table, portable=portable_store, runtime=runtime_dir) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def settle(page):
    assert page.errors == [], page.errors
    assert page.outside == [], f"the page fetched from outside: {page.outside}"
    assert page.drawing_requests == [], (
        f"the page asked the server to draw: {page.drawing_requests}"
    )


@pytest.fixture
def page(browser, server):
    page = open_page(browser, server)
    yield page
    settle(page)
    page.context.close()


def attr(page, selector, name):
    return page.locator(selector).get_attribute(name)


def pick_model(page, name):
    page.select_option("#model", name)
    page.wait_for_selector(f"body[data-model='{name}']")


def wait_idle(page):
    page.wait_for_selector("body[data-busy=false]")


def model_strokes(page, selector="#pad-together"):
    return int(attr(page, selector, "data-model-strokes"))


# ----------------------------------------------------------------------------- Draw together


@pytest.mark.parametrize("name", ["vae", "decoder", "classes", "sheep"])
def test_draw_together_streams_in_the_browser(page, models, name):
    if name not in models:
        pytest.skip("the shared magenta models are not here")
    pick_model(page, name)
    if name == "classes":
        assert page.locator("#class").is_visible()
        page.select_option("#class", "truck")
    draw(page, "#pad-together", STROKE)
    page.wait_for_selector(DONE)
    wait_idle(page)
    assert model_strokes(page) >= 1
    assert attr(page, "#pad-together", "data-inside") == "true"  # fitted to the view
    assert page.locator("#error").is_hidden()
    assert int(page.locator("body").get_attribute("data-first-stroke-ms")) < 10_000
    assert page.locator("#loading").is_hidden()


def test_undo_interrupt_retry_and_another_ending(page):
    pick_model(page, "vae")
    draw(page, "#pad-together", STROKE)
    page.wait_for_selector(DONE)
    wait_idle(page)
    page.click("#together-undo")  # the model's answer, then your stroke
    assert page.evaluate("() => window.sketchApp.main.strokes.map(s => s.by)") == ["user"]
    page.click("#together-undo")
    assert attr(page, "#pad-together", "data-strokes") == "0"

    # Drawing while the model draws interrupts it; it goes on from everything so far.
    draw(page, "#pad-together", STROKE)
    page.wait_for_selector("#pad-together:not([data-model-strokes='0'])")
    box = page.locator("#pad-together").bounding_box()
    page.mouse.move(box["x"] + 0.6 * box["width"], box["y"] + 0.6 * box["height"])
    page.mouse.down()
    kept = model_strokes(page)
    page.mouse.move(box["x"] + 0.7 * box["width"], box["y"] + 0.7 * box["height"], steps=5)
    page.mouse.up()
    page.wait_for_selector(DONE)
    wait_idle(page)
    by = page.evaluate("() => window.sketchApp.main.strokes.map(s => s.by)")
    assert by.count("user") == 2 and by.count("model") >= kept

    # Retry: the last continuation is erased and another drawn from the same place.
    turns = "() => window.sketchApp.main.strokes.filter(s => s.by == 'model').map(s => s.turn)"
    before = page.evaluate(turns)
    page.click("#together-retry")
    page.wait_for_selector(DONE)
    wait_idle(page)
    after = page.evaluate(turns)
    assert max(after) > max(before) and max(before) not in after
    assert (
        page.evaluate("() => window.sketchApp.main.strokes.filter(s => s.by == 'user').length") == 2
    )

    # Another ending: the last one stays, faint, and the next comes in a new colour.
    page.click("#together-another")
    page.wait_for_selector(DONE)
    wait_idle(page)
    strokes = page.evaluate("() => window.sketchApp.main.strokes")
    ghosts = [s for s in strokes if s.get("ghost")]
    live = [s for s in strokes if s["by"] == "model" and not s.get("ghost")]
    assert ghosts and live
    assert {s["color"] for s in live} != {s["color"] for s in ghosts}
    assert int(attr(page, "#pad-together", "data-strokes")) == len(strokes) - len(ghosts)
    # ghosts are not part of the drawing: they go when you draw on
    draw(page, "#pad-together", LINE)
    page.wait_for_selector(DONE)
    wait_idle(page)
    assert not any(s.get("ghost") for s in page.evaluate("() => window.sketchApp.main.strokes"))


def test_endless_endings_follow_each_other(page):
    pick_model(page, "classes")
    page.check("#together-endless")
    page.uncheck("#together-auto")
    draw(page, "#pad-together", STROKE)
    page.locator("#temperature").evaluate(
        "(el) => { el.value = '1.5'; el.dispatchEvent(new Event('input')); }"
    )
    page.click("#together-go")
    ghost_turns = "new Set(window.sketchApp.main.strokes.filter(s => s.ghost).map(s => s.turn))"
    page.wait_for_function(f"() => {ghost_turns}.size >= 2", timeout=120_000)
    draw(page, "#pad-together", LINE)  # drawing stops the endless endings
    wait_idle(page)
    page.uncheck("#together-endless")


def test_a_drawing_from_scratch_is_centred(page):
    pick_model(page, "decoder")
    page.click("#together-go")
    page.wait_for_selector(DONE)
    assert model_strokes(page) >= 1
    assert attr(page, "#pad-together", "data-inside") == "true"


def test_strokes_past_the_edge_zoom_the_view_out(page):
    pick_model(page, "vae")
    page.uncheck("#together-auto")
    draw(page, "#pad-together", [(0.9, 0.9), (0.97, 0.95), (0.99, 0.99)])
    for _ in range(3):  # scribbles from the corner: some run past the edge
        page.click("#together-go")
        page.wait_for_selector(DONE)
        wait_idle(page)
    assert attr(page, "#pad-together", "data-inside") == "true"
    assert float(attr(page, "#pad-together", "data-zoom")) < 1.0
    # what you draw next lands where you draw it, in the zoomed view
    before = page.evaluate("() => window.sketchApp.main.strokes.length")
    draw(page, "#pad-together", [(0.5, 0.5), (0.55, 0.5)])
    assert page.evaluate("() => window.sketchApp.main.strokes.length") == before + 1
    page.click("#together-clear")
    assert float(attr(page, "#pad-together", "data-zoom")) == 1.0


# ----------------------------------------------------------------------------- Many endings


def test_many_endings_the_strip_and_adopting_one(page):
    pick_model(page, "vae")
    page.click("#tabs [data-mode=endings]")
    page.fill("#endings-n", "4")
    draw(page, "#pad-endings", STROKE)
    page.wait_for_selector("#endings-grid[data-kind=endings] .cell >> nth=3")
    assert page.locator("#endings-grid .cell").count() == 4
    page.click("#endings-strip")
    page.wait_for_selector("#endings-grid[data-kind=strip]")
    cells = page.locator("#endings-grid .cell")
    assert cells.count() == 5
    assert [cells.nth(i).locator("figcaption span").first.text_content() for i in range(5)] == [
        "τ 0.1", "τ 0.3", "τ 0.5", "τ 0.8", "τ 1.1",
    ]  # fmt: skip
    before = int(attr(page, "#pad-endings", "data-strokes"))
    cells.nth(1).click()
    assert page.locator("#endings-grid .cell").count() == 0
    after = int(attr(page, "#pad-endings", "data-strokes"))
    assert after > before
    page.click("#tabs [data-mode=together]")
    assert int(attr(page, "#pad-together", "data-strokes")) == after


def test_empty_endings_say_why_and_draw_on(page):
    pick_model(page, "ender")
    page.click("#tabs [data-mode=endings]")
    page.fill("#endings-n", "3")
    draw(page, "#pad-endings", STROKE)
    page.wait_for_selector("#offer:not([hidden])")
    assert "finished" in page.locator("#status").text_content()
    notes = page.locator("#endings-grid .cell-note")
    assert notes.count() == 3 and "finished" in notes.first.text_content()
    # Another mode: the offer was about the endings, it goes (and comes back with them).
    page.click("#tabs [data-mode=mimic]")
    assert page.locator("#offer").is_hidden()
    assert page.locator("#status").text_content() == ""
    page.click("#tabs [data-mode=endings]")
    page.click("#endings-go")
    page.wait_for_selector("#offer:not([hidden])")
    page.click("#offer-go")  # draw on anyway: the end is not allowed before one stroke
    page.wait_for_selector("#endings-grid .cell:not(.noted) >> nth=2")
    assert page.locator("#endings-grid .cell-note").count() == 0
    # Draw together says it too, and draws on when asked
    page.click("#tabs [data-mode=together]")
    page.click("#together-go")
    page.wait_for_selector("#offer:not([hidden])")
    assert "thinks the drawing is finished" in page.locator("#status").text_content()
    page.click("#offer-go")
    page.wait_for_selector("#status:has-text('drew')")
    assert model_strokes(page) >= 1


# ----------------------------------------------------------------------------- Mimic, Morph


def test_mimic_with_a_second_model_and_the_strip(page):
    pick_model(page, "vae")
    page.click("#tabs [data-mode=mimic]")
    page.fill("#mimic-n", "3")
    draw(page, "#pad-mimic", BOX)
    page.select_option("#mimic-other", "classes")
    page.select_option("#mimic-other-class", "cat")
    page.click("#mimic-go")
    page.wait_for_selector("#mimic-results[data-kind=redrawings] .result-row >> nth=1")
    rows = page.locator("#mimic-results .result-row")
    assert rows.count() == 2
    assert rows.nth(0).locator(".cell").count() == 3
    assert "classes (cat)" in rows.nth(1).locator("h3").text_content()
    page.click("#mimic-strip")
    page.wait_for_selector("#mimic-results[data-kind=strip]")
    assert page.locator("#mimic-results .cell").count() == 5
    assert "five temperatures" in page.locator("#mimic-results h3").text_content()


def test_morph_the_grid_and_a_model_that_ends_at_once(page):
    pick_model(page, "vae")
    page.click("#tabs [data-mode=morph]")
    page.click(".slot[data-slot=A] .sample")
    wait_idle(page)
    draw(page, "#pad-morph-B", BOX)
    draw(page, "#pad-morph-C", LINE)
    draw(page, "#pad-morph-D", STROKE)
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

    pick_model(page, "ender")  # every drawing empty: said, never stuck
    page.click(".slot[data-slot=A] .sample")
    page.wait_for_selector("#status:has-text('ended its drawing at once')")
    wait_idle(page)
    page.click("#morph-go")
    page.wait_for_selector("#morph-results .cell-note >> nth=0")
    assert "empty" in page.locator("#status").text_content()


# ----------------------------------------------------------------------------- Imitate, teach


@pytest.mark.parametrize("name", ["embednet", "vae"])
def test_imitate_and_teach_by_example(page, name):
    pick_model(page, name)
    page.click("#tabs [data-mode=imitate]")
    if name == "embednet":
        assert "unsupported" in page.locator("#tabs [data-mode=together]").get_attribute("class")
        draw(page, "#pad-imitate", BOX)
        page.click("#imitate-go")
        page.wait_for_selector("#imitate-results .cell >> nth=3")
        assert page.locator("#imitate-results .cell").count() == 4
    else:
        assert page.locator("#imitate-go").is_disabled()
        note = page.locator("#panel-imitate > p.unsupported").text_content()
        assert "vae draws from strokes only" in note and note.count("SketchEmbedNet") == 1
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


# ----------------------------------------------------------------------------- the page


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


def test_random_picks_a_model_and_a_class(page, models):
    page.click("#random")
    wait_idle(page)
    name = page.locator("body").get_attribute("data-model")
    assert name in models
    assert "draw" in page.locator("#status").text_content()


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
    root = ET.parse(svg_path).getroot()
    paths = root.findall(".//{http://www.w3.org/2000/svg}path")
    assert len(paths) == 2 and len(paths[1].get("d").split("L")) >= 2
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


def test_a_drawing_too_long_for_the_model_is_said(page):
    pick_model(page, "vae")  # max_seq_len 60
    zigzag = [(0.05 + 0.9 * i / 80, 0.2 + 0.6 * (i % 2)) for i in range(81)]
    draw(page, "#pad-together", zigzag)
    page.wait_for_selector("#error:not([hidden])")
    text = page.locator("#error-text").text_content()
    assert "points" in text and "59" in text and "undo" in text
    page.click("#together-clear")  # not a dead page
    draw(page, "#pad-together", STROKE[:3])
    page.wait_for_selector(DONE)
    assert page.locator("#error").is_hidden()


def test_the_loading_prompt_while_a_model_arrives(browser, server):
    page = open_page(browser, server, wait=False)
    release = []

    def slow(route):
        release.append(route)

    page.route("**/step.onnx", slow)
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("#loading:not([hidden])")
    assert page.locator("#loading-prompt").text_content().startswith("Draw ")
    assert "while it arrives" in page.locator("#loading-prompt").text_content()
    draw(page, "#pad-together", STROKE)  # drawing meanwhile is fine: it waits for the model
    page.wait_for_timeout(300)
    assert model_strokes(page) == 0
    for route in release:
        route.continue_()
    page.wait_for_selector("#loading", state="hidden")
    page.wait_for_selector(DONE)
    assert model_strokes(page) >= 1
    settle(page)
    page.context.close()


def test_touch_on_a_phone(browser, server):
    page = open_page(browser, server, width=390, height=844, touch=True)
    try:
        pick_model(page, "vae")
        page.uncheck("#together-auto")
        box = page.locator("#pad-together").bounding_box()
        assert box["width"] <= 390
        scrolled = page.evaluate("() => window.scrollY")
        draw(page, "#pad-together", STROKE)  # a finger: Chromium's touch events
        draw(page, "#pad-together", LINE)
        assert page.evaluate("() => window.scrollY") == scrolled  # the pad took the touches
        assert attr(page, "#pad-together", "data-strokes") == "2"
        assert int(attr(page, "#pad-together", "data-points")) >= 5
        xs = page.evaluate("() => window.sketchApp.main.strokes[1].points.map(p => p[0])")
        assert xs == sorted(xs) and xs[-1] - xs[0] > 0.5 * box["width"]  # where the finger went
        # (a click: in this emulation the first tap after a stroke sent through the DevTools
        # protocol does not reach a button, whatever the page; the next one does)
        page.click("#together-go")
        page.wait_for_selector(DONE)
        assert model_strokes(page) >= 1
        assert attr(page, "#pad-together", "data-inside") == "true"
        page.click("#tabs [data-mode=imitate]")
        pick_model(page, "embednet")
        draw(page, "#pad-concept-1", BOX)  # below the fold: scrolled to, then drawn on
        draw(page, "#pad-concept-2", LINE)
        draw(page, "#pad-query", LINE)
        page.wait_for_selector("#teach-result[data-label]")
        settle(page)
    finally:
        page.context.close()


def test_without_the_runtime_the_page_says_what_to_run(browser, models, portable_store):
    with live_server({"vae": models["vae"]}, portable=portable_store, runtime=None) as url:
        page = open_page(browser, url)
        try:
            page.wait_for_selector("#error:not([hidden])")
            assert "sketchrnn runtime install" in page.locator("#error-text").text_content()
            assert page.drawing_requests == []
        finally:
            page.context.close()
