// Jobs for sketchrnn.js, run the same way in Node (node_harness.mjs) and in Chromium (a page
// of test_parity.py imports this file): each job names a model folder and an operation; the
// results are plain JSON (typed arrays become lists, errors {error, message}).

/** Typed arrays and nested values as plain JSON values. */
function plain(value) {
  if (ArrayBuffer.isView(value)) return Array.from(value, Number);
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

async function runJob(sk, job, models, loadOptions) {
  const model = async () => {
    if (!models.has(job.model)) models.set(job.model, await sk.SketchModel.load(job.model, loadOptions));
    return models.get(job.model);
  };
  const o = job.options || {};
  switch (job.op) {
    case 'load': {
      const m = await sk.SketchModel.load(job.model, loadOptions);
      return {kind: m.kind, capabilities: m.capabilities};
    }
    case 'mixtures':
      return (await model()).mixtures(job.rows, o);
    case 'pdf': {
      const steps = await (await model()).mixtures(job.rows, o);
      return steps.map((s) => sk.mixturePdf(s, 1));
    }
    case 'sample':
      return (await model()).sample(job.n, o);
    case 'decode':
      return (await model()).decode(job.z, o);
    case 'complete':
      return (await model()).complete(job.prefix, job.n, o);
    case 'stream': {
      const rows = [];
      for await (const row of (await model()).stream(job.prefix, o)) rows.push(row);
      return rows;
    }
    case 'encode':
      return (await model()).encode(job.sketches, {withSigma: true});
    case 'embed':
      return (await model()).embed(job.items);
    case 'image':
      return (await model()).image(job.item).data;
    case 'imitate':
      return (await model()).imitate(job.item, job.n, o);
    case 'interpolate':
      return (await model()).interpolate(job.a, job.b, job.steps, o);
    case 'units':
      return {units: sk.toModelUnits(job.sketch, job.factor), pixels: sk.toPixels(job.sketch, job.factor)};
    default:
      throw new Error(`unknown job ${job.op}`);
  }
}

/** Run `jobs` in order with the module `sk` (sketchrnn.js); one result per job. */
export async function runJobs(sk, jobs, loadOptions = {}) {
  const models = new Map();
  const results = [];
  for (const job of jobs) {
    try {
      results.push(plain(await runJob(sk, job, models, loadOptions)));
    } catch (e) {
      results.push({error: e.name, message: e.message});
    }
  }
  return results;
}
