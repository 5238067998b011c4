/**
 * sketchrnn.js: draw with a sketchrnn model exported by `sketchrnn export MODEL OUT`, in a
 * browser (onnxruntime-web) or in Node (onnxruntime-node). One ES module, no build step.
 *
 *   import {SketchModel} from './sketchrnn.js';
 *   const model = await SketchModel.load('./cat/');          // the exported folder
 *   const [sketch] = await model.sample(1, {temperature: 0.4, seed: 1});
 *
 * It mirrors the Python library (`sketchrnn.generate`): `sample`, `decode`, `complete`,
 * `stream`, `encode`, `embed`, `interpolate`, `imitate`. Sketches go in and out as stroke-3
 * rows `[dx, dy, pen]` in the model's pixels (pen 1: the pen lifts after this point); the
 * model's units are converted here as `sketchrnn.models.units` does (offsets divided by
 * `units.scale_factor`, in float32 like numpy). Temperature is the paper's eq. 8 as in
 * `sketchrnn.nn.mixture.sample`; `temperature: 0` is greedy. `seed` makes a call
 * reproducible (its own generator, not PyTorch's: the same seed draws other sketches than
 * Python does, from the same distribution). The folder's format is docs/portable-models.md:
 * the manifest, each graph's size and SHA-256, and each graph's inputs and outputs are
 * checked on load, and a file that does not match is refused with a ModelFileError naming
 * it, never drawn with.
 *
 * One file of about 1200 lines rather than several modules under 500: a page copies one file
 * next to the runtime's two and imports it, with no bundler to join modules.
 */

export const FORMAT = 'sketchrnn-portable';
export const FORMAT_VERSION = 1;
/** stroke-5 `(0, 0, 1, 0, 0)`, the decoder's first input. */
export const START_TOKEN = Object.freeze([0, 0, 1, 0, 0]);
/** More sketches than this are drawn that many at a time (as `models.decoding.DRAW_BATCH`). */
export const DRAW_BATCH = 256;
/** The file of onnxruntime-web this module imports in a browser, next to itself. */
export const ORT_WEB_FILE = 'ort.wasm.bundle.min.mjs';

const IS_NODE = typeof process === 'object' && !!(process.versions && process.versions.node);
const f32 = Math.fround;

/** A model folder that cannot be used: the message names the file and what is wrong. */
export class ModelFileError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ModelFileError';
  }
}

/** A call the model cannot take: a bad drawing, option, latent or label. */
export class SketchError extends Error {
  constructor(message) {
    super(message);
    this.name = 'SketchError';
  }
}

// ------------------------------------------------------------------------------ random numbers

/**
 * A seedable generator: xoshiro128** (Blackman & Vigna) seeded through splitmix32. Written
 * here in a few lines because a page without a bundler cannot import an npm package.
 */
export class Random {
  constructor(seed) {
    if (seed === undefined || seed === null) {
      const words = new Uint32Array(2);
      globalThis.crypto.getRandomValues(words);
      seed = words[0] * 2 ** 21 + (words[1] >>> 11);
    }
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new SketchError(`seed must be a non-negative integer, got ${seed}`);
    }
    let x = (seed % 2 ** 32) ^ Math.floor(seed / 2 ** 32);
    const splitmix = () => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s = new Uint32Array([splitmix(), splitmix(), splitmix(), splitmix()]);
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32() {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform() {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** A standard normal draw (Box-Muller). */
  normal() {
    const u = 1 - this.uniform(); // (0, 1]: log(u) is finite
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }
}

function rotl(v, k) {
  return (v << k) | (v >>> (32 - k));
}

function generator(seed, rng) {
  if (rng !== undefined && rng !== null) {
    if (!(rng instanceof Random)) throw new SketchError('rng must be a Random');
    return rng;
  }
  return new Random(seed);
}

// ------------------------------------------------------------------------------ checks

/** `tau` as a number; SketchError unless finite and >= 0 (0 = greedy). */
export function checkTemperature(tau, name = 'temperature') {
  if (typeof tau !== 'number' || !Number.isFinite(tau) || tau < 0) {
    throw new SketchError(`${name} must be >= 0 (0 = greedy), got ${tau}`);
  }
  return tau;
}

function checkMinStrokes(k) {
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 0) {
    throw new SketchError(`minStrokes must be an integer >= 0, got ${k}`);
  }
  return k;
}

function checkCount(n, name = 'n') {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    throw new SketchError(`${name} must be a positive integer, got ${n}`);
  }
  return n;
}

/** A stroke-3 drawing as float32 rows `[dx, dy, pen]`; SketchError naming `where` if invalid. */
export function validateStroke3(s3, where = 'sketch') {
  if (!Array.isArray(s3)) throw new SketchError(`${where}: expected an array of [dx, dy, pen] rows`);
  if (s3.length === 0) throw new SketchError(`${where}: empty drawing (no points)`);
  return s3.map((row, i) => {
    if (row === null || typeof row !== 'object' || row.length !== 3) {
      throw new SketchError(`${where}: row ${i} must be [dx, dy, pen]`);
    }
    const r = [f32(row[0]), f32(row[1]), f32(row[2])];
    if (!r.every(Number.isFinite)) {
      throw new SketchError(`${where}: row ${i} holds NaN, an infinite or a non-numeric value`);
    }
    if (r[2] !== 0 && r[2] !== 1) throw new SketchError(`${where}: row ${i}: pen must be 0 or 1`);
    return r;
  });
}

// ------------------------------------------------------------------------------ units

/** Pixel stroke-3 -> the model's units (offsets / factor, float32 as numpy). */
export function toModelUnits(s3, factor) {
  const k = f32(factor);
  return s3.map((r) => [f32(f32(r[0]) / k), f32(f32(r[1]) / k), r[2]]);
}

/** Stroke-3 in the model's units -> pixels (offsets * factor, float32 as numpy). */
export function toPixels(s3, factor) {
  const k = f32(factor);
  return s3.map((r) => [f32(f32(r[0]) * k), f32(f32(r[1]) * k), r[2]]);
}

/** Stroke-3 rows -> stroke-5 rows `(dx, dy, p1, p2, p3)`, no start and no end row. */
export function stroke3ToStroke5(s3) {
  return s3.map((r) => [r[0], r[1], 1 - r[2], r[2], 0]);
}

// ------------------------------------------------------------------------------ latents

/**
 * `steps` latents from `za` to `zb` inclusive (Float64 math, as `generate.interpolate_latents`):
 * `slerp` keeps the norm typical of the Gaussian prior and falls back to linear where the
 * two vectors are (anti)parallel; `linear` is the straight line.
 */
export function interpolateLatents(za, zb, steps, method = 'slerp') {
  checkCount(steps, 'steps');
  if (method !== 'slerp' && method !== 'linear') {
    throw new SketchError(`method must be 'slerp' or 'linear', got ${JSON.stringify(method)}`);
  }
  if (za.length !== zb.length) throw new SketchError('the two latents differ in size');
  const a = Array.from(za, Number);
  const b = Array.from(zb, Number);
  let omega = 0;
  let sin = 0;
  if (method === 'slerp') {
    const dot = a.reduce((s, v, i) => s + v * b[i], 0);
    const norms = Math.max(Math.hypot(...a) * Math.hypot(...b), 1e-12);
    omega = Math.acos(Math.min(1, Math.max(-1, dot / norms)));
    sin = Math.sin(omega);
  }
  const out = [];
  for (let k = 0; k < steps; k++) {
    const t = steps === 1 ? 0 : k / (steps - 1);
    if (sin > 1e-6) {
      const wa = Math.sin((1 - t) * omega) / sin;
      const wb = Math.sin(t * omega) / sin;
      out.push(Float32Array.from(a, (v, i) => wa * v + wb * b[i]));
    } else {
      out.push(Float32Array.from(a, (v, i) => (1 - t) * v + t * b[i]));
    }
  }
  return out;
}

// ------------------------------------------------------------------------------ the mixture

/**
 * One point from step outputs `out` (arrays of the step graph, rows of width `m`) for batch
 * row `i`: `[dx, dy, p1, p2, p3]` in the model's units with a one-hot pen. Eq. 8: pi and pen
 * logits divided by `tau`, variances multiplied by it; `tau = 0` takes the most likely
 * component's mean and the most likely pen state. With `mayEnd` false the end of the sketch
 * is not a choice (its pen logit is left out, as Python's `min_strokes`).
 */
export function samplePoint(out, i, m, tau, penTau, rng, mayEnd = true) {
  const k = categorical(out.log_pi, i * m, m, tau, rng);
  const pen = categorical(out.pen_logits, i * 3, mayEnd ? 3 : 2, penTau, rng);
  const j = i * m + k;
  const muX = out.mu_x[j];
  const muY = out.mu_y[j];
  let dx = muX;
  let dy = muY;
  if (tau > 0) {
    const scale = Math.sqrt(tau);
    const sx = Math.exp(out.log_sigma_x[j]) * scale;
    const sy = Math.exp(out.log_sigma_y[j]) * scale;
    const rho = out.rho[j];
    const n0 = rng.normal();
    const n1 = rng.normal();
    dx = f32(muX + sx * n0);
    dy = f32(muY + sy * (rho * n0 + Math.sqrt(1 - rho * rho) * n1));
  }
  return [dx, dy, pen === 0 ? 1 : 0, pen === 1 ? 1 : 0, pen === 2 ? 1 : 0];
}

function categorical(logits, start, count, tau, rng) {
  let best = 0;
  for (let k = 1; k < count; k++) if (logits[start + k] > logits[start + best]) best = k;
  if (tau === 0) return best;
  const top = logits[start + best] / tau;
  const weights = new Float64Array(count);
  let total = 0;
  for (let k = 0; k < count; k++) total += weights[k] = Math.exp(logits[start + k] / tau - top);
  let u = rng.uniform() * total;
  for (let k = 0; k < count; k++) {
    u -= weights[k];
    if (u < 0) return k;
  }
  return best; // u landed on the rounding error of the total
}

/**
 * The mixture of one step as probabilities, at temperature `tau` (eq. 8), like magenta.js's
 * `getPDF`: `{pi, mu_x, mu_y, sigma_x, sigma_y, rho, pen}` in the model's units.
 */
export function mixturePdf(params, tau = 1, penTau = tau) {
  const soft = (logits, t) => {
    const scaled = Array.from(logits, (v) => v / t);
    const top = Math.max(...scaled);
    const e = scaled.map((v) => Math.exp(v - top));
    const sum = e.reduce((s, v) => s + v, 0);
    return e.map((v) => v / sum);
  };
  const scale = Math.sqrt(tau);
  return {
    pi: soft(params.log_pi, tau),
    mu_x: Array.from(params.mu_x),
    mu_y: Array.from(params.mu_y),
    sigma_x: Array.from(params.log_sigma_x, (v) => Math.exp(v) * scale),
    sigma_y: Array.from(params.log_sigma_y, (v) => Math.exp(v) * scale),
    rho: Array.from(params.rho),
    pen: soft(params.pen_logits, penTau),
  };
}

// ------------------------------------------------------------------------------ images

/**
 * A drawing as the model's training image, exactly as `sketchrnn.datasets.render_images`
 * and `sketchrnn.io.raster` draw it: fitted and centred with a margin of `padding` of the side
 * (default 10% rounded to whole pixels), an anti-aliased line of `lineWidth` pixels, float32
 * arithmetic as numpy's, quantised to 8 bits. Returns `{width, height, data}` with ink 1,
 * `data` a Float32Array.
 */
export function renderImage(s3, size, {lineWidth = 1.5, padding = roundHalfEven(0.1 * size) / size, where = 'drawing'} = {}) {
  const lines = stroke3ToPolylines(validateStroke3(s3, where));
  const ink = rasterizePolylines(fitPolylines(lines, size, size, padding), size, size, lineWidth);
  const data = new Float32Array(size * size);
  for (let p = 0; p < data.length; p++) data[p] = f32(roundHalfEven(f32(ink[p] * 255)) / 255);
  return {width: size, height: size, data};
}

function roundHalfEven(x) {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Absolute polylines (float64 cumulative sums, one per stroke) of float32 stroke-3 rows. */
function stroke3ToPolylines(s3) {
  const lines = [];
  let current = [];
  let x = 0;
  let y = 0;
  for (const [dx, dy, pen] of s3) {
    x += dx;
    y += dy;
    current.push([x, y]);
    if (pen > 0.5) {
      lines.push(current);
      current = [];
    }
  }
  if (current.length) lines.push(current);
  return lines;
}

function fitPolylines(lines, width, height, padding) {
  const pts = lines.flat();
  const lo = [Math.min(...pts.map((p) => p[0])), Math.min(...pts.map((p) => p[1]))];
  const hi = [Math.max(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[1]))];
  const usable = [width * (1 - 2 * padding), height * (1 - 2 * padding)];
  const ratios = [0, 1].filter((i) => hi[i] - lo[i] > 0).map((i) => usable[i] / (hi[i] - lo[i]));
  const scale = ratios.length ? Math.min(...ratios) : 1;
  const shift = [width / 2 - ((lo[0] + hi[0]) / 2) * scale, height / 2 - ((lo[1] + hi[1]) / 2) * scale];
  return lines.map((line) => line.map((p) => [p[0] * scale + shift[0], p[1] * scale + shift[1]]));
}

/** Ink `(height * width)` in [0, 1]: each pixel centre's distance to the nearest segment. */
function rasterizePolylines(lines, height, width, lineWidth) {
  const reach = f32(lineWidth / 2 + 0.5);
  const dist2 = new Float32Array(height * width).fill(Infinity);
  for (const line of lines) {
    const pairs = line.length === 1 ? [[line[0], line[0]]] : line.slice(1).map((p, k) => [line[k], p]);
    for (const [a, b] of pairs) {
      const ax = f32(a[0]);
      const ay = f32(a[1]);
      const dx = f32(f32(b[0]) - ax);
      const dy = f32(f32(b[1]) - ay);
      const len2 = f32(f32(dx * dx) + f32(dy * dy));
      const inv = len2 > 0 ? f32(1 / len2) : 0;
      const ex = f32(ax + dx);
      const ey = f32(ay + dy);
      const c0 = Math.max(0, Math.ceil(f32(f32(Math.min(ax, ex) - reach) - 0.5)));
      const r0 = Math.max(0, Math.ceil(f32(f32(Math.min(ay, ey) - reach) - 0.5)));
      const c1 = Math.min(width, Math.floor(f32(f32(Math.max(ax, ex) + reach) - 0.5)) + 1);
      const r1 = Math.min(height, Math.floor(f32(f32(Math.max(ay, ey) + reach) - 0.5)) + 1);
      for (let r = r0; r < r1; r++) {
        const gy = f32(f32(r + 0.5) - ay);
        for (let c = c0; c < c1; c++) {
          const gx = f32(f32(c + 0.5) - ax);
          const t = Math.min(1, Math.max(0, f32(f32(f32(gx * dx) + f32(gy * dy)) * inv)));
          const qx = f32(gx - f32(t * dx));
          const qy = f32(gy - f32(t * dy));
          const d2 = f32(f32(qx * qx) + f32(qy * qy));
          if (d2 < dist2[r * width + c]) dist2[r * width + c] = d2;
        }
      }
    }
  }
  const top = f32(lineWidth / 2 + 0.5);
  return dist2.map((d2) => Math.min(1, Math.max(0, f32(top - f32(Math.sqrt(d2))))));
}

/**
 * Draw stroke-3 `sketch` fitted into `canvas` (a 2D canvas or its context) with a margin of
 * `padding` of each side: a helper for pages.
 */
export function drawSketch(canvas, sketch, {color = 'black', lineWidth = 2, padding = 0.1} = {}) {
  const ctx = canvas.getContext ? canvas.getContext('2d') : canvas;
  const {width, height} = ctx.canvas;
  if (!sketch.length) return;
  const lines = fitPolylines(stroke3ToPolylines(validateStroke3(sketch)), width, height, padding);
  ctx.strokeStyle = color;
  ctx.lineWidth = lineWidth;
  ctx.lineCap = ctx.lineJoin = 'round';
  for (const line of lines) {
    ctx.beginPath();
    ctx.moveTo(line[0][0], line[0][1]);
    for (const [x, y] of line.length === 1 ? [line[0]] : line.slice(1)) ctx.lineTo(x, y);
    ctx.stroke();
  }
}

// ------------------------------------------------------------------------------ files

async function readBytes(url, fetchImpl) {
  if (IS_NODE && !/^https?:/i.test(url)) {
    const fs = await import('node:fs/promises');
    const {fileURLToPath} = await import('node:url');
    const path = url.startsWith('file:') ? fileURLToPath(url) : url;
    try {
      return new Uint8Array(await fs.readFile(path));
    } catch (e) {
      throw new ModelFileError(`${url}: cannot read (${e.code || e.message})`);
    }
  }
  let response;
  try {
    response = await (fetchImpl || globalThis.fetch)(url);
  } catch (e) {
    throw new ModelFileError(`${url}: cannot fetch (${e.message})`);
  }
  if (!response.ok) throw new ModelFileError(`${url}: HTTP ${response.status} ${response.statusText}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** `file` next to the manifest at `manifestUrl` (a URL, or a path in Node). */
function sibling(manifestUrl, file) {
  if (IS_NODE && !/^[a-z][a-z0-9+.-]*:/i.test(manifestUrl)) {
    const slash = manifestUrl.lastIndexOf('/');
    return (slash >= 0 ? manifestUrl.slice(0, slash + 1) : './') + file;
  }
  return new URL(file, manifestUrl).href;
}

function manifestLocation(url) {
  url = String(url);
  if (!IS_NODE && typeof document !== 'undefined') url = new URL(url, document.baseURI).href;
  if (/\.json$/i.test(url.split(/[?#]/)[0])) return url;
  return url.replace(/\/?$/, '/') + 'manifest.json';
}

/** SHA-256 of `bytes` as lowercase hex: WebCrypto where the page has it (a secure context). */
export async function sha256Hex(bytes) {
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  const digest = subtle ? new Uint8Array(await subtle.digest('SHA-256', bytes)) : sha256(bytes);
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

// FIPS 180-4 SHA-256, for pages served over plain HTTP to another machine, where browsers
// hide WebCrypto: the check must not be skipped there.
const K256 = Uint32Array.from(
  '428a2f98 71374491 b5c0fbcf e9b5dba5 3956c25b 59f111f1 923f82a4 ab1c5ed5 d807aa98 12835b01 243185be 550c7dc3 72be5d74 80deb1fe 9bdc06a7 c19bf174 e49b69c1 efbe4786 0fc19dc6 240ca1cc 2de92c6f 4a7484aa 5cb0a9dc 76f988da 983e5152 a831c66d b00327c8 bf597fc7 c6e00bf3 d5a79147 06ca6351 14292967 27b70a85 2e1b2138 4d2c6dfc 53380d13 650a7354 766a0abb 81c2c92e 92722c85 a2bfe8a1 a81a664b c24b8b70 c76c51a3 d192e819 d6990624 f40e3585 106aa070 19a4c116 1e376c08 2748774c 34b0bcb5 391c0cb3 4ed8aa4a 5b9cca4f 682e6ff3 748f82ee 78a5636f 84c87814 8cc70208 90befffa a4506ceb bef9a3f7 c67178f2'.split(' '),
  (h) => parseInt(h, 16),
);

export function sha256(bytes) {
  const h = Uint32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const padded = new Uint8Array(Math.ceil((bytes.length + 9) / 64) * 64);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bytes.length / 2 ** 29));
  view.setUint32(padded.length - 4, (bytes.length * 8) >>> 0);
  const w = new Uint32Array(64);
  const ror = (v, k) => (v >>> k) | (v << (32 - k));
  for (let off = 0; off < padded.length; off += 64) {
    for (let t = 0; t < 16; t++) w[t] = view.getUint32(off + 4 * t);
    for (let t = 16; t < 64; t++) {
      const s0 = ror(w[t - 15], 7) ^ ror(w[t - 15], 18) ^ (w[t - 15] >>> 3);
      const s1 = ror(w[t - 2], 17) ^ ror(w[t - 2], 19) ^ (w[t - 2] >>> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let t = 0; t < 64; t++) {
      const t1 = hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K256[t] + w[t];
      const t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      [hh, g, f, e, d, c, b, a] = [g, f, e, (d + t1) >>> 0, c, b, a, (t1 + t2) >>> 0];
    }
    [a, b, c, d, e, f, g, hh].forEach((v, i) => (h[i] = h[i] + v));
  }
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  h.forEach((v, i) => outView.setUint32(4 * i, v));
  return out;
}

// ------------------------------------------------------------------------------ the manifest

const KINDS = ['sketch-rnn', 'sketchembednet'];
const MIXTURE_OUTPUTS = ['log_pi', 'mu_x', 'mu_y', 'log_sigma_x', 'log_sigma_y', 'rho'];

/**
 * Check a parsed manifest (docs/portable-models.md, format version 1) and return it; a
 * ModelFileError naming `where` and the field for anything this runtime cannot trust.
 */
export function validateManifest(m, where = 'manifest.json') {
  const fail = (what) => {
    throw new ModelFileError(`${where}: ${what}`);
  };
  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  const int = (v, low) => Number.isSafeInteger(v) && v >= low;
  if (!isObject(m)) fail('not a JSON object');
  if (m.format !== FORMAT) fail(`not a sketchrnn portable model (format ${JSON.stringify(m.format)}, expected "${FORMAT}")`);
  if (!int(m.format_version, 1)) fail(`field "format_version" must be a positive integer, got ${JSON.stringify(m.format_version)}`);
  if (m.format_version > FORMAT_VERSION) {
    fail(`format_version ${m.format_version} is newer than this sketchrnn.js reads (${FORMAT_VERSION}): use the sketchrnn.js of the sketchrnn that exported it`);
  }
  const field = (name, ok, what) => {
    if (!(name in m)) fail(`missing field "${name}"`);
    if (!ok(m[name])) fail(`field "${name}" must be ${what}, got ${JSON.stringify(m[name])}`);
  };
  field('kind', (v) => KINDS.includes(v), `one of ${KINDS.join(', ')}`);
  field('name', (v) => typeof v === 'string', 'a string');
  field('config', isObject, 'an object');
  field('units', isObject, 'an object');
  field('max_len', (v) => int(v, 1), 'a positive integer');
  field('num_mixtures', (v) => int(v, 1), 'a positive integer');
  field('latent_size', (v) => int(v, 0), 'an integer >= 0');
  field('num_classes', (v) => int(v, 0), 'an integer >= 0');
  field('state', (v) => Array.isArray(v) && v.length > 0 && v.every((s) => isObject(s) && typeof s.name === 'string' && /^\w+$/.test(s.name) && int(s.size, 1)), 'a list of {name, size}');
  field('capabilities', (v) => Array.isArray(v) && v.every((c) => typeof c === 'string'), 'a list of names');
  field('dtype', (v) => v === 'float32' || v === 'float16', '"float32" or "float16"');
  field('graphs', isObject, 'an object');
  const factor = m.units.scale_factor;
  if (!(typeof factor === 'number' && Number.isFinite(factor) && factor > 0)) {
    fail(`field "units.scale_factor" must be a positive number, got ${JSON.stringify(factor)}`);
  }
  const classes = m.units.classes;
  if (!Array.isArray(classes) || !classes.every((c) => typeof c === 'string')) {
    fail(`field "units.classes" must be a list of names, got ${JSON.stringify(classes)}`);
  }
  if (m.num_classes > 0 && classes.length !== m.num_classes) {
    fail(`units.classes names ${classes.length} classes, num_classes is ${m.num_classes}`);
  }
  if (m.kind === 'sketchembednet') {
    const im = m.image;
    if (!isObject(im) || !int(im.size, 1) || !int(im.channels, 1)) {
      fail(`field "image" must be {"size": S, "channels": C} for a SketchEmbedNet, got ${JSON.stringify(im)}`);
    }
    if (m.latent_size < 1) fail('a SketchEmbedNet needs latent_size > 0');
    const drawn = {levels: 255, ink: 1, background: 0};
    for (const [key, value] of Object.entries(drawn)) {
      if (key in im && im[key] !== value) fail(`image.${key} is ${JSON.stringify(im[key])}; this runtime draws images with ${key} ${value}`);
    }
    if ('line_width' in im && !(typeof im.line_width === 'number' && im.line_width > 0)) fail('image.line_width must be a positive number');
    if ('padding' in im && !(typeof im.padding === 'number' && im.padding >= 0 && im.padding < 0.5)) fail('image.padding must be a number in [0, 0.5)');
  }
  const expected = expectedGraphs(m);
  for (const [name, spec] of Object.entries(expected)) {
    const g = m.graphs[name];
    if (g === undefined) {
      if (spec.required) fail(`graphs: missing the "${name}" graph`);
      continue;
    }
    const at = `graphs.${name}`;
    if (!isObject(g)) fail(`${at} must be an object`);
    if (typeof g.file !== 'string' || !/^[\w.-]+\.onnx$/.test(g.file) || g.file.startsWith('.')) {
      fail(`${at}.file must be a plain file name ending in .onnx, got ${JSON.stringify(g.file)}`);
    }
    if (!int(g.bytes, 1)) fail(`${at}.bytes must be a positive integer, got ${JSON.stringify(g.bytes)}`);
    if (typeof g.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(g.sha256)) fail(`${at}.sha256 must be 64 lowercase hex digits`);
    for (const side of ['inputs', 'outputs']) {
      const list = g[side];
      if (!Array.isArray(list) || !list.every((t) => isObject(t) && typeof t.name === 'string' && typeof t.dtype === 'string' && Array.isArray(t.shape))) {
        fail(`${at}.${side} must be a list of {name, dtype, shape}`);
      }
      const names = list.map((t) => t.name);
      const want = spec[side];
      const missing = want.filter((n) => !names.includes(n));
      const extra = names.filter((n) => !want.includes(n));
      if (missing.length || extra.length) {
        fail(`${at}.${side} are [${names.join(', ')}]; this runtime calls the ${name} graph with [${want.join(', ')}]`);
      }
    }
  }
  const unknown = Object.keys(m.graphs).filter((n) => !(n in expected));
  if (unknown.length) fail(`graphs: unknown graph(s) ${unknown.join(', ')}`);
  return m;
}

/** The graphs a manifest must (or may) hold and the names of their inputs and outputs. */
function expectedGraphs(m) {
  const state = m.state.map((s) => s.name);
  const next = state.map((s) => 'next_' + s);
  const cond = [...(m.latent_size > 0 ? ['z'] : []), ...(m.num_classes > 0 ? ['label'] : [])];
  const graphs = {
    step: {required: true, inputs: ['x', ...state, ...cond], outputs: [...MIXTURE_OUTPUTS, 'pen_logits', ...next]},
    read: {required: false, inputs: ['xs', ...state, ...cond], outputs: next},
  };
  if (m.latent_size > 0) graphs.init = {required: true, inputs: ['z'], outputs: state};
  const encodeInputs = m.kind === 'sketchembednet' ? ['image'] : ['strokes', 'lengths'];
  graphs.encode = {required: m.kind === 'sketchembednet', inputs: encodeInputs, outputs: ['mu', 'sigma_hat']};
  return graphs;
}

// ------------------------------------------------------------------------------ the model

async function defaultOrt() {
  const mod = IS_NODE
    ? await import('onnxruntime-node')
    : await import(new URL(ORT_WEB_FILE, import.meta.url).href);
  return mod.InferenceSession ? mod : mod.default;
}

/** A graph's bytes, checked against its manifest entry's size and SHA-256. */
async function graphBytes(spec, manifestUrl, options) {
  const url = sibling(manifestUrl, spec.file);
  const bytes = await readBytes(url, options.fetch);
  if (bytes.length !== spec.bytes) {
    throw new ModelFileError(`${url}: ${bytes.length} bytes, the manifest says ${spec.bytes} (a truncated or altered file)`);
  }
  const digest = await sha256Hex(bytes);
  if (digest !== spec.sha256) {
    throw new ModelFileError(`${url}: SHA-256 ${digest} differs from the manifest's ${spec.sha256} (an altered file)`);
  }
  return bytes;
}

/** A session of a checked graph, its inputs and outputs checked against the manifest's. */
async function openGraph(ort, bytes, spec, manifestUrl, options) {
  const url = sibling(manifestUrl, spec.file);
  let session;
  try {
    // Errors only: ONNX Runtime's warnings about a graph's unused initializers are noise.
    session = await ort.InferenceSession.create(bytes, {logSeverityLevel: 3, ...options.sessionOptions});
  } catch (e) {
    throw new ModelFileError(`${url}: not a graph ONNX Runtime can open (${String(e.message || e).split('\n')[0]})`);
  }
  for (const side of ['inputs', 'outputs']) {
    const names = side === 'inputs' ? session.inputNames : session.outputNames;
    const meta = side === 'inputs' ? session.inputMetadata : session.outputMetadata;
    const declared = spec[side].map((t) => t.name);
    if (names.length !== declared.length || !declared.every((n) => names.includes(n))) {
      throw new ModelFileError(`${url}: the graph's ${side} are [${names.join(', ')}], the manifest says [${declared.join(', ')}]`);
    }
    for (const t of spec[side]) {
      const got = Array.isArray(meta) ? meta.find((x) => x.name === t.name) : undefined;
      if (got && got.isTensor && !sameSignature(got, t)) {
        throw new ModelFileError(`${url}: ${side.slice(0, -1)} "${t.name}" is ${got.type} [${got.shape.join(', ')}] in the graph, ${t.dtype} [${t.shape.join(', ')}] in the manifest`);
      }
    }
  }
  return session;
}

function sameSignature(got, declared) {
  if (got.type !== declared.dtype || got.shape.length !== declared.shape.length) return false;
  return declared.shape.every((d, i) => (typeof d === 'number' ? got.shape[i] === d : typeof got.shape[i] !== 'number' || got.shape[i] < 0));
}

/** A model exported by `sketchrnn export`, ready to draw. Make one with `SketchModel.load`. */
export class SketchModel {
  /**
   * Load the exported folder at `url` (or its manifest.json): a URL in a browser, a path or
   * URL in Node. `ort` is the ONNX Runtime module to use (default: onnxruntime-node in Node,
   * `./ort.wasm.bundle.min.mjs` next to this file in a browser); `sessionOptions` go to
   * every `InferenceSession.create`; `fetch` replaces the global fetch.
   */
  static async load(url, options = {}) {
    const ort = options.ort || (await defaultOrt());
    const manifestUrl = manifestLocation(url);
    const raw = await readBytes(manifestUrl, options.fetch);
    let manifest;
    try {
      manifest = JSON.parse(new TextDecoder('utf-8', {fatal: true}).decode(raw));
    } catch (e) {
      throw new ModelFileError(`${manifestUrl}: not valid JSON (${e.message})`);
    }
    validateManifest(manifest, manifestUrl);
    // Fetched together, checked before ONNX Runtime sees a byte, then opened one by one.
    const graphs = Object.entries(manifest.graphs);
    const files = await Promise.all(graphs.map(([, spec]) => graphBytes(spec, manifestUrl, options)));
    const sessions = {};
    for (const [i, [name, spec]] of graphs.entries()) {
      sessions[name] = await openGraph(ort, files[i], spec, manifestUrl, options);
    }
    return new SketchModel(manifest, sessions, ort);
  }

  constructor(manifest, sessions, ort) {
    this.manifest = manifest;
    this.sessions = sessions;
    this.ort = ort;
    this._queue = Promise.resolve(); // one run at a time: a session is not re-entrant
  }

  get kind() { return this.manifest.kind; }
  get name() { return this.manifest.name; }
  get scaleFactor() { return this.manifest.units.scale_factor; }
  get classes() { return this.manifest.units.classes.slice(); }
  get maxLen() { return this.manifest.max_len; }
  get latentSize() { return this.manifest.latent_size; }
  get numClasses() { return this.manifest.num_classes; }
  get numMixtures() { return this.manifest.num_mixtures; }
  get capabilities() { return this.manifest.capabilities.slice(); }

  /** Release the sessions. */
  async release() {
    for (const s of Object.values(this.sessions)) if (s.release) await s.release();
  }

  // ---------------------------------------------------------------------------- drawing

  /**
   * `n` sketches (stroke-3, pixels). A VAE draws `z ~ N(0, I)` unless `z` (n latents) is
   * given; `label` (a class name or index, one or n) for a class-conditional model.
   */
  async sample(n = 1, {temperature = 0.5, penTemperature, z, label, maxLen, seed, rng} = {}) {
    this._require('sample');
    checkCount(n);
    rng = generator(seed, rng);
    if (this.latentSize > 0 && (z === undefined || z === null)) {
      z = Array.from({length: n}, () => Float32Array.from({length: this.latentSize}, () => rng.normal()));
    }
    if (z !== undefined && z !== null && this._latents(z).length !== n) {
      throw new SketchError(`z has ${this._latents(z).length} rows, expected n=${n}`);
    }
    return this._decode(z, {n, temperature, penTemperature, label, maxLen, rng});
  }

  /** One sketch per latent of `z` (or `n` for a decoder-only model, `z` null). */
  async decode(z, {n, temperature = 0.5, penTemperature, label, maxLen, seed, rng} = {}) {
    this._require('decode', 'sample');
    return this._decode(z, {n, temperature, penTemperature, label, maxLen, seed, rng});
  }

  async _decode(z, {n, temperature = 0.5, penTemperature, label, maxLen, seed, rng}) {
    const tau = checkTemperature(temperature);
    const penTau = penTemperature === undefined ? tau : checkTemperature(penTemperature, 'penTemperature');
    let latents = null;
    if (z !== undefined && z !== null) {
      if (this.latentSize === 0) throw new SketchError('z given, but the model is decoder-only (no latent space)');
      latents = this._latents(z);
      n = latents.length;
    } else if (this.latentSize > 0) {
      throw new SketchError('the model has a latent space: decode needs z (sample() draws z ~ N(0, I))');
    }
    checkCount(n);
    const labels = this._labels(label, n);
    const limit = maxLen === undefined ? this.maxLen : checkCount(maxLen, 'maxLen');
    rng = generator(seed, rng);
    const out = [];
    for (let start = 0; start < n; start += DRAW_BATCH) {
      const stop = Math.min(n, start + DRAW_BATCH);
      const b = stop - start;
      const zb = latents && flatten(latents.slice(start, stop), this.latentSize);
      const lb = labels && labels.slice(start, stop);
      const state = await this._initialState(zb, b);
      const x = tile(START_TOKEN, b);
      const rows = await this._draw(x, state, zb, lb, b, limit, tau, penTau, rng);
      out.push(...rows.map((r) => this._rowsToPixels(r)));
    }
    return out;
  }

  /**
   * `n` endings of the drawing `prefix` (stroke-3, pixels): each result is the prefix
   * followed by its ending. A VAE takes `z` from the prefix's encoding (`zFrom: 'prefix'`)
   * or the prior (`'prior'`, one per ending). `maxLen` bounds the whole sketch. With
   * `minStrokes` each ending draws at least that many strokes before it may end the sketch
   * (a drawing the model takes as finished still gets an ending; as Python's `min_strokes`).
   */
  async complete(prefix, n = 1, {temperature = 0.8, penTemperature, zFrom = 'prefix', label, maxLen, minStrokes = 0, seed, rng} = {}) {
    this._require('complete');
    checkCount(n);
    const tau = checkTemperature(temperature);
    const penTau = penTemperature === undefined ? tau : checkTemperature(penTemperature, 'penTemperature');
    checkMinStrokes(minStrokes);
    rng = generator(seed, rng);
    const {s3, x, state, z, labels, room} = await this._prime(prefix, n, zFrom, label, maxLen, rng);
    const endings = await this._draw(x, state, z, labels, n, room, tau, penTau, rng, minStrokes);
    return endings.map((e) => s3.concat(this._rowsToPixels(e)));
  }

  /**
   * One ending of `prefix` (or, with `prefix` null, one new sketch), row by row as it is
   * drawn: an async iterator of stroke-3 rows in pixels, for a page that shows strokes as
   * they come. Stops at the end of the sketch, after `maxLen` points, or when `signal` (an
   * AbortSignal) aborts.
   */
  async *stream(prefix = null, {temperature = 0.8, penTemperature, zFrom = 'prefix', label, maxLen, minStrokes = 0, seed, rng, signal} = {}) {
    const tau = checkTemperature(temperature);
    const penTau = penTemperature === undefined ? tau : checkTemperature(penTemperature, 'penTemperature');
    checkMinStrokes(minStrokes);
    rng = generator(seed, rng);
    let x;
    let state;
    let z;
    let labels;
    let room;
    if (prefix === null) {
      this._require('sample');
      labels = this._labels(label, 1);
      z = this.latentSize > 0 ? Float32Array.from({length: this.latentSize}, () => rng.normal()) : null;
      state = await this._initialState(z, 1);
      x = tile(START_TOKEN, 1);
      room = maxLen === undefined ? this.maxLen : checkCount(maxLen, 'maxLen');
    } else {
      this._require('complete');
      ({x, state, z, labels, room} = await this._prime(prefix, 1, zFrom, label, maxLen, rng));
    }
    const M = this.numMixtures;
    let strokes = 0;
    for (let t = 0; t < room; t++) {
      if (signal && signal.aborted) return;
      const out = await this._step(x, state, z, labels, 1);
      const point = samplePoint(out, 0, M, tau, penTau, rng, strokes >= minStrokes);
      if (point[4] === 1) return;
      strokes += point[3];
      state = out.state;
      x = Float32Array.from(point);
      yield this._rowsToPixels([point])[0];
    }
  }

  // ---------------------------------------------------------------------------- latents

  /**
   * Latent means of drawings (stroke-3, pixels) through a sketch-rnn VAE's encoder: one
   * Float32Array per drawing; with `withSigma`, `{mu, sigmaHat}`.
   */
  async encode(sketches, {withSigma = false} = {}) {
    this._require('encode');
    if (!Array.isArray(sketches) || sketches.length === 0) throw new SketchError('no sketches to encode');
    if (this.kind === 'sketchembednet') return this._encodeImages(sketches, withSigma);
    const rows = sketches.map((s, i) => {
      const checked = validateStroke3(s, `sketch ${i}`);
      if (checked.length > this.maxLen) {
        throw new SketchError(`sketch ${i} has ${checked.length} points, more than max_len=${this.maxLen}`);
      }
      return stroke3ToStroke5(toModelUnits(checked, this.scaleFactor));
    });
    const time = Math.max(...rows.map((r) => r.length));
    const strokes = new Float32Array(rows.length * time * 5);
    rows.forEach((r, b) => {
      for (let t = 0; t < time; t++) strokes.set(t < r.length ? r[t] : [0, 0, 0, 0, 1], (b * time + t) * 5);
    });
    const lengths = BigInt64Array.from(rows, (r) => BigInt(r.length));
    const out = await this._run('encode', {
      strokes: this._tensor('float32', strokes, [rows.length, time, 5]),
      lengths: this._tensor('int64', lengths, [rows.length]),
    });
    return this._latentsOut(out, rows.length, withSigma);
  }

  /**
   * One vector per item: a VAE's latent mean of a drawing, or a SketchEmbedNet's embedding
   * of a drawing's image or of an image `{width, height, data}` (ink 1, the model's size).
   */
  async embed(items) {
    this._require('embed');
    if (!Array.isArray(items) || items.length === 0) throw new SketchError('nothing to embed');
    if (this.kind === 'sketch-rnn') return this.encode(items);
    return this._encodeImages(items, false);
  }

  async _encodeImages(items, withSigma) {
    const {size, channels} = this.manifest.image;
    const data = new Float32Array(items.length * channels * size * size);
    items.forEach((item, i) => {
      const grey = this.image(item, `item ${i}`).data;
      let ink = 0;
      for (const v of grey) ink = Math.max(ink, v);
      if (!(ink > 0)) throw new SketchError(`item ${i}: empty image (no ink): nothing to embed or draw`);
      for (let c = 0; c < channels; c++) data.set(grey, (i * channels + c) * size * size);
    });
    const out = await this._run('encode', {image: this._tensor('float32', data, [items.length, channels, size, size])});
    return this._latentsOut(out, items.length, withSigma);
  }

  /**
   * The model's input image of a drawing (rendered as the training images were) or of an
   * image `{width, height, data}` given at the model's size: grey values (ink 1) or RGBA
   * bytes (a canvas's ImageData; ink where it is opaque and dark).
   */
  image(item, where = 'drawing') {
    const {size} = this.manifest.image;
    if (Array.isArray(item)) {
      const {line_width: lineWidth, padding} = this.manifest.image;
      return renderImage(item, size, {lineWidth, padding, where});
    }
    if (item === null || typeof item !== 'object' || !item.data) {
      throw new SketchError(`${where}: expected a drawing (stroke-3 rows) or an image {width, height, data}`);
    }
    if (item.width !== size || item.height !== size) {
      throw new SketchError(`${where}: the image is ${item.width}x${item.height}, the model takes ${size}x${size}`);
    }
    const n = size * size;
    const data = new Float32Array(n);
    if (item.data.length === 4 * n) {
      for (let p = 0; p < n; p++) {
        const [r, g, b, a] = item.data.slice(4 * p, 4 * p + 4);
        data[p] = (a / 255) * (1 - (0.299 * r + 0.587 * g + 0.114 * b) / 255);
      }
    } else if (item.data.length === n) {
      data.set(item.data);
    } else {
      throw new SketchError(`${where}: data holds ${item.data.length} values, expected ${n} (grey) or ${4 * n} (RGBA)`);
    }
    if (!data.every((v) => v >= 0 && v <= 1)) throw new SketchError(`${where}: grey values must lie in [0, 1]`);
    return {width: size, height: size, data};
  }

  /**
   * `steps` sketches decoded along the path from `a` to `b` (drawings, or latent vectors),
   * spherical (`slerp`, the default) or `linear`, as `generate.interpolate`.
   */
  async interpolate(a, b, steps = 10, {method = 'slerp', temperature = 0.1, label, maxLen, seed, rng} = {}) {
    this._require('interpolate');
    const [za, zb] = await Promise.all([this._latentOf(a, 'a'), this._latentOf(b, 'b')]);
    const path = interpolateLatents(za, zb, steps, method);
    return this._decode(path, {temperature, label, maxLen, seed, rng});
  }

  /**
   * A SketchEmbedNet draws a drawing's image (or an image) `n` times from its embedding;
   * results for a drawing are scaled to the drawing's size (the image has no scale).
   */
  async imitate(item, n = 4, {temperature = 0.3, maxLen, seed, rng} = {}) {
    this._require('imitate');
    checkCount(n);
    const [z] = await this.embed([item]);
    const out = await this._decode(Array(n).fill(z), {temperature, maxLen, seed, rng});
    if (!Array.isArray(item)) return out;
    const target = extent(validateStroke3(item));
    return out.map((s) => {
      const side = s.length ? extent(s) : 0;
      if (!(side > 0 && target > 0)) return s;
      const k = f32(side / target);
      return s.map((r) => [f32(r[0] / k), f32(r[1] / k), r[2]]);
    });
  }

  /**
   * The mixture after each of `rows` (stroke-5 `[dx, dy, p1, p2, p3]` in pixels, usually
   * starting with START_TOKEN), fed one step at a time from the initial state: for tests and
   * for pages that show the distribution. `z` for a model with a latent space. Returns one
   * `{log_pi, mu_x, mu_y, log_sigma_x, log_sigma_y, rho, pen_logits}` (model units) per row.
   */
  async mixtures(rows, {z, label} = {}) {
    if (!Array.isArray(rows) || rows.length === 0) throw new SketchError('no rows');
    const zb = this.latentSize > 0 ? flatten(this._latents(z === undefined ? null : z), this.latentSize) : null;
    if (this.latentSize > 0 && zb.length !== this.latentSize) throw new SketchError('mixtures takes one z');
    const labels = this._labels(label, 1);
    let state = await this._initialState(zb, 1);
    const k = f32(this.scaleFactor);
    const M = this.numMixtures;
    const steps = [];
    for (const [i, row] of rows.entries()) {
      if (!row || row.length !== 5 || !Array.from(row).every(Number.isFinite)) throw new SketchError(`row ${i} must be 5 finite numbers`);
      const x = Float32Array.from([f32(f32(row[0]) / k), f32(f32(row[1]) / k), row[2], row[3], row[4]]);
      const out = await this._step(x, state, zb, labels, 1);
      state = out.state;
      const step = {};
      for (const name of MIXTURE_OUTPUTS) step[name] = out[name].slice(0, M);
      step.pen_logits = out.pen_logits.slice(0, 3);
      steps.push(step);
    }
    return steps;
  }

  // ---------------------------------------------------------------------------- internals

  _require(...names) {
    const name = names[0];
    if (!names.some((c) => this.manifest.capabilities.includes(c))) {
      throw new SketchError(`this model cannot ${name}: its capabilities are ${this.manifest.capabilities.join(', ')}`);
    }
  }

  _tensor(type, data, dims) {
    return new this.ort.Tensor(type, data, dims);
  }

  async _run(graph, feeds) {
    const session = this.sessions[graph];
    const result = this._queue.then(() => session.run(feeds));
    this._queue = result.catch(() => undefined);
    return result;
  }

  /** Latent vectors as a list of Float32Array, each checked to be the model's size. */
  _latents(z) {
    if (z === null || z === undefined) throw new SketchError('z is needed: the model has a latent space');
    const list = isVector(z) ? [z] : Array.from(z);
    if (list.length === 0) throw new SketchError('z holds no latents');
    return list.map((v, i) => {
      if (!isVector(v) || v.length !== this.latentSize) {
        throw new SketchError(`latent ${i} must be ${this.latentSize} numbers, got ${v && v.length}`);
      }
      const out = Float32Array.from(v);
      if (!out.every(Number.isFinite)) throw new SketchError(`latent ${i} holds NaN or infinite values`);
      return out;
    });
  }

  async _latentOf(item, where) {
    if (isVector(item)) return this._latents(item)[0];
    const [mu] = this.kind === 'sketch-rnn' ? await this.encode([validateStroke3(item, where)]) : await this.embed([item]);
    return mu;
  }

  _latentsOut(out, n, withSigma) {
    const L = this.latentSize;
    const mu = Array.from({length: n}, (_, i) => out.mu.data.slice(i * L, (i + 1) * L));
    if (!withSigma) return mu;
    const sigmaHat = Array.from({length: n}, (_, i) => out.sigma_hat.data.slice(i * L, (i + 1) * L));
    return {mu, sigmaHat};
  }

  /** Class indices (BigInt64Array of n) for a class-conditional model, else null. */
  _labels(label, n) {
    if (this.numClasses === 0) {
      if (label !== undefined && label !== null) throw new SketchError('label given, but the model is not class-conditional');
      return null;
    }
    if (label === undefined || label === null) {
      throw new SketchError(`the model is class-conditional (${this.numClasses} classes): pass label (a class name or index)`);
    }
    const items = Array.isArray(label) ? label : [label];
    const idx = items.map((item) => {
      if (typeof item === 'string') {
        const k = this.manifest.units.classes.indexOf(item);
        if (k < 0) throw new SketchError(`unknown class ${JSON.stringify(item)}; the model knows ${this.manifest.units.classes.join(', ')}`);
        return k;
      }
      if (!Number.isInteger(item) || item < 0 || item >= this.numClasses) {
        throw new SketchError(`class index ${item} out of range [0, ${this.numClasses})`);
      }
      return item;
    });
    if (idx.length !== 1 && idx.length !== n) throw new SketchError(`expected 1 or ${n} labels, got ${idx.length}`);
    return BigInt64Array.from({length: n}, (_, i) => BigInt(idx.length === 1 ? idx[0] : idx[i]));
  }

  /** The decoder's state for `batch` sketches: from `z` (flat, batch x L), else zeros. */
  async _initialState(z, batch) {
    const state = {};
    if (this.latentSize === 0) {
      for (const s of this.manifest.state) state[s.name] = new Float32Array(batch * s.size);
      return state;
    }
    const out = await this._run('init', {z: this._tensor('float32', z, [batch, this.latentSize])});
    for (const s of this.manifest.state) state[s.name] = out[s.name].data;
    return state;
  }

  _condFeeds(feeds, z, labels, batch) {
    if (this.latentSize > 0) feeds.z = this._tensor('float32', z, [batch, this.latentSize]);
    if (this.numClasses > 0) feeds.label = this._tensor('int64', labels, [batch]);
    return feeds;
  }

  /** One decoder step for `batch` rows: step outputs as arrays, and `state` the new state. */
  async _step(x, state, z, labels, batch) {
    const feeds = {x: this._tensor('float32', x, [batch, 5])};
    for (const s of this.manifest.state) feeds[s.name] = this._tensor('float32', state[s.name], [batch, s.size]);
    const out = await this._run('step', this._condFeeds(feeds, z, labels, batch));
    const result = {state: {}};
    for (const name of [...MIXTURE_OUTPUTS, 'pen_logits']) result[name] = out[name].data;
    for (const s of this.manifest.state) result.state[s.name] = out['next_' + s.name].data;
    return result;
  }

  /** The state after reading stroke-5 rows `xs` (flat, batch x T x 5) from `state`. */
  async _read(xs, steps, state, z, labels, batch) {
    if (steps === 0) return state;
    if (this.sessions.read) {
      const feeds = {xs: this._tensor('float32', xs, [batch, steps, 5])};
      for (const s of this.manifest.state) feeds[s.name] = this._tensor('float32', state[s.name], [batch, s.size]);
      const out = await this._run('read', this._condFeeds(feeds, z, labels, batch));
      return Object.fromEntries(this.manifest.state.map((s) => [s.name, out['next_' + s.name].data]));
    }
    for (let t = 0; t < steps; t++) {
      const xt = new Float32Array(batch * 5);
      for (let i = 0; i < batch; i++) xt.set(xs.subarray((i * steps + t) * 5, (i * steps + t + 1) * 5), 5 * i);
      state = (await this._step(xt, state, z, labels, batch)).state;
    }
    return state;
  }

  /**
   * The decoder ready to continue `prefix` `n` times (as `models.decoding.prime`): it reads
   * the start token and every row of the prefix but the last, whose row is the first input
   * of the ending. Endings that start alike (one z, one label) are read once and copied.
   */
  async _prime(prefix, n, zFrom, label, maxLen, rng) {
    const s3 = validateStroke3(prefix, 'prefix');
    const limit = maxLen === undefined ? this.maxLen : checkCount(maxLen, 'maxLen');
    if (s3.length >= limit) {
      throw new SketchError(`prefix has ${s3.length} points; it must be shorter than maxLen=${limit} to leave room for an ending`);
    }
    if (zFrom !== 'prefix' && zFrom !== 'prior') throw new SketchError(`zFrom must be 'prefix' or 'prior', got ${JSON.stringify(zFrom)}`);
    const labels = this._labels(label, n);
    const rows = stroke3ToStroke5(toModelUnits(s3, this.scaleFactor));
    const L = this.latentSize;
    let z = null;
    let alike = labels === null || labels.every((v) => v === labels[0]);
    if (L > 0 && zFrom === 'prefix') {
      const [mu] = this.kind === 'sketch-rnn' ? await this.encode([s3]) : await this.embed([s3]);
      z = tileArray(mu, n);
    } else if (L > 0) {
      z = Float32Array.from({length: n * L}, () => rng.normal());
      alike = false;
    }
    const xs = flatten([START_TOKEN, ...rows.slice(0, -1)], 5);
    const batch = alike ? 1 : n;
    const zb = z && z.subarray(0, batch * L);
    const lb = labels && labels.slice(0, batch);
    let state = await this._read(tileArray(xs, batch), rows.length, await this._initialState(zb, batch), zb, lb, batch);
    if (alike) state = Object.fromEntries(Object.entries(state).map(([k, v]) => [k, tileArray(v, n)]));
    return {s3, x: tile(rows[rows.length - 1], n), state, z, labels, room: limit - s3.length};
  }

  /**
   * Run the decoder from inputs `x` (flat, batch x 5) until every sketch ends (at most
   * `maxLen` points each); each sketch leaves the batch at its end, as `models.decoding.draw`.
   * Returns per sketch its stroke-5 rows (model units) without the end row.
   */
  async _draw(x, state, z, labels, batch, maxLen, tau, penTau, rng, minStrokes = 0) {
    const M = this.numMixtures;
    const L = this.latentSize;
    const rows = Array.from({length: batch}, () => []);
    const strokes = new Array(batch).fill(0);
    let active = Array.from({length: batch}, (_, i) => i);
    for (let t = 0; t < maxLen && active.length; t++) {
      const out = await this._step(x, state, z, labels, active.length);
      const going = [];
      const next = [];
      active.forEach((owner, i) => {
        const point = samplePoint(out, i, M, tau, penTau, rng, strokes[owner] >= minStrokes);
        if (point[4] === 1) return;
        strokes[owner] += point[3];
        rows[owner].push(point);
        going.push(i);
        next.push(point);
      });
      state = out.state;
      if (going.length < active.length) {
        state = Object.fromEntries(this.manifest.state.map((s) => [s.name, pick(state[s.name], going, s.size)]));
        z = z && pick(z, going, L);
        labels = labels && BigInt64Array.from(going, (i) => labels[i]);
        active = going.map((i) => active[i]);
      }
      x = flatten(next, 5);
    }
    return rows;
  }

  _rowsToPixels(rows) {
    return toPixels(rows.map((r) => [r[0], r[1], r[3]]), this.scaleFactor);
  }
}

// ------------------------------------------------------------------------------ small helpers

function isVector(v) {
  return ArrayBuffer.isView(v) || (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number'));
}

function flatten(vectors, width) {
  const out = new Float32Array(vectors.length * width);
  vectors.forEach((v, i) => out.set(v, i * width));
  return out;
}

function tile(row, n) {
  return flatten(Array(n).fill(row), row.length);
}

function tileArray(a, n) {
  const out = new a.constructor(a.length * n);
  for (let i = 0; i < n; i++) out.set(a, i * a.length);
  return out;
}

function pick(flat, rows, width) {
  const out = new flat.constructor(rows.length * width);
  rows.forEach((r, i) => out.set(flat.subarray(r * width, (r + 1) * width), i * width));
  return out;
}

function extent(s3) {
  let x = 0;
  let y = 0;
  let lo = [Infinity, Infinity];
  let hi = [-Infinity, -Infinity];
  for (const [dx, dy] of s3) {
    x += dx;
    y += dy;
    lo = [Math.min(lo[0], x), Math.min(lo[1], y)];
    hi = [Math.max(hi[0], x), Math.max(hi[1], y)];
  }
  return Math.max(hi[0] - lo[0], hi[1] - lo[1]);
}
