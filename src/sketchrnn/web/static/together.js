// Draw together and Many endings: one drawing (`main`) shared by both tabs, continued by the
// model in the browser. A continuation streams point by point (sketchrnn.js's stream), in a
// colour of its own; "Retry" erases the model's last continuation and draws another from the
// same place; when the model ends the drawing, "Another ending" keeps that ending faintly and
// draws the next in a new colour (with "endless endings", on and on, as the original
// predictor demo did). An ending the model declines to draw (it takes the drawing as
// finished) is said so, with an offer to draw on anyway (the runtime's minStrokes: the end of
// the sketch is not allowed before the first stroke).

import { ENDING_COLORS, Pad, exportButtons, fill, resultCell } from "./pad.js";
import { centred, lastPoint } from "./sketches.js";

const MAX_GHOST_TURNS = 5; // alternative endings kept faintly behind the drawing
const ENDLESS_PAUSE_MS = 700; // between two endless endings: time to look at one
export const STRIP_TEMPERATURES = [0.1, 0.3, 0.5, 0.8, 1.1];

export function setupTogether(page) {
  const { $, messages } = page;
  const main = { strokes: [] };
  let current = null; // the continuation being drawn: {controller}
  let turns = 0; // each continuation's number (its strokes carry it)
  let color = 0; // the colour of the next continuation
  let endlessTimer = null;

  const real = () => main.strokes.filter((s) => !s.ghost);

  function interrupt() {
    clearTimeout(endlessTimer);
    if (current) {
      current.controller.abort();
      current = null;
      document.body.dataset.streaming = "false";
    }
  }

  function dropGhosts() {
    main.strokes = main.strokes.filter((s) => !s.ghost);
    padTogether.drawing = main;
    padEndings.drawing = main;
  }

  let renderQueued = false;
  function render() {
    padTogether.render();
    padEndings.render();
  }
  function renderSoon() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      render();
    });
  }

  function lastTurn() {
    const s = real();
    const last = s[s.length - 1];
    return last && last.by === "model" ? last.turn : null;
  }

  function updateButtons() {
    const modelLast = lastTurn() !== null;
    $("#together-retry").disabled = !page.can("complete") || !modelLast;
    $("#together-another").disabled = !page.can("complete") || !modelLast;
  }

  // ---------------------------------------------------------------------------- continuing

  /** A drawing from scratch (an empty pad and Continue), centred on the pad. */
  async function drawFromScratch() {
    const entry = page.state.entry;
    const out = await messages.run(`${entry.name} is drawing`, async () => {
      const model = await page.model();
      if (!model) return null;
      for (let attempt = 0; attempt <= page.emptyRetries(); attempt++) {
        const [rows] = await model.sample(1, { temperature: page.temperature(), label: page.label(), seed: page.newSeed() });
        if (rows.length) return rows;
      }
      return [];
    });
    if (!out) return;
    if (!out.length) {
      messages.setStatus(`${entry.name} ended each of its drawings at once (${page.emptyRetries() + 1} tries): raise the temperature, or draw a start yourself`);
      return;
    }
    const size = padTogether.size();
    const k = page.scaleFor(size);
    const turn = ++turns;
    main.strokes.push(...centred(page.fromModel(out, k, { extra: { turn, color } }), size));
    render();
    updateButtons();
    messages.setStatus(`${entry.name} drew ${page.article(page.subject())}`);
  }

  /** Continue the drawing (streamed), from everything but the alternative endings. */
  async function continueTogether({ minStrokes = 0 } = {}) {
    interrupt();
    messages.clearOffer();
    if (!page.can("complete")) return;
    if (!real().length) return drawFromScratch();
    const entry = page.state.entry;
    const me = { controller: new AbortController() };
    current = me;
    document.body.dataset.streaming = "true";
    messages.setBusy(true);
    messages.setStatus(`${entry.name} is drawing…`);
    const t0 = performance.now();
    let points = 0;
    let strokes = 0;
    let roomLeft = true;
    try {
      const model = await page.model();
      if (!model || current !== me) return;
      const size = padTogether.size();
      const input = page.toModel(real(), size, { maxPoints: model.maxLen - 1, what: "a drawing to continue has" });
      let pos = lastPoint(real());
      const turn = ++turns;
      let stroke = null;
      const rows = model.stream(input.rows, {
        temperature: page.temperature(), label: page.label(), minStrokes, seed: page.newSeed(), signal: me.controller.signal,
      });
      for await (const [dx, dy, pen] of rows) {
        if (current !== me) break;
        if (!stroke) {
          stroke = { points: [], by: "model", turn, color };
          main.strokes.push(stroke);
        }
        pos = [pos[0] + dx / input.k, pos[1] + dy / input.k];
        stroke.points.push(pos);
        points += 1;
        if (points === 1) document.body.dataset.firstStrokeMs = String(Math.round(performance.now() - t0));
        if (pen > 0.5) {
          stroke = null;
          strokes += 1;
        }
        renderSoon();
      }
      if (stroke) strokes += 1;
      roomLeft = input.rows.length + points < model.maxLen;
      if (current !== me) {
        messages.setStatus("interrupted: go on drawing");
        return;
      }
      messages.hideError();
      finished(entry, strokes, roomLeft);
    } catch (e) {
      if (e.name !== "AbortError") {
        messages.showError(e.message);
        messages.setStatus("");
      }
    } finally {
      if (current === me) {
        current = null;
        document.body.dataset.streaming = "false";
      }
      messages.setBusy(false);
      render();
      updateButtons();
    }
  }

  function finished(entry, strokes, roomLeft) {
    if (strokes === 0) {
      messages.setStatus(`${entry.name} thinks the drawing is finished (it ended it at once)`);
      messages.offer("Add to it, undo, or:", "Draw on anyway", () => continueTogether({ minStrokes: 1 }));
      return;
    }
    const drew = `${entry.name} drew ${strokes} stroke${strokes === 1 ? "" : "s"}`;
    if (!roomLeft) {
      messages.setStatus(`${drew} and ran out of room (${entry.max_seq_len} points is its longest drawing)`);
    } else {
      messages.setStatus(`${drew} and ended the drawing`);
    }
    if ($("#together-endless").checked) {
      endlessTimer = setTimeout(() => anotherEnding(), ENDLESS_PAUSE_MS);
    }
  }

  /** Erase the model's last continuation and draw another from the same place. */
  function retry() {
    interrupt();
    const turn = lastTurn();
    if (turn === null) return;
    main.strokes = main.strokes.filter((s) => s.ghost || s.turn !== turn);
    padTogether.drawing = padEndings.drawing = main;
    render();
    continueTogether();
  }

  /** Keep the last ending faintly, and draw the next one in a new colour. */
  function anotherEnding() {
    interrupt();
    const turn = lastTurn();
    if (turn === null) return;
    for (const s of main.strokes) if (s.turn === turn) s.ghost = true;
    const ghostTurns = [...new Set(main.strokes.filter((s) => s.ghost).map((s) => s.turn))];
    const drop = new Set(ghostTurns.slice(0, Math.max(0, ghostTurns.length - MAX_GHOST_TURNS)));
    main.strokes = main.strokes.filter((s) => !drop.has(s.turn));
    padTogether.drawing = padEndings.drawing = main;
    color = (color + 1) % ENDING_COLORS.length;
    render();
    continueTogether();
  }

  function undo() {
    interrupt();
    dropGhosts();
    const s = main.strokes;
    if (!s.length) return;
    if (s[s.length - 1].by === "model") {
      const turn = s[s.length - 1].turn;
      while (s.length && s[s.length - 1].by === "model" && s[s.length - 1].turn === turn) s.pop();
    } else {
      s.pop();
    }
    messages.clearOffer();
    render();
    updateButtons();
  }

  function clear() {
    interrupt();
    main.strokes = [];
    padTogether.drawing = padEndings.drawing = main;
    color = 0;
    messages.clearOffer();
    render();
    updateButtons();
    $("#endings-grid").replaceChildren();
  }

  function startStroke() {
    interrupt();
    dropGhosts();
    messages.clearOffer();
  }

  // ---------------------------------------------------------------------------- many endings

  let endingsToken = 0;

  /** `n` endings of the drawing at once; `temperatures` draws one ending per temperature. */
  async function manyEndings({ minStrokes = 0, temperatures = null } = {}) {
    interrupt();
    if (!page.can("complete")) return;
    dropGhosts();
    if (!real().length) return messages.showError("draw the start of something first");
    const entry = page.state.entry;
    const n = temperatures ? temperatures.length : page.clampInt($("#endings-n"), 1, 64);
    const token = ++endingsToken;
    const prefix = real().map((s) => ({ points: s.points, by: s.by, turn: s.turn, color: s.color }));
    const size = padEndings.size();
    const what = temperatures ? "one ending at five temperatures" : `${n} endings`;
    const out = await messages.run(what, async () => {
      const model = await page.model();
      if (!model) return null;
      const input = page.toModel(prefix, size, { maxPoints: model.maxLen - 1, what: "a drawing to continue has" });
      const seed = page.newSeed();
      let results;
      if (temperatures) {
        results = [];
        for (const tau of temperatures) {
          results.push(...(await model.complete(input.rows, 1, { temperature: tau, label: page.label(), minStrokes, seed })));
        }
      } else {
        results = await model.complete(input.rows, n, { temperature: page.temperature(), label: page.label(), minStrokes, seed });
      }
      return { input, maxLen: model.maxLen, endings: results.map((r) => r.slice(input.rows.length)) };
    });
    if (!out || token !== endingsToken) return;
    const start = lastPoint(prefix);
    const cells = out.endings.map((rows, i) => {
      const ending = page.fromModel(rows, out.input.k, { start, extra: { color: (i % (ENDING_COLORS.length - 1)) + 1 } });
      const whole = [...prefix.map((s) => ({ points: s.points, by: "user" })), ...ending];
      const title = temperatures ? `τ ${temperatures[i]}` : `#${i + 1}`;
      const empty = rows.length === 0;
      return resultCell(whole, messages, {
        title,
        name: temperatures ? `ending-t${temperatures[i]}` : `ending-${i + 1}`,
        note: empty ? "no ending: the model takes the drawing as finished" : "",
        action: empty ? { label: "draw on", run: () => manyEndings({ minStrokes: 1, temperatures }) } : null,
        onPick: empty ? null : () => adopt(ending, i),
      });
    });
    fill($("#endings-grid"), cells, temperatures ? temperatures.length : Math.ceil(Math.sqrt(cells.length)));
    $("#endings-grid").dataset.kind = temperatures ? "strip" : "endings";
    const empty = out.endings.filter((e) => e.length === 0).length;
    const used = out.input.rows.length;
    if (out.maxLen - used < Math.max(4, 0.1 * out.maxLen)) {
      messages.setStatus(`little room left: the drawing has ${used} of the ${out.maxLen} points ${entry.name} draws at most; undo or clear to give it room`);
    } else if (empty === out.endings.length) {
      messages.setStatus(`${entry.name} ended every one at once: it takes the drawing as finished`);
      messages.offer("Draw more yourself, or:", "Draw on anyway", () => manyEndings({ minStrokes: 1, temperatures }));
    } else if (empty) {
      messages.setStatus(`${out.endings.length - empty} endings (${empty} empty: the model took the drawing as finished there); click one to adopt it`);
    } else {
      messages.setStatus(temperatures ? "the same start at five temperatures: click one to adopt it" : `${out.endings.length} endings: click one to adopt it`);
    }
  }

  function adopt(ending, i) {
    const turn = ++turns;
    main.strokes.push(...ending.map((s) => ({ points: s.points, by: "model", turn, color: s.color })));
    render();
    updateButtons();
    $("#endings-grid").replaceChildren();
    messages.setStatus(`adopted ending #${i + 1}: go on drawing`);
  }

  // ---------------------------------------------------------------------------- wiring

  const padTogether = new Pad($("#pad-together"), main, {
    onStart: startStroke,
    onEnd: () => {
      padEndings.render();
      updateButtons();
      if ($("#together-auto").checked) continueTogether();
    },
  });
  const padEndings = new Pad($("#pad-endings"), main, {
    onStart: () => {
      startStroke();
      padTogether.render();
    },
    onEnd: () => {
      padTogether.render();
      updateButtons();
      if ($("#endings-auto").checked) manyEndings();
    },
  });
  for (const span of document.querySelectorAll('.exports[data-of="main"]')) {
    span.appendChild(exportButtons(() => main.strokes, () => "drawing", messages));
  }
  $("#together-go").addEventListener("click", () => continueTogether());
  $("#together-retry").addEventListener("click", retry);
  $("#together-another").addEventListener("click", anotherEnding);
  $("#together-endless").addEventListener("change", () => {
    if (!$("#together-endless").checked) clearTimeout(endlessTimer);
  });
  $("#together-undo").addEventListener("click", undo);
  $("#together-clear").addEventListener("click", clear);
  $("#endings-go").addEventListener("click", () => manyEndings());
  $("#endings-strip").addEventListener("click", () => manyEndings({ temperatures: STRIP_TEMPERATURES }));
  $("#endings-undo").addEventListener("click", undo);
  $("#endings-clear").addEventListener("click", clear);
  updateButtons();

  return {
    get main() {
      return main;
    },
    interrupt,
    undo,
    render,
    continueTogether,
  };
}
