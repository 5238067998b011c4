// sketchrnn: draw together. Plain JavaScript, no build step, nothing loaded from elsewhere.
//
// A drawing is a list of strokes {points: [[x, y], ...], by: "user" | "model"} in the CSS
// pixels of the canvas it was drawn on. The API speaks stroke-3 ([dx, dy, pen] rows, pen = 1
// when the pen lifts after the point) in those same pixels, with the canvas size sent along
// so the server can bring the drawing to the model's own size (docs/web-api.md).
"use strict";

(() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

  const COLORS = { user: "#1d1d1f", model: "#d23c2a", ghost: "#b9b9bf" };
  const MIN_STEP = 1.5; // CSS pixels between recorded points (the server simplifies further)

  const state = {
    models: [],
    byName: {},
    model: null, // the selected model's info (GET /api/models)
    mode: "together",
    limits: {},
  };

  // ------------------------------------------------------------------------- sketches

  function toStroke3(strokes) {
    const rows = [];
    let px = 0;
    let py = 0;
    for (const stroke of strokes) {
      stroke.points.forEach(([x, y], i) => {
        rows.push([round2(x - px), round2(y - py), i === stroke.points.length - 1 ? 1 : 0]);
        px = x;
        py = y;
      });
    }
    return rows;
  }

  function fromStroke3(rows, start = [0, 0], by = "model") {
    const strokes = [];
    let [x, y] = start;
    let points = [];
    for (const [dx, dy, pen] of rows) {
      x += dx;
      y += dy;
      points.push([x, y]);
      if (pen > 0.5) {
        strokes.push({ points, by });
        points = [];
      }
    }
    if (points.length) strokes.push({ points, by });
    return strokes;
  }

  const round2 = (v) => Math.round(v * 100) / 100;
  const pointCount = (strokes) => strokes.reduce((n, s) => n + s.points.length, 0);

  function lastPoint(strokes) {
    for (let i = strokes.length - 1; i >= 0; i--) {
      const pts = strokes[i].points;
      if (pts.length) return pts[pts.length - 1];
    }
    return [0, 0];
  }

  function bounds(strokes) {
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (const s of strokes) {
      for (const [x, y] of s.points) {
        if (x < minX) minX = x;
        if (y < minY) minY = y;
        if (x > maxX) maxX = x;
        if (y > maxY) maxY = y;
      }
    }
    if (!isFinite(minX)) return null;
    return { minX, minY, maxX, maxY, w: maxX - minX, h: maxY - minY };
  }

  function translate(strokes, dx, dy) {
    return strokes.map((s) => ({ by: s.by, points: s.points.map(([x, y]) => [x + dx, y + dy]) }));
  }

  // A sketch drawn by the model from scratch, centred on a surface of the given size.
  function centred(rows, size) {
    const strokes = fromStroke3(rows, [0, 0], "model");
    const b = bounds(strokes);
    if (!b) return strokes;
    return translate(strokes, size.width / 2 - (b.minX + b.w / 2), size.height / 2 - (b.minY + b.h / 2));
  }

  // ------------------------------------------------------------------------- drawing on canvases

  function renderStrokes(ctx, strokes, transform, lineWidth, colors = COLORS) {
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = lineWidth;
    for (const s of strokes) {
      if (!s.points.length) continue;
      ctx.strokeStyle = colors[s.by] || colors.user;
      ctx.beginPath();
      const [x0, y0] = transform(s.points[0]);
      ctx.moveTo(x0, y0);
      if (s.points.length === 1) ctx.lineTo(x0 + 0.01, y0);
      for (let i = 1; i < s.points.length; i++) {
        const [x, y] = transform(s.points[i]);
        ctx.lineTo(x, y);
      }
      ctx.stroke();
    }
  }

  // A transform fitting strokes into a w x h box with a margin (for results and exports).
  function fitTransform(strokes, w, h, margin = 0.08) {
    const b = bounds(strokes) || { minX: 0, minY: 0, w: 0, h: 0 };
    const side = Math.max(b.w, b.h, 1e-6);
    const scale = Math.min(w, h) * (1 - 2 * margin) / side;
    const ox = (w - b.w * scale) / 2 - b.minX * scale;
    const oy = (h - b.h * scale) / 2 - b.minY * scale;
    return { scale, fn: ([x, y]) => [x * scale + ox, y * scale + oy] };
  }

  function sizeCanvas(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
    const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }

  // A canvas to draw on with mouse, pen or touch (pointer events). `drawing` is shared:
  // several pads may show the same drawing.
  class Pad {
    constructor(canvas, drawing, { onStart = () => {}, onEnd = () => {}, onChange = () => {} } = {}) {
      this.canvas = canvas;
      this.drawing = drawing;
      this.onStart = onStart;
      this.onEnd = onEnd;
      this.onChange = onChange;
      this.active = null; // {id, stroke}
      canvas.addEventListener("pointerdown", (e) => this.down(e));
      canvas.addEventListener("pointermove", (e) => this.move(e));
      canvas.addEventListener("pointerup", (e) => this.up(e));
      canvas.addEventListener("pointercancel", (e) => this.up(e));
      canvas.addEventListener("contextmenu", (e) => e.preventDefault());
      new ResizeObserver(() => this.render()).observe(canvas);
    }

    size() {
      return { width: Math.max(8, this.canvas.clientWidth), height: Math.max(8, this.canvas.clientHeight) };
    }

    point(e) {
      const r = this.canvas.getBoundingClientRect();
      return [round2(e.clientX - r.left), round2(e.clientY - r.top)];
    }

    down(e) {
      if (this.active || (e.pointerType === "mouse" && e.button !== 0)) return;
      e.preventDefault();
      try {
        this.canvas.setPointerCapture(e.pointerId);
      } catch (_) { /* synthetic events have no capture */ }
      const stroke = { points: [this.point(e)], by: "user" };
      this.drawing.strokes.push(stroke);
      this.active = { id: e.pointerId, stroke };
      this.onStart();
      this.render();
    }

    move(e) {
      if (!this.active || e.pointerId !== this.active.id) return;
      e.preventDefault();
      const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
      const pts = this.active.stroke.points;
      for (const ev of events.length ? events : [e]) {
        const p = this.point(ev);
        const [lx, ly] = pts[pts.length - 1];
        if (Math.hypot(p[0] - lx, p[1] - ly) >= MIN_STEP) pts.push(p);
      }
      this.render();
    }

    up(e) {
      if (!this.active || e.pointerId !== this.active.id) return;
      const pts = this.active.stroke.points;
      const p = this.point(e);
      const [lx, ly] = pts[pts.length - 1];
      if (Math.hypot(p[0] - lx, p[1] - ly) >= 0.5) pts.push(p);
      if (pts.length === 1) pts.push([pts[0][0], pts[0][1]]); // a dot: its point twice
      this.active = null;
      this.render();
      this.onChange();
      this.onEnd();
    }

    render() {
      const ctx = sizeCanvas(this.canvas);
      const { width, height } = this.size();
      ctx.clearRect(0, 0, width, height);
      renderStrokes(ctx, this.drawing.strokes, (p) => p, 3);
      const strokes = this.drawing.strokes;
      this.canvas.dataset.strokes = String(strokes.length);
      this.canvas.dataset.modelStrokes = String(strokes.filter((s) => s.by === "model").length);
      this.canvas.dataset.points = String(pointCount(strokes));
    }
  }

  // ------------------------------------------------------------------------- exports

  function svgText(strokes, size = 512) {
    const { fn, scale } = fitTransform(strokes, size, size);
    const width = Math.max(1.5, 3 * Math.min(scale, 2));
    const paths = strokes
      .filter((s) => s.points.length)
      .map((s) => {
        const d = s.points.map((p, i) => {
          const [x, y] = fn(p);
          return `${i ? "L" : "M"}${x.toFixed(2)} ${y.toFixed(2)}`;
        }).join(" ");
        return `  <path d="${d}" stroke="${COLORS[s.by] || COLORS.user}"/>`;
      });
    return [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}">`,
      `  <rect width="${size}" height="${size}" fill="#ffffff"/>`,
      `  <g fill="none" stroke-width="${width.toFixed(2)}" stroke-linecap="round" stroke-linejoin="round">`,
      ...paths,
      "  </g>",
      "</svg>",
      "",
    ].join("\n");
  }

  function pngBlob(strokes, size = 512) {
    const canvas = document.createElement("canvas");
    canvas.width = size;
    canvas.height = size;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, size, size);
    const { fn, scale } = fitTransform(strokes, size, size);
    renderStrokes(ctx, strokes, fn, Math.max(1.5, 3 * Math.min(scale, 2)));
    return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  }

  function saveBlob(blob, filename) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = filename;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 30000);
  }

  async function copyJson(strokes) {
    const text = JSON.stringify(toStroke3(strokes));
    try {
      await navigator.clipboard.writeText(text);
      setStatus(`copied ${pointCount(strokes)} points as stroke-3 JSON`);
    } catch (_) {
      window.prompt("Copy the stroke-3 JSON:", text); // no clipboard access: show it
    }
    document.body.dataset.lastCopied = text;
  }

  function exportButtons(getStrokes, name) {
    const box = document.createElement("span");
    box.className = "export-buttons";
    const mk = (label, title, action) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "small";
      b.textContent = label;
      b.title = title;
      b.addEventListener("click", (e) => {
        e.stopPropagation();
        const strokes = getStrokes();
        if (!pointCount(strokes)) return showError("nothing to export yet: draw something first");
        action(strokes);
      });
      box.appendChild(b);
    };
    mk("SVG", "download as SVG", (s) => saveBlob(new Blob([svgText(s)], { type: "image/svg+xml" }), `${name()}.svg`));
    mk("PNG", "download as PNG", async (s) => saveBlob(await pngBlob(s), `${name()}.png`));
    mk("JSON", "copy as stroke-3 JSON", (s) => copyJson(s));
    return box;
  }

  // A result: a small picture with its export buttons; `onPick` makes it clickable.
  function resultCell(strokes, { title = "", onPick = null, name = "sketch" } = {}) {
    const cell = document.createElement("figure");
    cell.className = "cell" + (onPick ? " pickable" : "");
    const canvas = document.createElement("canvas");
    canvas.className = "thumb";
    canvas.dataset.strokes = String(strokes.length);
    canvas.dataset.points = String(pointCount(strokes));
    cell.appendChild(canvas);
    const caption = document.createElement("figcaption");
    if (title) {
      const t = document.createElement("span");
      t.textContent = title;
      caption.appendChild(t);
    }
    caption.appendChild(exportButtons(() => strokes, () => name));
    cell.appendChild(caption);
    if (onPick) {
      cell.tabIndex = 0;
      cell.title = "click to adopt this one";
      cell.addEventListener("click", () => onPick(strokes));
      cell.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") onPick(strokes);
      });
    }
    requestAnimationFrame(() => {
      const ctx = sizeCanvas(canvas);
      const w = canvas.clientWidth;
      const h = canvas.clientHeight;
      ctx.clearRect(0, 0, w, h);
      const { fn, scale } = fitTransform(strokes, w, h);
      renderStrokes(ctx, strokes, fn, Math.max(1, 2.5 * Math.min(scale, 1.5)));
    });
    return cell;
  }

  function fill(container, cells, columns = null) {
    container.replaceChildren(...cells);
    if (columns) container.style.setProperty("--columns", String(columns));
    else container.style.removeProperty("--columns");
  }

  function resultRow(title, cells, columns = null) {
    const box = document.createElement("div");
    box.className = "result-row";
    const h = document.createElement("h3");
    h.textContent = title;
    const grid = document.createElement("div");
    grid.className = "grid";
    fill(grid, cells, columns);
    box.append(h, grid);
    return box;
  }

  // ------------------------------------------------------------------------- server

  class ApiError extends Error {
    constructor(message, code, status) {
      super(message);
      this.code = code;
      this.status = status;
    }
  }

  async function answerError(res) {
    let data = null;
    try {
      data = await res.json();
    } catch (_) { /* not JSON */ }
    const err = data && data.error;
    return new ApiError(err ? err.message : `the server answered ${res.status}`, err && err.code, res.status);
  }

  async function post(path, body, signal) {
    let res;
    try {
      res = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        signal,
      });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiError("cannot reach the server (is sketchrnn serve still running?)", "offline", 0);
    }
    if (!res.ok) throw await answerError(res);
    return res.json();
  }

  // POST to the streaming endpoint; onEvent(name, data) for each server-sent event.
  async function postStream(path, body, signal, onEvent) {
    let res;
    try {
      res = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify(body),
        signal,
      });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiError("cannot reach the server (is sketchrnn serve still running?)", "offline", 0);
    }
    if (!res.ok) throw await answerError(res);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trim());
        }
        if (data.length) onEvent(event, JSON.parse(data.join("\n")));
      }
    }
  }

  // The fields every drawing request carries: model, temperature, class.
  function common(model = state.model, label = selectedLabel()) {
    const body = { model: model.name, temperature: Number($("#temperature").value) };
    if (model.class_conditional) body.label = label ?? model.classes[0];
    return body;
  }

  function selectedLabel() {
    return state.model && state.model.class_conditional ? $("#class").value : undefined;
  }

  // ------------------------------------------------------------------------- messages

  let errorTimer = null;

  function showError(message) {
    $("#error-text").textContent = message;
    $("#error").hidden = false;
    document.body.dataset.error = message;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(hideError, 15000);
  }

  function hideError() {
    $("#error").hidden = true;
    delete document.body.dataset.error;
  }

  function setStatus(text) {
    $("#status").textContent = text;
  }

  let busyCount = 0;
  function setBusy(on) {
    busyCount = Math.max(0, busyCount + (on ? 1 : -1));
    document.body.dataset.busy = busyCount > 0 ? "true" : "false";
  }

  // Run an API call with the busy flag, showing its error; returns undefined on failure.
  async function run(what, fn) {
    setBusy(true);
    setStatus(what + "…");
    try {
      const out = await fn();
      hideError();
      return out;
    } catch (e) {
      if (e.name !== "AbortError") showError(e.message);
      return undefined;
    } finally {
      setBusy(false);
    }
  }

  function can(capability, model = state.model) {
    return Boolean(model && model.capabilities[capability]);
  }

  // ------------------------------------------------------------------------- Draw together

  const main = { strokes: [] }; // shared by Draw together and Many endings
  let stream = null; // the AbortController of the continuation being streamed

  function interrupt() {
    if (stream) {
      stream.abort();
      stream = null;
      document.body.dataset.streaming = "false";
    }
  }

  function renderMain() {
    padTogether.render();
    padEndings.render();
  }

  async function continueTogether() {
    interrupt();
    if (!can("complete")) return;
    const pad = padTogether;
    if (!main.strokes.length) {
      const data = await run("the model is drawing", () =>
        post("/api/sample", { ...common(), n: 1, canvas: pad.size() }));
      if (data) {
        main.strokes.push(...centred(data.sketches[0], pad.size()));
        renderMain();
        setStatus(`${state.model.name} drew a ${state.model.class_conditional ? selectedLabel() : "sketch"}`);
      }
      return;
    }
    const controller = new AbortController();
    stream = controller;
    document.body.dataset.streaming = "true";
    const body = { ...common(), sketch: toStroke3(main.strokes), canvas: pad.size() };
    setBusy(true);
    setStatus(`${state.model.name} is drawing…`);
    const t0 = performance.now();
    let added = 0;
    try {
      await postStream("/api/complete/stream", body, controller.signal, (event, data) => {
        if (stream !== controller) return;
        if (event === "stroke") {
          main.strokes.push(...fromStroke3(data.stroke, lastPoint(main.strokes), "model"));
          added += 1;
          if (added === 1) document.body.dataset.firstStrokeMs = String(Math.round(performance.now() - t0));
          renderMain();
        } else if (event === "done") {
          setStatus(data.strokes
            ? `${state.model.name} drew ${data.strokes} stroke${data.strokes === 1 ? "" : "s"}`
            : `${state.model.name} thinks the drawing is finished: add to it, or undo`);
        } else if (event === "error") {
          showError(data.error.message);
        }
      });
      if (stream === controller) hideError();
    } catch (e) {
      if (e.name !== "AbortError") showError(e.message);
      else setStatus("interrupted: go on drawing");
    } finally {
      if (stream === controller) {
        stream = null;
        document.body.dataset.streaming = "false";
      }
      setBusy(false);
    }
  }

  function undoMain() {
    interrupt();
    const s = main.strokes;
    if (!s.length) return;
    if (s[s.length - 1].by === "model") {
      while (s.length && s[s.length - 1].by === "model") s.pop(); // the model's last answer
    } else {
      s.pop();
    }
    renderMain();
  }

  function clearMain() {
    interrupt();
    main.strokes.length = 0;
    renderMain();
    $("#endings-grid").replaceChildren();
  }

  // ------------------------------------------------------------------------- Many endings

  let endingsToken = 0;

  async function manyEndings() {
    interrupt();
    if (!can("complete")) return;
    if (!main.strokes.length) return showError("draw the start of something first");
    const n = clampInt($("#endings-n"), 1, state.limits.max_n || 64);
    const token = ++endingsToken;
    const prefix = main.strokes.map((s) => ({ points: s.points, by: s.by }));
    const body = { ...common(), sketch: toStroke3(prefix), n, canvas: padEndings.size() };
    const data = await run(`${n} endings`, () => post("/api/complete", body));
    if (!data || token !== endingsToken) return;
    const start = lastPoint(prefix);
    const cells = data.endings.map((rows, i) => {
      const ending = fromStroke3(rows, start, "model");
      const whole = [...prefix.map((s) => ({ points: s.points, by: "user" })), ...ending];
      return resultCell(whole, {
        title: `#${i + 1}`,
        name: `ending-${i + 1}`,
        onPick: () => {
          main.strokes.push(...ending.map((s) => ({ points: s.points, by: "model" })));
          renderMain();
          $("#endings-grid").replaceChildren();
          setStatus(`adopted ending #${i + 1}: go on drawing`);
        },
      });
    });
    fill($("#endings-grid"), cells, Math.ceil(Math.sqrt(cells.length)));
    setStatus(`${data.endings.length} endings: click one to adopt it`);
  }

  // ------------------------------------------------------------------------- Mimic

  const mimic = { strokes: [] };

  async function runMimic() {
    if (!can("reconstruct")) return;
    if (!mimic.strokes.length) return showError("draw a whole sketch first");
    const n = clampInt($("#mimic-n"), 1, state.limits.max_n || 64);
    const sketch = toStroke3(mimic.strokes);
    const canvas = padMimic.size();
    const rows = [];
    const models = [state.model];
    const other = state.byName[$("#mimic-other").value];
    if (other && other.name !== state.model.name) models.push(other);
    const out = await run("redrawing", () => Promise.all(models.map((m, k) => {
      const label = k === 0 ? selectedLabel() : $("#mimic-other-class").value;
      return post("/api/reconstruct", { ...common(m, label), sketch, n, canvas });
    })));
    if (!out) return;
    out.forEach((data, k) => {
      const m = models[k];
      const label = k === 0 ? selectedLabel() : $("#mimic-other-class").value;
      const cells = data.sketches.map((r, i) => resultCell(fromStroke3(r), { name: `${m.name}-mimic-${i + 1}` }));
      rows.push(resultRow(`${m.name}${m.class_conditional ? ` (${label})` : ""}`, cells, Math.min(cells.length, 4)));
    });
    $("#mimic-results").replaceChildren(...rows);
    setStatus("the model's redrawings");
  }

  // ------------------------------------------------------------------------- Morph

  const slots = {};

  async function sampleSlot(name) {
    const slot = slots[name];
    const data = await run("sampling", () => post("/api/sample", { ...common(), n: 1, canvas: slot.pad.size() }));
    if (!data) return;
    slot.drawing.strokes = centred(data.sketches[0], slot.pad.size());
    slot.pad.drawing = slot.drawing;
    slot.pad.render();
  }

  function slotSketch(name) {
    const s = slots[name].drawing.strokes;
    return s.length ? toStroke3(s) : null;
  }

  async function runMorph() {
    if (!can("interpolate")) return;
    const a = slotSketch("A");
    const b = slotSketch("B");
    if (!a || !b) return showError("draw (or sample) both A and B first");
    const steps = clampInt($("#morph-steps"), 2, state.limits.max_n || 64);
    const data = await run("morphing", () =>
      post("/api/interpolate", { ...common(), a, b, steps, canvas: slots.A.pad.size() }));
    if (!data) return;
    const cells = data.sketches.map((r, i) => resultCell(fromStroke3(r), { title: `${i + 1}`, name: `morph-${i + 1}` }));
    $("#morph-results").replaceChildren(resultRow(`A → B in ${steps} steps`, cells, Math.min(steps, 8)));
    setStatus("the latent path from A to B");
  }

  async function runGrid() {
    if (!can("interpolate")) return;
    const corners = ["A", "B", "C", "D"].map(slotSketch);
    if (corners.some((c) => !c)) return showError("draw (or sample) all four of A, B, C and D first");
    const size = clampInt($("#grid-size"), 2, state.limits.max_grid_size || 8);
    const data = await run("the four-corner grid", () =>
      post("/api/grid", { ...common(), corners, size, canvas: slots.A.pad.size() }));
    if (!data) return;
    const cells = data.sketches.map((r, i) => resultCell(fromStroke3(r), { name: `grid-${i + 1}` }));
    $("#morph-results").replaceChildren(resultRow(`four-corner grid, ${size} x ${size}`, cells, size));
    setStatus("A and B on top, C and D below");
  }

  // ------------------------------------------------------------------------- Imitate, teach

  const imitateDrawing = { strokes: [] };
  const query = { strokes: [] };
  const concepts = [];

  async function runImitate() {
    if (!can("imitate")) return;
    if (!imitateDrawing.strokes.length) return showError("draw something first");
    const n = clampInt($("#imitate-n"), 1, state.limits.max_n || 64);
    const body = { model: state.model.name, temperature: Number($("#temperature").value), n, sketch: toStroke3(imitateDrawing.strokes) };
    const data = await run("imitating", () => post("/api/imitate", body));
    if (!data) return;
    const cells = data.sketches.map((r, i) => resultCell(fromStroke3(r), { name: `imitation-${i + 1}` }));
    fill($("#imitate-results"), cells, Math.min(cells.length, 4));
    setStatus("the model's drawings of your picture");
  }

  function addConcept() {
    if (concepts.length >= 5) return;
    const index = concepts.length + 1;
    const box = document.createElement("div");
    box.className = "concept";
    const name = document.createElement("input");
    name.type = "text";
    name.value = `thing ${index}`;
    name.setAttribute("aria-label", `name of concept ${index}`);
    const canvas = document.createElement("canvas");
    canvas.className = "pad small";
    canvas.setAttribute("aria-label", `example of concept ${index}`);
    canvas.id = `pad-concept-${index}`;
    const clear = document.createElement("button");
    clear.textContent = "Clear";
    const drawing = { strokes: [] };
    box.append(name, canvas, clear);
    $("#concepts").appendChild(box);
    const pad = new Pad(canvas, drawing);
    clear.addEventListener("click", () => {
      drawing.strokes.length = 0;
      pad.render();
    });
    concepts.push({ name, drawing, pad, box });
  }

  function removeConcept() {
    if (concepts.length <= 2) return;
    concepts.pop().box.remove();
  }

  let classifyToken = 0;

  async function runClassify() {
    if (!can("classify")) return;
    const taught = concepts.filter((c) => c.drawing.strokes.length);
    if (taught.length < 2) return showError("draw an example of at least two concepts first");
    if (!query.strokes.length) return showError("draw a query to classify");
    const names = taught.map((c) => c.name.value.trim() || "?");
    if (new Set(names).size !== names.length) return showError("give each concept its own name");
    const token = ++classifyToken;
    const body = {
      model: state.model.name,
      concepts: taught.map((c, i) => ({ name: names[i], examples: [toStroke3(c.drawing.strokes)] })),
      query: toStroke3(query.strokes),
      canvas: padQuery.size(),
    };
    const data = await run("classifying", () => post("/api/classify", body));
    if (!data || token !== classifyToken) return;
    const p = data.predictions[0];
    const out = $("#teach-result");
    out.replaceChildren();
    const line = document.createElement("p");
    line.className = "verdict";
    line.append("It looks like ");
    const b = document.createElement("strong");
    b.textContent = p.label;
    line.append(b, ` (${Math.round(p.probability * 100)}% sure)`);
    out.appendChild(line);
    for (const [label, prob] of Object.entries(p.probabilities).sort((x, y) => y[1] - x[1])) {
      const row = document.createElement("div");
      row.className = "bar-row";
      const name = document.createElement("span");
      name.textContent = label;
      const bar = document.createElement("span");
      bar.className = "bar";
      const inner = document.createElement("span");
      inner.style.width = `${Math.round(prob * 100)}%`;
      bar.appendChild(inner);
      const pct = document.createElement("span");
      pct.textContent = `${Math.round(prob * 100)}%`;
      row.append(name, bar, pct);
      out.appendChild(row);
    }
    out.dataset.label = p.label;
    setStatus(`classified as ${p.label}`);
  }

  // ------------------------------------------------------------------------- models, tabs

  function clampInt(input, lo, hi) {
    const v = Math.min(hi, Math.max(lo, Math.round(Number(input.value) || lo)));
    input.value = String(v);
    return v;
  }

  const MODE_NEEDS = {
    together: ["complete", "Draw together needs a model that draws strokes"],
    endings: ["complete", "Many endings needs a model that draws strokes"],
    mimic: ["reconstruct", "Mimic needs a VAE (a model with an encoder)"],
    morph: ["interpolate", "Morph needs a VAE (a model with a latent space)"],
    imitate: ["imitate", "Imitate needs a SketchEmbedNet model"],
  };

  function describeModel(m) {
    const modes = Object.entries(MODE_NEEDS).filter(([, [c]]) => m.capabilities[c]).map(([k]) => $(`#tabs [data-mode="${k}"]`).textContent);
    return `${m.kind}${m.max_seq_len ? `, up to ${m.max_seq_len} points` : ""}. Modes: ${modes.join(", ") || "none"}.`;
  }

  function applyModel() {
    const m = state.model;
    $("#model-kind").textContent = describeModel(m);
    const classLabel = $("#class-label");
    classLabel.hidden = !m.class_conditional;
    if (m.class_conditional) {
      const keep = $("#class").value;
      $("#class").replaceChildren(...m.classes.map((c) => new Option(c, c)));
      if (m.classes.includes(keep)) $("#class").value = keep;
    }
    for (const tab of $$("#tabs [role=tab]")) {
      const [capability, why] = MODE_NEEDS[tab.dataset.mode];
      const ok = can(capability);
      tab.classList.toggle("unsupported", !ok);
      tab.dataset.unsupported = ok ? "false" : "true"; // still clickable: its panel says why
      tab.title = ok ? "" : `${why}; ${m.name}: ${m.reasons[capability] || "not available"}`;
    }
    for (const panel of $$(".panel")) {
      const [capability, why] = MODE_NEEDS[panel.dataset.mode];
      const ok = can(capability);
      const note = $(".unsupported", panel);
      note.hidden = ok;
      note.textContent = ok ? "" : `${why}: ${m.name} ${(m.reasons[capability] || "cannot").replace(/^this model /, "")}. Pick another model above.`;
      panel.classList.toggle("disabled", !ok);
      for (const b of $$(".needs", panel)) b.disabled = !ok;
    }
    for (const b of $$(".needs-classify")) b.disabled = !can("classify");
    const others = state.models.filter((o) => o.capabilities.reconstruct && o.name !== m.name);
    const otherSelect = $("#mimic-other");
    const keep = otherSelect.value;
    otherSelect.replaceChildren(new Option("(none)", ""), ...others.map((o) => new Option(o.name, o.name)));
    if (others.some((o) => o.name === keep)) otherSelect.value = keep;
    applyOtherClass();
    document.body.dataset.model = m.name;
  }

  function applyOtherClass() {
    const other = state.byName[$("#mimic-other").value];
    const select = $("#mimic-other-class");
    select.hidden = !(other && other.class_conditional);
    if (other && other.class_conditional) select.replaceChildren(...other.classes.map((c) => new Option(c, c)));
  }

  function setMode(mode) {
    interrupt();
    state.mode = mode;
    for (const tab of $$("#tabs [role=tab]")) tab.setAttribute("aria-selected", String(tab.dataset.mode === mode));
    for (const panel of $$(".panel")) panel.hidden = panel.dataset.mode !== mode;
    document.body.dataset.mode = mode;
    requestAnimationFrame(() => {
      renderMain();
      padMimic.render();
      padImitate.render();
      padQuery.render();
      Object.values(slots).forEach((s) => s.pad.render());
      concepts.forEach((c) => c.pad.render());
    });
  }

  async function loadModels() {
    let data;
    try {
      const res = await fetch("/api/models");
      if (!res.ok) throw await answerError(res);
      data = await res.json();
    } catch (e) {
      return showError(`cannot list the models: ${e.message}`);
    }
    state.models = data.models;
    state.limits = data.limits || {};
    state.byName = Object.fromEntries(data.models.map((m) => [m.name, m]));
    const select = $("#model");
    select.replaceChildren(...data.models.map((m) => new Option(`${m.name} (${m.kind})`, m.name)));
    const wanted = new URLSearchParams(location.search).get("model");
    state.model = state.byName[wanted] || data.models.find((m) => m.capabilities.complete) || data.models[0];
    select.value = state.model.name;
    applyModel();
    const firstMode = new URLSearchParams(location.search).get("mode");
    if (firstMode && MODE_NEEDS[firstMode]) setMode(firstMode);
    document.body.dataset.ready = "true";
  }

  // ------------------------------------------------------------------------- wiring

  const padTogether = new Pad($("#pad-together"), main, {
    onStart: interrupt,
    onEnd: () => {
      if ($("#together-auto").checked) continueTogether();
    },
  });
  const padEndings = new Pad($("#pad-endings"), main, {
    onStart: () => padTogether.render(),
    onEnd: () => {
      padTogether.render();
      if ($("#endings-auto").checked) manyEndings();
    },
  });
  const padMimic = new Pad($("#pad-mimic"), mimic);
  const padImitate = new Pad($("#pad-imitate"), imitateDrawing);
  const padQuery = new Pad($("#pad-query"), query, {
    onEnd: () => {
      if ($("#classify-auto").checked) runClassify();
    },
  });
  for (const slot of $$(".slot")) {
    const name = slot.dataset.slot;
    const drawing = { strokes: [] };
    const pad = new Pad($("canvas", slot), drawing);
    slots[name] = { drawing, pad };
    $(".sample", slot).addEventListener("click", () => sampleSlot(name));
    $(".clear", slot).addEventListener("click", () => {
      slots[name].drawing.strokes = [];
      pad.drawing = slots[name].drawing;
      pad.render();
    });
  }
  addConcept();
  addConcept();

  for (const span of $$(".exports")) {
    const of = span.dataset.of;
    const drawings = { main, mimic, imitate: imitateDrawing };
    span.appendChild(exportButtons(() => drawings[of].strokes, () => `${of === "main" ? "drawing" : of}`));
  }

  $("#together-go").addEventListener("click", continueTogether);
  $("#together-undo").addEventListener("click", undoMain);
  $("#together-clear").addEventListener("click", clearMain);
  $("#endings-go").addEventListener("click", manyEndings);
  $("#endings-undo").addEventListener("click", undoMain);
  $("#endings-clear").addEventListener("click", clearMain);
  $("#mimic-go").addEventListener("click", runMimic);
  // Clear a drawing, its pad and what was drawn from it.
  const clearer = (drawing, pad, results) => () => {
    drawing.strokes.length = 0;
    pad.render();
    $(results).replaceChildren();
  };
  $("#mimic-clear").addEventListener("click", clearer(mimic, padMimic, "#mimic-results"));
  $("#mimic-other").addEventListener("change", applyOtherClass);
  $("#morph-go").addEventListener("click", runMorph);
  $("#grid-go").addEventListener("click", runGrid);
  $("#imitate-go").addEventListener("click", runImitate);
  $("#imitate-clear").addEventListener("click", clearer(imitateDrawing, padImitate, "#imitate-results"));
  $("#concept-add").addEventListener("click", addConcept);
  $("#concept-remove").addEventListener("click", removeConcept);
  $("#classify-go").addEventListener("click", runClassify);
  $("#query-clear").addEventListener("click", clearer(query, padQuery, "#teach-result"));
  $("#error-close").addEventListener("click", hideError);
  $("#temperature").addEventListener("input", () => {
    $("#temperature-value").textContent = Number($("#temperature").value).toFixed(2);
  });
  $("#model").addEventListener("change", () => {
    interrupt();
    state.model = state.byName[$("#model").value];
    applyModel(); // the drawings stay: draw on with the new model
    setStatus(`now drawing with ${state.model.name}`);
  });
  $("#class").addEventListener("change", () => {
    interrupt();
    setStatus(`now drawing as ${$("#class").value}`);
  });
  for (const tab of $$("#tabs [role=tab]")) tab.addEventListener("click", () => setMode(tab.dataset.mode));
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "z" && (state.mode === "together" || state.mode === "endings")) {
      e.preventDefault();
      undoMain();
    }
  });

  // For tests and the curious: the page's state, read-only by convention.
  window.sketchApp = { state, main, mimic, slots, imitate: imitateDrawing, query, concepts, toStroke3, fromStroke3, svgText };

  setMode("together");
  loadModels();
})();
