// Unit tests of sketchrnn.js that need no model: the generator, eq. 8 sampling, units,
// latents, the manifest's checks, SHA-256, drawings. Run: node --test tests/js/
// (tests/js/test_node_unit.py runs them from pytest). The model-level checks against
// PyTorch and @magenta/sketch are tests/js/test_parity.py.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {createHash} from 'node:crypto';

import {
  FORMAT_VERSION,
  ModelFileError,
  Random,
  SketchError,
  checkTemperature,
  interpolateLatents,
  mixturePdf,
  renderImage,
  samplePoint,
  sha256,
  sha256Hex,
  toModelUnits,
  toPixels,
  validateManifest,
  validateStroke3,
} from '../../src/sketchrnn/web/static/sketchrnn.js';

const mean = (xs) => xs.reduce((s, v) => s + v, 0) / xs.length;
const variance = (xs) => {
  const m = mean(xs);
  return xs.reduce((s, v) => s + (v - m) ** 2, 0) / (xs.length - 1);
};

// ------------------------------------------------------------------------------ the generator

test('a seed gives the same numbers, another seed others', () => {
  const draw = (seed) => Array.from({length: 8}, () => new Random(seed)).map((r) => r.uniform());
  const a = new Random(7);
  const b = new Random(7);
  const c = new Random(8);
  const xs = Array.from({length: 100}, () => a.uniform());
  assert.deepEqual(xs, Array.from({length: 100}, () => b.uniform()));
  assert.notDeepEqual(xs, Array.from({length: 100}, () => c.uniform()));
  assert.equal(new Set(draw(1)).size, 1);
  // Seeds past 2^32 are not folded onto small ones.
  assert.notEqual(new Random(2 ** 32 + 5).uniform(), new Random(5).uniform());
  assert.notEqual(new Random().uniform(), new Random().uniform());
});

test('uniform and normal draws have the right moments', () => {
  const rng = new Random(1);
  const n = 200000;
  const u = Array.from({length: n}, () => rng.uniform());
  assert.ok(u.every((v) => v >= 0 && v < 1));
  // Bounds of 5 standard errors: a correct generator fails them about once in 10^6 seeds.
  assert.ok(Math.abs(mean(u) - 0.5) < 5 * Math.sqrt(1 / 12 / n));
  const z = Array.from({length: n}, () => rng.normal());
  assert.ok(Math.abs(mean(z)) < 5 / Math.sqrt(n));
  assert.ok(Math.abs(variance(z) - 1) < 5 * Math.sqrt(2 / n));
  const tail = z.filter((v) => Math.abs(v) > 1.959964).length / n; // 5% two-sided
  assert.ok(Math.abs(tail - 0.05) < 5 * Math.sqrt(0.05 * 0.95 / n));
});

test('a bad seed is refused', () => {
  for (const seed of [-1, 1.5, NaN, '3', 2 ** 60]) assert.throws(() => new Random(seed), SketchError);
});

// ------------------------------------------------------------------------------ eq. 8

/** Step outputs for one row of a mixture of `m` components. */
function mixture({logPi, muX, muY, sx, sy, rho, pen}) {
  return {
    log_pi: Float32Array.from(logPi),
    mu_x: Float32Array.from(muX),
    mu_y: Float32Array.from(muY),
    log_sigma_x: Float32Array.from(sx, Math.log),
    log_sigma_y: Float32Array.from(sy, Math.log),
    rho: Float32Array.from(rho),
    pen_logits: Float32Array.from(pen),
  };
}

const TWO = mixture({
  logPi: [Math.log(0.3), Math.log(0.7)],
  muX: [-4, 2],
  muY: [1, -3],
  sx: [0.5, 2],
  sy: [1.5, 0.25],
  rho: [0.6, -0.8],
  pen: [1.0, 0.2, -1.0],
});

test('temperature 0 is greedy: the likeliest component, its mean, the likeliest pen', () => {
  const point = samplePoint(TWO, 0, 2, 0, 0, new Random(0));
  assert.deepEqual(point, [2, -3, 1, 0, 0]);
});

test('eq. 8: pi and pen by softmax(logits / tau), variances times tau, rho kept', () => {
  for (const tau of [0.25, 1, 2]) {
    const rng = new Random(3);
    const n = 60000;
    const points = Array.from({length: n}, () => samplePoint(TWO, 0, 2, tau, tau, rng));
    const pdf = mixturePdf(TWO, tau);
    // Component 1 is the points near its mean (the two are far apart for small tau; use the
    // pen instead, whose probabilities are exact, and the moments of the offsets).
    const penFreq = [2, 3, 4].map((k) => points.filter((p) => p[k] === 1).length / n);
    pdf.pen.forEach((p, k) => assert.ok(Math.abs(penFreq[k] - p) < 5 * Math.sqrt(p * (1 - p) / n), `tau ${tau} pen ${k}`));
    const [p0, p1] = pdf.pi;
    const meanX = p0 * -4 + p1 * 2;
    const varX = p0 * (0.25 * tau + 16) + p1 * (4 * tau + 4) - meanX ** 2;
    const xs = points.map((p) => p[0]);
    assert.ok(Math.abs(mean(xs) - meanX) < 5 * Math.sqrt(varX / n), `tau ${tau}: mean dx ${mean(xs)} vs ${meanX}`);
    assert.ok(Math.abs(variance(xs) / varX - 1) < 0.05, `tau ${tau}: var dx ${variance(xs)} vs ${varX}`);
  }
});

test('within a component the offsets have sigma * sqrt(tau) and correlation rho', () => {
  const one = mixture({logPi: [0], muX: [1], muY: [-2], sx: [2], sy: [0.5], rho: [-0.7], pen: [0, 0, 0]});
  const tau = 0.5;
  const rng = new Random(11);
  const n = 60000;
  const pts = Array.from({length: n}, () => samplePoint(one, 0, 1, tau, 1, rng));
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  assert.ok(Math.abs(Math.sqrt(variance(xs)) - 2 * Math.sqrt(tau)) < 0.02);
  assert.ok(Math.abs(Math.sqrt(variance(ys)) - 0.5 * Math.sqrt(tau)) < 0.005);
  const mx = mean(xs);
  const my = mean(ys);
  const cov = xs.reduce((s, x, i) => s + (x - mx) * (ys[i] - my), 0) / (n - 1);
  assert.ok(Math.abs(cov / Math.sqrt(variance(xs) * variance(ys)) + 0.7) < 0.01);
  // A pen temperature of its own: with tau_pen 0 the pen is greedy while offsets vary.
  const greedyPen = samplePoint(TWO, 0, 2, 1, 0, new Random(1));
  assert.deepEqual(greedyPen.slice(2), [1, 0, 0]);
});

test('mixturePdf: probabilities that sum to one, sigmas scaled by sqrt(tau)', () => {
  const pdf = mixturePdf(TWO, 0.5);
  assert.ok(Math.abs(pdf.pi.reduce((s, v) => s + v, 0) - 1) < 1e-12);
  assert.ok(Math.abs(pdf.sigma_x[1] - 2 * Math.sqrt(0.5)) < 1e-6);
  const sharp = mixturePdf(TWO, 0.5).pi[1];
  assert.ok(sharp > mixturePdf(TWO, 1).pi[1]); // a lower temperature sharpens pi
});

test('temperatures must be finite and >= 0', () => {
  assert.equal(checkTemperature(0), 0);
  for (const bad of [-0.1, NaN, Infinity, '0.5', null]) {
    assert.throws(() => checkTemperature(bad), (e) => e instanceof SketchError && /temperature must be >= 0/.test(e.message));
  }
});

// ------------------------------------------------------------------------------ units

test('pixels <-> model units divide and multiply the offsets in float32', () => {
  const s3 = [[10, -4, 0], [3.3, 7, 1]];
  const units = toModelUnits(s3, 2.5);
  assert.deepEqual(units[0], [4, -1.6000000238418579, 0]);
  assert.equal(units[1][2], 1);
  const back = toPixels(units, 2.5);
  back.flat().forEach((v, i) => assert.ok(Math.abs(v - s3.flat()[i]) < 1e-5));
  assert.equal(Math.fround(units[1][0]), units[1][0]);
});

test('a drawing is checked and named in the error', () => {
  assert.deepEqual(validateStroke3([[1, 2, 1]]), [[1, 2, 1]]);
  const cases = [
    [[], /prefix: empty drawing/],
    [[[1, 2]], /prefix: row 0 must be \[dx, dy, pen\]/],
    [[[1, NaN, 0]], /prefix: row 0 holds NaN/],
    [[[1, 2, 0.5]], /prefix: row 0: pen must be 0 or 1/],
    ['abc', /prefix: expected an array/],
  ];
  for (const [s3, message] of cases) assert.throws(() => validateStroke3(s3, 'prefix'), message);
});

// ------------------------------------------------------------------------------ latents

test('interpolation: endpoints, norms on the slerp path, the linear path, one step', () => {
  const a = [3, 0, 0];
  const b = [0, 3, 0];
  const path = interpolateLatents(a, b, 5, 'slerp');
  assert.equal(path.length, 5);
  assert.deepEqual(Array.from(path[0]), a);
  path[4].forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-6));
  for (const z of path) assert.ok(Math.abs(Math.hypot(...z) - 3) < 1e-5);
  const mid = interpolateLatents(a, b, 3, 'linear')[1];
  assert.deepEqual(Array.from(mid), [1.5, 1.5, 0]);
  assert.deepEqual(Array.from(interpolateLatents(a, b, 1)[0]), a);
  // Parallel vectors: the sine vanishes, slerp falls back to the straight line.
  const par = interpolateLatents([1, 1], [2, 2], 3, 'slerp');
  assert.deepEqual(Array.from(par[1]), [1.5, 1.5]);
  assert.throws(() => interpolateLatents(a, b, 3, 'cubic'), /method must be 'slerp' or 'linear'/);
  assert.throws(() => interpolateLatents(a, b, 0), /steps must be a positive integer/);
});

// ------------------------------------------------------------------------------ SHA-256

test('SHA-256 without WebCrypto equals WebCrypto and node:crypto', async () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 1000, 100003]) {
    const bytes = Uint8Array.from({length: n}, (_, i) => (i * 131 + 7) & 255);
    const hex = Buffer.from(sha256(bytes)).toString('hex');
    assert.equal(hex, createHash('sha256').update(bytes).digest('hex'), `${n} bytes`);
    assert.equal(await sha256Hex(bytes), hex);
  }
});

// ------------------------------------------------------------------------------ the manifest

function graph(inputs, outputs) {
  const spec = (name) => ({name, dtype: name === 'label' || name === 'lengths' ? 'int64' : 'float32', shape: ['batch', 5]});
  return {file: 'g.onnx', bytes: 10, sha256: 'a'.repeat(64), inputs: inputs.map(spec), outputs: outputs.map(spec)};
}

const MIX = ['log_pi', 'mu_x', 'mu_y', 'log_sigma_x', 'log_sigma_y', 'rho', 'pen_logits'];

function goodManifest() {
  return {
    format: 'sketchrnn-portable',
    format_version: 1,
    kind: 'sketch-rnn',
    name: 'cat',
    config: {},
    units: {scale_factor: 20, classes: ['cat', 'dog']},
    max_len: 100,
    num_mixtures: 20,
    latent_size: 8,
    num_classes: 2,
    image: null,
    state: [{name: 'h', size: 4}, {name: 'c', size: 4}],
    capabilities: ['sample', 'complete'],
    dtype: 'float32',
    graphs: {
      step: graph(['x', 'h', 'c', 'z', 'label'], [...MIX, 'next_h', 'next_c']),
      init: graph(['z'], ['h', 'c']),
      encode: graph(['strokes', 'lengths'], ['mu', 'sigma_hat']),
    },
  };
}

test('a manifest of the contract passes', () => {
  const m = goodManifest();
  assert.equal(validateManifest(m), m);
});

test('hostile manifests are refused with the field and the reason', () => {
  const cases = [
    [(m) => (m.format = 'onnx'), /not a sketchrnn portable model/],
    [(m) => (m.format_version = FORMAT_VERSION + 1), /format_version 2 is newer than this sketchrnn.js reads \(1\)/],
    [(m) => (m.format_version = '1'), /field "format_version" must be a positive integer/],
    [(m) => delete m.max_len, /missing field "max_len"/],
    [(m) => (m.max_len = -3), /field "max_len" must be a positive integer, got -3/],
    [(m) => (m.kind = 'gan'), /field "kind" must be one of/],
    [(m) => (m.units.scale_factor = 0), /units.scale_factor" must be a positive number/],
    [(m) => (m.units.classes = ['cat']), /names 1 classes, num_classes is 2/],
    [(m) => (m.state = []), /field "state" must be a list of \{name, size\}/],
    [(m) => (m.dtype = 'int8'), /field "dtype"/],
    [(m) => delete m.graphs.step, /missing the "step" graph/],
    [(m) => delete m.graphs.init, /missing the "init" graph/],
    [(m) => (m.graphs.step.file = '../../etc/passwd.onnx'), /graphs.step.file must be a plain file name/],
    [(m) => (m.graphs.step.file = 'step.bin'), /graphs.step.file must be a plain file name ending in .onnx/],
    [(m) => (m.graphs.step.sha256 = 'XYZ'), /graphs.step.sha256 must be 64 lowercase hex digits/],
    [(m) => (m.graphs.step.bytes = 0), /graphs.step.bytes must be a positive integer/],
    [(m) => m.graphs.step.inputs.pop(), /graphs.step.inputs are \[x, h, c, z\]; this runtime calls the step graph with \[x, h, c, z, label\]/],
    [(m) => (m.graphs.init.outputs = []), /graphs.init.outputs are \[\]/],
    [(m) => (m.graphs.extra = graph([], [])), /unknown graph\(s\) extra/],
    [(m) => (m.kind = 'sketchembednet'), /field "image" must be/],
  ];
  for (const [spoil, message] of cases) {
    const m = goodManifest();
    spoil(m);
    assert.throws(() => validateManifest(m, 'x/manifest.json'), (e) => e instanceof ModelFileError && e.message.startsWith('x/manifest.json: ') && message.test(e.message), String(message));
  }
  assert.throws(() => validateManifest([], 'm.json'), /m.json: not a JSON object/);
});

// ------------------------------------------------------------------------------ images

test('a drawing is rendered fitted, centred, with a margin, ink 1', () => {
  const square = [[0, 0, 0], [10, 0, 0], [0, 10, 0], [-10, 0, 0], [0, -10, 1]];
  const {width, height, data} = renderImage(square, 28);
  assert.equal(width, 28);
  assert.equal(height, 28);
  // 10% of 28 rounded: 3 pixels of margin, so the outline runs along x, y = 3 and 25, between
  // pixel centres: the two pixels beside it are half a pixel away and get 0.75 of ink.
  const at = (r, c) => data[r * 28 + c];
  assert.equal(at(0, 0), 0);
  assert.equal(at(14, 14), 0);
  for (const [r, c] of [[2, 14], [3, 14], [14, 2], [14, 3], [24, 14], [25, 14]]) assert.equal(at(r, c), Math.fround(191 / 255));
  assert.ok(data.every((v) => v === Math.fround(Math.round(v * 255) / 255)), 'quantised to 8 bits');
  assert.throws(() => renderImage([], 28), /empty drawing/);
});
