// Reference runtime check for sketch-rnn-js (the original sketch_rnn.js of magenta-demos),
// which runs both .gen.json and .vae.json models. No npm needed: numjs.js and sketch_rnn.js
// are loaded from the oracle folder.
//
// Usage:
//   node sketch_rnn_js.js ORACLE_DIR MODEL.json INPUT.json
//       INPUT.json is {"encode": [[dx, dy, p1, p2, p3], ...] or null,
//                      "rows": [[dx, dy, p1, p2, p3], ...]} in pixels.
//       For a VAE, "encode" (no start token) goes through encode_to_mu_sigma, and the
//       decoder starts from get_init_state_from_latent_vector(mu), reading z = mu with every
//       update(); for a gen model the decoder starts from zero_state(). Every row of "rows" is
//       fed with update() and the mixture after it is read with get_pdf(). Prints one JSON
//       line: {"mu": [...] | null, "sigma": [...] | null,
//              "steps": [{pi, mu_x, mu_y, sigma_x, sigma_y, rho, pen}, ...]}.
//
// The pixel factor is set to 1 so that inputs are divided by exactly info.scale_factor.
'use strict';

const fs = require('fs');
const vm = require('vm');

const [dir, modelPath, inputPath] = process.argv.slice(2);
if (!inputPath) {
  process.stderr.write('usage: sketch_rnn_js.js ORACLE_DIR MODEL.json INPUT.json\n');
  process.exit(2);
}
// sketch_rnn.js logs the model's info with console.log: keep stdout for our one line.
console.log = (...args) => process.stderr.write(args.join(' ') + '\n');
vm.runInThisContext(fs.readFileSync(dir + '/numjs.js', 'utf8'));
vm.runInThisContext(
    fs.readFileSync(dir + '/sketch_rnn.js', 'utf8') + '\nglobalThis.SketchRNN = SketchRNN;');

const model = new SketchRNN(JSON.parse(fs.readFileSync(modelPath, 'utf8')));
model.set_pixel_factor(1.0);
const input = JSON.parse(fs.readFileSync(inputPath, 'utf8'));
const vae = !(model.info.mode === 2 || model.info.mode === 'gen');

let mu = null, sigma = null, z = null, state;
if (vae) {
  const ms = model.encode_to_mu_sigma(input.encode);
  mu = ms[0].tolist();
  sigma = ms[1].tolist();
  z = mu;
  state = model.get_init_state_from_latent_vector(z);
} else {
  state = model.zero_state();
}
const steps = [];
for (const row of input.rows) {
  state = model.update(row, state, z);
  const [pi, muX, muY, sigmaX, sigmaY, corr, pen] = model.get_pdf(state);
  steps.push({
    pi: pi.tolist(),
    mu_x: muX.tolist(),
    mu_y: muY.tolist(),
    sigma_x: sigmaX.tolist(),
    sigma_y: sigmaY.tolist(),
    rho: corr.tolist(),
    pen: pen.tolist(),
  });
}
process.stdout.write(JSON.stringify({mu, sigma, steps}) + '\n');
