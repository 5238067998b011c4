// Teach by example in the browser: the few-shot classifier of sketchrnn.fewshot (and the
// server's /api/classify), a logistic regression on L2-normalised embeddings with an L2
// penalty, fitted as scikit-learn's LogisticRegression(C) fits it: binary (one weight vector)
// for two concepts, multinomial for more, intercepts not penalised. Written here because a
// page without a bundler cannot import a numerical package; tests/web/test_page_helpers.py
// checks its probabilities against scikit-learn's.
//
// With a handful of examples (n rows) the weights lie in the span of the examples (the
// representer theorem: the penalty pulls every other direction to zero), so the fit is over
// n coefficients per class, not D, solved by Newton's method: a few exact steps.

/** Each row divided by its Euclidean norm (sketchrnn.embeddings.l2_normalise). */
export function l2Normalise(vectors) {
  return vectors.map((v) => {
    const norm = Math.max(Math.hypot(...v), 1e-12);
    return Array.from(v, (x) => x / norm);
  });
}

const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);

/**
 * Fit on `examples` (rows, already L2-normalised) with integer `labels` in [0, K): a model
 * whose predict(queries) gives each query's K probabilities. `C` is the inverse penalty.
 */
export function fitLogistic(examples, labels, { C = 1.0, iterations = 50 } = {}) {
  const n = examples.length;
  const K = Math.max(...labels) + 1;
  if (K < 2) throw new Error("teach at least two concepts");
  const free = K === 2 ? [1] : [...Array(K).keys()]; // binary: class 0 is the reference
  const F = free.length;
  const G = examples.map((a) => examples.map((b) => dot(a, b)));
  // theta: for each free class f, n coefficients then its intercept.
  const m = F * (n + 1);
  let theta = new Float64Array(m);
  const logits = (th, gram) => gram.map((row) => {
    const z = new Float64Array(K);
    free.forEach((k, f) => {
      let s = th[f * (n + 1) + n];
      for (let j = 0; j < n; j++) s += th[f * (n + 1) + j] * row[j];
      z[k] = s;
    });
    return z;
  });
  const softmax = (z) => {
    const top = Math.max(...z);
    const e = Array.from(z, (v) => Math.exp(v - top));
    const sum = e.reduce((s, v) => s + v, 0);
    return e.map((v) => v / sum);
  };
  const objective = (th) => {
    let loss = 0;
    logits(th, G).forEach((z, i) => {
      const top = Math.max(...z);
      loss += top + Math.log(z.reduce((s, v) => s + Math.exp(v - top), 0)) - z[labels[i]];
    });
    let penalty = 0;
    for (let f = 0; f < F; f++) {
      const a = th.subarray(f * (n + 1), f * (n + 1) + n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) penalty += a[i] * G[i][j] * a[j];
    }
    return C * loss + 0.5 * penalty;
  };
  for (let it = 0; it < iterations; it++) {
    const P = logits(theta, G).map(softmax);
    const grad = new Float64Array(m);
    const H = Array.from({ length: m }, () => new Float64Array(m));
    // d objective / d z_ik = C (P_ik - Y_ik); z_ik = sum_j a_kj G_ij + b_k.
    const dz = P.map((p, i) => free.map((k) => C * (p[k] - (labels[i] === k ? 1 : 0))));
    free.forEach((_, f) => {
      const base = f * (n + 1);
      for (let j = 0; j < n; j++) {
        let g = 0;
        for (let i = 0; i < n; i++) g += G[i][j] * (dz[i][f] + theta[base + i]);
        grad[base + j] = g;
      }
      grad[base + n] = dz.reduce((s, d) => s + d[f], 0);
    });
    // Hessian: C sum_i dz_i/dtheta^T W_i dz_i/dtheta plus the penalty's G blocks.
    for (let i = 0; i < n; i++) {
      const row = [...G[i], 1]; // dz_ik / d(a_k, b_k)
      free.forEach((k, f) => {
        free.forEach((l, g) => {
          const w = C * (P[i][k] * ((k === l ? 1 : 0) - P[i][l]));
          if (w === 0) return;
          for (let p = 0; p <= n; p++) {
            for (let q = 0; q <= n; q++) H[f * (n + 1) + p][g * (n + 1) + q] += w * row[p] * row[q];
          }
        });
      });
    }
    for (let f = 0; f < F; f++) {
      for (let p = 0; p < n; p++) for (let q = 0; q < n; q++) H[f * (n + 1) + p][f * (n + 1) + q] += G[p][q];
    }
    const step = solve(H, grad);
    const before = objective(theta);
    let t = 1;
    let next = theta.map((v, i) => v - t * step[i]);
    while (objective(next) > before && t > 1e-8) {
      t /= 2;
      next = theta.map((v, i) => v - t * step[i]);
    }
    const moved = Math.max(...next.map((v, i) => Math.abs(v - theta[i])));
    theta = next;
    if (moved < 1e-12) break;
  }
  return {
    classes: K,
    predict(queries) {
      const gram = queries.map((q) => examples.map((x) => dot(x, q)));
      return logits(theta, gram).map(softmax);
    },
  };
}

/** Solve H x = g (symmetric positive semi-definite H) by Gaussian elimination with a tiny
 * ridge: directions the data cannot tell apart (two equal examples) get no step. */
function solve(H, g) {
  const m = g.length;
  const trace = H.reduce((s, row, i) => s + row[i], 0);
  const A = H.map((row, i) => {
    const r = Array.from(row);
    r[i] += 1e-10 * (trace / m + 1);
    r.push(g[i]);
    return r;
  });
  for (let c = 0; c < m; c++) {
    let pivot = c;
    for (let r = c + 1; r < m; r++) if (Math.abs(A[r][c]) > Math.abs(A[pivot][c])) pivot = r;
    [A[c], A[pivot]] = [A[pivot], A[c]];
    if (Math.abs(A[c][c]) < 1e-300) continue;
    for (let r = c + 1; r < m; r++) {
      const k = A[r][c] / A[c][c];
      if (k !== 0) for (let q = c; q <= m; q++) A[r][q] -= k * A[c][q];
    }
  }
  const x = new Float64Array(m);
  for (let r = m - 1; r >= 0; r--) {
    let s = A[r][m];
    for (let q = r + 1; q < m; q++) s -= A[r][q] * x[q];
    x[r] = Math.abs(A[r][r]) < 1e-300 ? 0 : s / A[r][r];
  }
  return x;
}
