// node node_harness.mjs JOBS.json: run the jobs (harness.mjs) with sketchrnn.js on
// onnxruntime-node and print the results as one JSON line.
import {readFileSync} from 'node:fs';

import * as sk from '../../src/sketchrnn/web/static/sketchrnn.js';
import {runJobs} from './harness.mjs';

const jobs = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const results = await runJobs(sk, jobs, {sessionOptions: {intraOpNumThreads: 1}});
process.stdout.write(JSON.stringify(results) + '\n');
