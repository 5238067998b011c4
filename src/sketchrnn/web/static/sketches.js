// The page's drawings and how a model reads them. A drawing on the page is a list of strokes
// {points: [[x, y], ...], by: "user" | "model", ...} in the pixels of the surface it was
// drawn on (a pad's own coordinates). Models take stroke-3 rows [dx, dy, pen] in their
// pixels: canvasScale() maps a surface to the model as sketchrnn.generate.canvas_scale does
// (a fixed share of the shorter side is the model's typical drawing), and prepareDrawing()
// reads a drawing as sketchrnn.generate.prepare_drawing does (moved to the origin, simplified
// stroke by stroke like the training data). Both are checked against Python in
// tests/web/test_page_helpers.py. The constants come from the server's listing ("drawing"),
// which has them from the library: they are not restated here.

export const round2 = (v) => Math.round(v * 100) / 100;
export const pointCount = (strokes) => strokes.reduce((n, s) => n + s.points.length, 0);

/** Strokes -> stroke-3 rows (offsets to 0.01 px; the first from (0, 0)). */
export function toStroke3(strokes) {
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

/** Stroke-3 rows -> strokes starting from `start`, each scaled by `scale`. */
export function fromStroke3(rows, { start = [0, 0], by = "model", scale = 1, extra = {} } = {}) {
  const strokes = [];
  let [x, y] = start;
  let points = [];
  for (const [dx, dy, pen] of rows) {
    x += dx * scale;
    y += dy * scale;
    points.push([x, y]);
    if (pen > 0.5) {
      strokes.push({ points, by, ...extra });
      points = [];
    }
  }
  if (points.length) strokes.push({ points, by, ...extra });
  return strokes;
}

export function lastPoint(strokes) {
  for (let i = strokes.length - 1; i >= 0; i--) {
    const pts = strokes[i].points;
    if (pts.length) return pts[pts.length - 1];
  }
  return [0, 0];
}

export function bounds(strokes) {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const s of strokes) {
    for (const [x, y] of s.points) {
      if (x < minX) minX = x;
      if (y < minY) minY = y;
      if (x > maxX) maxX = x;
      if (y > maxY) maxY = y;
    }
  }
  if (!Number.isFinite(minX)) return null;
  return { minX, minY, maxX, maxY, w: maxX - minX, h: maxY - minY };
}

/** Strokes moved so that their bounding box is centred on a `size` surface. */
export function centred(strokes, size) {
  const b = bounds(strokes);
  if (!b) return strokes;
  const dx = size.width / 2 - (b.minX + b.w / 2);
  const dy = size.height / 2 - (b.minY + b.h / 2);
  return strokes.map((s) => ({ ...s, points: s.points.map(([x, y]) => [x + dx, y + dy]) }));
}

// ----------------------------------------------------------------------------- model pixels

/**
 * Model pixels per surface pixel for a drawing made on a `size` surface: `fill` of its
 * shorter side is the model's typical drawing (`typicalExtent`, model pixels), as
 * sketchrnn.generate.canvas_scale.
 */
export function canvasScale(typicalExtent, size, fill) {
  const side = Math.min(size.width, size.height);
  if (!(side > 0 && typicalExtent > 0 && fill > 0)) throw new Error(`bad surface ${size.width}x${size.height}`);
  return typicalExtent / (fill * side);
}

/**
 * A drawing (stroke-3 rows, surface pixels) as the model reads it, as
 * sketchrnn.generate.prepare_drawing: offsets times `scale`, moved to start at the origin
 * and simplified stroke by stroke (Ramer-Douglas-Peucker to the line through a run's ends,
 * epsilon `epsilonUnits` times the model's scale factor); with `maxPoints`, simplified
 * harder (epsilon times 1.5, up to `maxGrowth` times) while it is longer. Stroke-3 rows in
 * model pixels (float32 values, as numpy's).
 */
export function prepareDrawing(rows, scale, { scaleFactor, epsilonUnits, maxGrowth, maxPoints = null }) {
  const f32 = Math.fround;
  const lines = [];
  let x = 0;
  let y = 0;
  let line = [];
  for (const [dx, dy, pen] of rows) {
    x += f32(dx);
    y += f32(dy);
    line.push([x, y]);
    if (pen > 0.5) {
      lines.push(line);
      line = [];
    }
  }
  if (line.length) lines.push(line);
  if (!lines.length) return [];
  const [ox, oy] = lines[0][0];
  const moved = lines.map((l) => l.map(([px, py]) => [(px - ox) * scale, (py - oy) * scale]));
  let epsilon = epsilonUnits * scaleFactor;
  const limit = epsilon * maxGrowth;
  for (;;) {
    const out = polylinesToStroke3(moved.map((l) => rdpLineDistance(l, epsilon)));
    if (maxPoints === null || out.length <= maxPoints || epsilon * 1.5 > limit) return out;
    epsilon *= 1.5;
  }
}

/** Ramer-Douglas-Peucker with each point's distance to the infinite line through a run's
 * ends (sketchrnn.strokes.rdp_line_distance: Google's simplification of Quick, Draw!). */
export function rdpLineDistance(points, epsilon) {
  if (points.length < 3) return points.slice();
  const keep = new Uint8Array(points.length);
  keep[0] = keep[points.length - 1] = 1;
  const ranges = [[0, points.length - 1]];
  while (ranges.length) {
    const [first, last] = ranges.pop();
    if (last - first < 2) continue;
    const ex = points[last][0] - points[first][0];
    const ey = points[last][1] - points[first][1];
    const length = Math.hypot(ex, ey);
    let far = -1;
    let farDistance = -1;
    for (let i = first + 1; i < last; i++) {
      const ix = points[i][0] - points[first][0];
      const iy = points[i][1] - points[first][1];
      const d = length > 0 ? Math.abs(ix * ey - iy * ex) / length : Math.hypot(ix, iy);
      if (d > farDistance) {
        farDistance = d;
        far = i;
      }
    }
    if (farDistance > epsilon) {
      keep[far] = 1;
      ranges.push([first, far], [far, last]);
    }
  }
  return points.filter((_, i) => keep[i]);
}

/** Absolute polylines -> stroke-3 rows (first row from the origin), float32 values. */
export function polylinesToStroke3(lines) {
  const f32 = Math.fround;
  const rows = [];
  let px = 0;
  let py = 0;
  for (const l of lines) {
    l.forEach(([x, y], i) => {
      rows.push([f32(x - px), f32(y - py), i === l.length - 1 ? 1 : 0]);
      px = x;
      py = y;
    });
  }
  return rows;
}
