// Reference runtime check for magenta.js sketch-rnn models (@magenta/sketch 0.2.0).
//
// Usage (NODE_PATH must point at a node_modules folder holding @magenta/sketch):
//   node magenta_pdf.js pdf MODEL.json STROKES.json
//       STROKES.json is a list of stroke-5 rows [dx, dy, p1, p2, p3] in pixels, the first
//       usually the start token [0, 0, 1, 0, 0]. Starting from zeroState(), every row is fed
//       with update() and the mixture after it is read with getPDF(). Prints one JSON line:
//       {"steps": [{pi, mu_x, mu_y, sigma_x, sigma_y, rho, pen}, ...]} (one entry per row).
//   node magenta_pdf.js bench MODEL.json N MAX_LEN TEMPERATURE
//       Samples N sketches one at a time as the magenta.js demos do and prints
//       {"sketches": N, "seconds": s, "points": total, "each": [seconds of each sketch]}.
//   node magenta_pdf.js complete MODEL.json PREFIXES.json MAX_LEN TEMPERATURE
//       PREFIXES.json is a list of drawings, each a list of stroke-5 rows in pixels (no start
//       token). For each, as the magenta.js demos continue a drawing at a pen-up: update()
//       over the start token and the rows, then sample until the end (at most MAX_LEN
//       points). Prints {"first": [...], "whole": [...], "points": [...]}: seconds to the
//       end of the first sampled stroke (pen lifted or sketch ended) and to the end, and
//       the points sampled, per drawing.
//   node magenta_pdf.js sample MODEL.json N MAX_LEN TEMPERATURE
//       Samples N sketches one at a time as the demos do, getPDF(state, TEMPERATURE,
//       TEMPERATURE) (the same tau for the mixture weights and the pen), and prints
//       {"sketches": [[[dx, dy, p1, p2, p3], ...], ...]} in pixels, the end row left out.
//
// The pixel factor is set to 1 so that inputs are divided by exactly info.scale_factor (the
// package defaults to 2, halving every drawing), matching the Python side's units.
'use strict';

const fs = require('fs');
const ms = require('@magenta/sketch');

// tfjs picks WebGL in a browser; under plain Node only the pure-JS CPU backend exists.
ms.tf.setBackend('cpu');

function loadModel(path) {
  const [info, shapes, weights] = JSON.parse(fs.readFileSync(path, 'utf8'));
  const model = new ms.SketchRNN('file://' + path);
  // initialize() fetches a URL; the package builds the model from the parsed JSON with its
  // (TypeScript-private, JS-visible) instantiateFromJSON, which is what we call directly.
  model.instantiateFromJSON(info, shapes, weights);
  model.initialized = true;
  model.setPixelFactor(1.0);
  return model;
}

function pdfToJSON(pdf, m) {
  // getPDF's sigmaY slice runs past its 20 entries (a known quirk): cut every field to size.
  const take = (a, n) => Array.from(a.slice(0, n));
  return {
    pi: take(pdf.pi, m),
    mu_x: take(pdf.muX, m),
    mu_y: take(pdf.muY, m),
    sigma_x: take(pdf.sigmaX, m),
    sigma_y: take(pdf.sigmaY, m),
    rho: take(pdf.corr, m),
    pen: take(pdf.pen, 3),
  };
}

function runPDF(modelPath, strokesPath) {
  const model = loadModel(modelPath);
  const rows = JSON.parse(fs.readFileSync(strokesPath, 'utf8'));
  let state = model.zeroState();
  const steps = [];
  for (const row of rows) {
    state = model.update(row, state);
    // temperature 1 and softmax temperature 1: the model's own, untempered distribution.
    steps.push(pdfToJSON(model.getPDF(state, 1.0, 1.0), 20));
  }
  process.stdout.write(JSON.stringify({steps}) + '\n');
}

const since = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

function runBench(modelPath, n, maxLen, temperature) {
  const model = loadModel(modelPath);
  let points = 0;
  const each = [];
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < n; k++) {
    const start = process.hrtime.bigint();
    let state = model.zeroState();
    let row = model.zeroInput();
    for (let t = 0; t < maxLen; t++) {
      state = model.update(row, state);
      row = model.sample(model.getPDF(state, temperature));
      points++;
      if (row[4] === 1) break;
    }
    each.push(since(start));
  }
  const seconds = since(t0);
  process.stdout.write(JSON.stringify({sketches: n, seconds, points, each}) + '\n');
}

function runComplete(modelPath, prefixesPath, maxLen, temperature) {
  const model = loadModel(modelPath);
  const prefixes = JSON.parse(fs.readFileSync(prefixesPath, 'utf8'));
  const first = [], whole = [], points = [];
  for (const rows of prefixes) {
    const start = process.hrtime.bigint();
    let state = model.update(model.zeroInput(), model.zeroState());
    for (const r of rows) state = model.update(r, state);
    let firstAt = null, n = 0;
    for (let t = rows.length; t < maxLen; t++) {
      const row = model.sample(model.getPDF(state, temperature));
      n++;
      if (firstAt === null && (row[3] === 1 || row[4] === 1)) firstAt = since(start);
      if (row[4] === 1) break;
      state = model.update(row, state);
    }
    whole.push(since(start));
    first.push(firstAt === null ? whole[whole.length - 1] : firstAt);
    points.push(n);
  }
  process.stdout.write(JSON.stringify({first, whole, points}) + '\n');
}

// One sketch as its demos draw it: rows until the end-of-sketch pen (not included).
function drawOne(model, maxLen, temperature, softmaxTemperature) {
  let state = model.zeroState();
  let row = model.zeroInput();
  const rows = [];
  for (let t = 0; t < maxLen; t++) {
    state = model.update(row, state);
    row = model.sample(model.getPDF(state, temperature, softmaxTemperature));
    if (row[4] === 1) break;
    rows.push(row);
  }
  return rows;
}

function runSample(modelPath, n, maxLen, temperature) {
  const model = loadModel(modelPath);
  const sketches = [];
  for (let k = 0; k < n; k++) {
    sketches.push(drawOne(model, maxLen, temperature, temperature));
  }
  process.stdout.write(JSON.stringify({sketches}) + '\n');
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'pdf' && args.length === 2) {
  runPDF(args[0], args[1]);
} else if (mode === 'bench' && args.length === 4) {
  runBench(args[0], parseInt(args[1], 10), parseInt(args[2], 10), parseFloat(args[3]));
} else if (mode === 'complete' && args.length === 4) {
  runComplete(args[0], args[1], parseInt(args[2], 10), parseFloat(args[3]));
} else if (mode === 'sample' && args.length === 4) {
  runSample(args[0], parseInt(args[1], 10), parseInt(args[2], 10), parseFloat(args[3]));
} else {
  process.stderr.write(
      'usage: magenta_pdf.js pdf MODEL.json STROKES.json | bench MODEL.json N MAX_LEN TAU | ' +
      'complete MODEL.json PREFIXES.json MAX_LEN TAU | sample MODEL.json N MAX_LEN TAU\n');
  process.exit(2);
}
