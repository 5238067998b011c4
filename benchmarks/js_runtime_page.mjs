// The measurements of benchmarks/js_runtime.py, run in the page: sketchrnn.js on
// onnxruntime-web, and @magenta/sketch (its browser bundle, global `ms`) doing the same work
// the way its demos do (one sketch at a time). Times are medians of `reps` runs, in ms.

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function timed(fn) {
  const t0 = performance.now();
  const out = await fn();
  return [performance.now() - t0, out];
}

/** sketchrnn.js: per step, first stroke of a continuation, a whole sketch, nine endings. */
export async function benchOurs(sk, ort, url, {prefix, steps, reps, temperature, zFrom}) {
  const [loadMs, model] = await timed(() => sk.SketchModel.load(url, {ort}));
  const rows = [sk.START_TOKEN, ...sk.stroke3ToStroke5(prefix)];
  while (rows.length < steps) rows.push(...rows.slice(1, steps - rows.length + 1));
  const z = model.latentSize ? {z: new Float32Array(model.latentSize)} : {};
  await model.mixtures(rows.slice(0, 8), z); // warm-up: first runs allocate
  await model.complete(prefix, 9, {temperature, zFrom, seed: 0, maxLen: prefix.length + 8});
  const step = [];
  const read = [];
  const first = [];
  const whole = [];
  const wholePoints = [];
  const nine = [];
  const ninePoints = [];
  for (let r = 0; r < reps; r++) {
    const [ms] = await timed(() => model.mixtures(rows.slice(0, steps), z));
    step.push(ms / steps);
    // What a continuation costs before its first step: the prefix's encoding (a VAE) and the
    // decoder reading it (the read graph), as stream() and complete() do.
    const [readMs] = await timed(() => model._prime(prefix, 1, zFrom, undefined, undefined, new sk.Random(r)));
    read.push(readMs);
    const [firstMs] = await timed(async () => {
      for await (const row of model.stream(prefix, {temperature, zFrom, seed: r})) if (row[2] === 1) break;
    });
    first.push(firstMs);
    const [wholeMs, [sketch]] = await timed(() => model.sample(1, {temperature, seed: r}));
    whole.push(wholeMs);
    wholePoints.push(sketch.length);
    const [nineMs, endings] = await timed(() => model.complete(prefix, 9, {temperature, zFrom, seed: r}));
    nine.push(nineMs);
    ninePoints.push(endings.reduce((s, e) => s + e.length - prefix.length, 0));
  }
  await model.release();
  return {
    load: loadMs,
    step: median(step),
    read_prefix: median(read),
    first_stroke: median(first),
    whole_sketch: median(whole),
    whole_points: median(wholePoints),
    nine_endings: median(nine),
    nine_points: median(ninePoints),
  };
}

/** @magenta/sketch on the same model (its JSON): the same measurements, one sketch at a time. */
export async function benchMagenta(ms, modelJson, {prefix, steps, reps, temperature, backend}) {
  if (backend !== 'default') await ms.tf.setBackend(backend);
  await ms.tf.ready();
  const [info, shapes, weights] = modelJson;
  const model = new ms.SketchRNN('unused');
  model.instantiateFromJSON(info, shapes, weights);
  model.initialized = true;
  model.setPixelFactor(1.0);
  const maxLen = info.max_seq_len || 250;
  const rows = [model.zeroInput(), ...prefix.map(([dx, dy, p]) => [dx, dy, 1 - p, p, 0])];
  const feed = (state, list) => {
    for (const row of list) state = model.update(row, state);
    return state;
  };
  const drawFrom = (state, row, limit) => {
    let n = 0;
    const stop = (r) => r[4] === 1;
    for (let t = 0; t < limit; t++) {
      state = model.update(row, state);
      row = model.sample(model.getPDF(state, temperature));
      if (stop(row)) break;
      n++;
    }
    return n;
  };
  // warm-up
  drawFrom(feed(model.zeroState(), rows), rows[rows.length - 1], 8);
  const step = [];
  const first = [];
  const whole = [];
  const wholePoints = [];
  const nine = [];
  const ninePoints = [];
  const stepRows = [];
  while (stepRows.length < steps) stepRows.push(...rows.slice(0, steps - stepRows.length));
  for (let r = 0; r < reps; r++) {
    let [msStep] = await timed(() => {
      let state = model.zeroState();
      for (const row of stepRows) {
        state = model.update(row, state);
        model.getPDF(state, 1.0);
      }
    });
    step.push(msStep / steps);
    const [firstMs] = await timed(() => {
      // The prefix: the start token, then every row but the last; the last row is the first
      // input of the ending (as sketchrnn.js and the Python library read it).
      let state = feed(model.zeroState(), rows.slice(0, -1));
      let row = rows[rows.length - 1];
      for (let t = 0; t < maxLen; t++) {
        state = model.update(row, state);
        row = model.sample(model.getPDF(state, temperature));
        if (row[3] === 1 || row[4] === 1) break;
      }
    });
    first.push(firstMs);
    const [wholeMs, points] = await timed(() => drawFrom(model.zeroState(), model.zeroInput(), maxLen));
    whole.push(wholeMs);
    wholePoints.push(points);
    const [nineMs, total] = await timed(() => {
      const primed = feed(model.zeroState(), rows.slice(0, -1));
      let sum = 0;
      for (let k = 0; k < 9; k++) sum += drawFrom(model.copyState(primed), rows[rows.length - 1], maxLen - prefix.length);
      return sum;
    });
    nine.push(nineMs);
    ninePoints.push(total);
  }
  return {
    backend: ms.tf.getBackend(),
    step: median(step),
    first_stroke: median(first),
    whole_sketch: median(whole),
    whole_points: median(wholePoints),
    nine_endings: median(nine),
    nine_points: median(ninePoints),
  };
}
