// Canvases: the pads people draw on (mouse, pen or touch, as pointer events), the small
// pictures of results, and the downloads (SVG, PNG, stroke-3 JSON).
//
// A pad keeps its drawing in its own coordinates (its CSS pixels when nothing is zoomed) and
// shows it through a view: when the model draws past an edge, the view zooms out so that
// every stroke stays in sight (it never zooms in by itself: your strokes keep their size
// until you clear), and what you draw next is mapped back through the same view.

import { bounds, pointCount, round2, toStroke3 } from "./sketches.js";

export const INK = "#1d1d1f";
export const GHOST = "#c4c4ca";
// The model's continuations, one colour each (the first is the page's accent).
export const ENDING_COLORS = ["#d23c2a", "#1f6fd1", "#2f9e44", "#9c36b5", "#e8590c", "#0c8599", "#c2255c", "#5c940d"];
const MIN_STEP = 1.5; // CSS pixels between recorded points (the model reads a simplified line)
const VIEW_MARGIN = 12; // CSS pixels kept free around a drawing zoomed out to fit

export function strokeColor(stroke) {
  if (stroke.ghost) return GHOST;
  if (stroke.by === "model") return ENDING_COLORS[(stroke.color || 0) % ENDING_COLORS.length];
  return INK;
}

export function renderStrokes(ctx, strokes, transform, lineWidth) {
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = lineWidth;
  // ghosts first: the alternative endings stay behind the drawing
  const ordered = [...strokes.filter((s) => s.ghost), ...strokes.filter((s) => !s.ghost)];
  for (const s of ordered) {
    if (!s.points.length) continue;
    ctx.strokeStyle = strokeColor(s);
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

/** A transform fitting strokes into a w x h box with a margin (results, downloads). */
export function fitTransform(strokes, w, h, margin = 0.08) {
  const b = bounds(strokes) || { minX: 0, minY: 0, w: 0, h: 0 };
  const side = Math.max(b.w, b.h, 1e-6);
  const scale = (Math.min(w, h) * (1 - 2 * margin)) / side;
  const ox = (w - b.w * scale) / 2 - b.minX * scale;
  const oy = (h - b.h * scale) / 2 - b.minY * scale;
  return { scale, fn: ([x, y]) => [x * scale + ox, y * scale + oy] };
}

export function sizeCanvas(canvas) {
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

/** A canvas to draw on. `drawing` ({strokes}) may be shared by several pads. */
export class Pad {
  constructor(canvas, drawing, { onStart = () => {}, onEnd = () => {} } = {}) {
    this.canvas = canvas;
    this.drawing = drawing;
    this.onStart = onStart;
    this.onEnd = onEnd;
    this.active = null; // {id, stroke}
    this.view = { scale: 1, ox: 0, oy: 0 };
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.up(e));
    canvas.addEventListener("pointercancel", (e) => this.up(e));
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    new ResizeObserver(() => this.render()).observe(canvas);
  }

  /** The drawing's surface: the pad's size in its own coordinates (the model maps it). */
  size() {
    return { width: Math.max(8, this.canvas.clientWidth), height: Math.max(8, this.canvas.clientHeight) };
  }

  point(e) {
    const r = this.canvas.getBoundingClientRect();
    const { scale, ox, oy } = this.view;
    return [round2((e.clientX - r.left - ox) / scale), round2((e.clientY - r.top - oy) / scale)];
  }

  down(e) {
    if (this.active || (e.pointerType === "mouse" && e.button !== 0)) return;
    e.preventDefault();
    try {
      this.canvas.setPointerCapture(e.pointerId);
    } catch (_) { /* synthetic events have no capture */ }
    this.onStart();
    const stroke = { points: [this.point(e)], by: "user" };
    this.drawing.strokes.push(stroke);
    this.active = { id: e.pointerId, stroke };
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
      if (Math.hypot(p[0] - lx, p[1] - ly) >= MIN_STEP / this.view.scale) pts.push(p);
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
    this.onEnd();
  }

  /** Zoom out (never in) so that every stroke is in sight; back to 1:1 when it all fits. */
  fitView() {
    if (this.active) return; // never move the paper under a pen
    const { width, height } = this.size();
    const b = bounds(this.drawing.strokes);
    if (!b) {
      this.view = { scale: 1, ox: 0, oy: 0 };
      return;
    }
    const m = VIEW_MARGIN;
    const minX = Math.min(0, b.minX - m);
    const minY = Math.min(0, b.minY - m);
    const maxX = Math.max(width, b.maxX + m);
    const maxY = Math.max(height, b.maxY + m);
    if (minX === 0 && minY === 0 && maxX === width && maxY === height) {
      this.view = { scale: 1, ox: 0, oy: 0 };
      return;
    }
    const scale = Math.min(width / (maxX - minX), height / (maxY - minY));
    this.view = {
      scale,
      ox: (width - (maxX - minX) * scale) / 2 - minX * scale,
      oy: (height - (maxY - minY) * scale) / 2 - minY * scale,
    };
  }

  render() {
    this.fitView();
    const ctx = sizeCanvas(this.canvas);
    const { width, height } = this.size();
    ctx.clearRect(0, 0, width, height);
    const { scale, ox, oy } = this.view;
    renderStrokes(ctx, this.drawing.strokes, ([x, y]) => [x * scale + ox, y * scale + oy], 3 * Math.max(scale, 0.5));
    const strokes = this.drawing.strokes.filter((s) => !s.ghost);
    this.canvas.dataset.strokes = String(strokes.length);
    this.canvas.dataset.modelStrokes = String(strokes.filter((s) => s.by === "model").length);
    this.canvas.dataset.points = String(pointCount(strokes));
    this.canvas.dataset.zoom = scale.toFixed(3);
    // For the tests: whether every stroke is drawn inside the canvas.
    const shown = bounds(this.drawing.strokes);
    const inside = !shown || (shown.minX * scale + ox >= -0.5 && shown.minY * scale + oy >= -0.5
      && shown.maxX * scale + ox <= width + 0.5 && shown.maxY * scale + oy <= height + 0.5);
    this.canvas.dataset.inside = String(inside);
  }
}

// ----------------------------------------------------------------------------- downloads

export function svgText(strokes, size = 512) {
  const { fn, scale } = fitTransform(strokes, size, size);
  const width = Math.max(1.5, 3 * Math.min(scale, 2));
  const paths = strokes
    .filter((s) => s.points.length && !s.ghost)
    .map((s) => {
      const d = s.points.map((p, i) => {
        const [x, y] = fn(p);
        return `${i ? "L" : "M"}${x.toFixed(2)} ${y.toFixed(2)}`;
      }).join(" ");
      return `  <path d="${d}" stroke="${strokeColor(s)}"/>`;
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
  renderStrokes(ctx, strokes.filter((s) => !s.ghost), fn, Math.max(1.5, 3 * Math.min(scale, 2)));
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

async function copyJson(strokes, say) {
  const text = JSON.stringify(toStroke3(strokes));
  try {
    await navigator.clipboard.writeText(text);
    say(`copied ${pointCount(strokes)} points as stroke-3 JSON`);
  } catch (_) {
    window.prompt("Copy the stroke-3 JSON:", text); // no clipboard access: show it
  }
  document.body.dataset.lastCopied = text;
}

/** SVG, PNG and JSON buttons for the strokes `getStrokes()` gives; `messages` has
 * showError(text) and setStatus(text). */
export function exportButtons(getStrokes, name, messages) {
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
      const strokes = getStrokes().filter((s) => !s.ghost);
      if (!pointCount(strokes)) return messages.showError("nothing to export yet: draw something first");
      action(strokes);
    });
    box.appendChild(b);
  };
  mk("SVG", "download as SVG", (s) => saveBlob(new Blob([svgText(s)], { type: "image/svg+xml" }), `${name()}.svg`));
  mk("PNG", "download as PNG", async (s) => saveBlob(await pngBlob(s), `${name()}.png`));
  mk("JSON", "copy as stroke-3 JSON", (s) => copyJson(s, messages.setStatus));
  return box;
}

// ----------------------------------------------------------------------------- results

/**
 * A result: a small picture with its downloads. `onPick` makes it clickable; `note` (for
 * an empty drawing) is said in the cell, with an `action` button ({label, run}) if given.
 */
export function resultCell(strokes, messages, { title = "", onPick = null, name = "sketch", note = "", action = null } = {}) {
  const cell = document.createElement("figure");
  cell.className = "cell" + (onPick ? " pickable" : "");
  const canvas = document.createElement("canvas");
  canvas.className = "thumb";
  canvas.dataset.strokes = String(strokes.length);
  canvas.dataset.points = String(pointCount(strokes));
  cell.appendChild(canvas);
  if (note) {
    cell.classList.add("noted");
    const p = document.createElement("p");
    p.className = "cell-note";
    p.textContent = note;
    if (action) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "small";
      b.textContent = action.label;
      b.addEventListener("click", (e) => {
        e.stopPropagation();
        action.run();
      });
      p.append(" ", b);
    }
    cell.appendChild(p);
  }
  const caption = document.createElement("figcaption");
  if (title) {
    const t = document.createElement("span");
    t.textContent = title;
    caption.appendChild(t);
  }
  caption.appendChild(exportButtons(() => strokes, () => name, messages));
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

/** Put `cells` in `container`, `columns` to a row (at most 4 on a phone, unless `exact`:
 * the four-corner grid keeps its shape). */
export function fill(container, cells, columns = null, { exact = false } = {}) {
  container.replaceChildren(...cells);
  const narrow = window.matchMedia("(max-width: 600px)").matches;
  if (columns && narrow && !exact) columns = Math.min(columns, 4);
  if (columns) container.style.setProperty("--columns", String(columns));
  else container.style.removeProperty("--columns");
}

export function resultRow(title, cells, columns = null, options = {}) {
  const box = document.createElement("div");
  box.className = "result-row";
  const h = document.createElement("h3");
  h.textContent = title;
  const grid = document.createElement("div");
  grid.className = "grid";
  fill(grid, cells, columns, options);
  box.append(h, grid);
  return box;
}
