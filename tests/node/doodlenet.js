// Reference runtime check for the judge: DoodleNet's own TF.js layers files run by
// TensorFlow.js (@tensorflow/tfjs, which @magenta/sketch brings) under Node.
//
// Usage (NODE_PATH must point at a node_modules folder holding @tensorflow/tfjs):
//   node doodlenet.js MODEL_DIR IMAGES.json
//       IMAGES.json is a list of 28x28 bitmaps (rows of floats in [0, 1], 1 = ink). Prints
//       one JSON line {"probs": [[345 floats], ...]}: the model's softmax output per bitmap.
'use strict';

const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

tf.setBackend('cpu');

async function main(dir, imagesPath) {
  const doc = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const specs = [].concat(...doc.weightsManifest.map((g) => g.weights));
  const shards = [].concat(...doc.weightsManifest.map((g) => g.paths));
  const bytes = Buffer.concat(shards.map((p) => fs.readFileSync(path.join(dir, p))));
  const data = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
  const model = await tf.loadLayersModel(tf.io.fromMemory(doc.modelTopology, specs, data));
  const images = JSON.parse(fs.readFileSync(imagesPath, 'utf8'));
  const x = tf.tensor(images).reshape([images.length, 28, 28, 1]);
  const probs = model.predict(x).arraySync();
  process.stdout.write(JSON.stringify({probs}) + '\n');
}

const [dir, imagesPath] = process.argv.slice(2);
if (!imagesPath) {
  process.stderr.write('usage: doodlenet.js MODEL_DIR IMAGES.json\n');
  process.exit(2);
}
main(dir, imagesPath).catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
