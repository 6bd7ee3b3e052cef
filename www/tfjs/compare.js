// Side by side in one browser session: this project's training step (the wasm package's
// `bench_train_step`, WebGPU through wgpu, on this thread) and TensorFlow.js 4.22 (pinned, from
// node_modules, in worker.js) training the identical models with the identical step (dcgan.js)
// on its webgpu and wasm backends (optionally webgl and cpu), one after the other. Each after a
// warm-up step; ms per step; a table with the ratios. Losses must be finite and weights must
// change, on both sides, or the run fails.
//
// Query: models (mnist32; comma-separated, page32 and dcgan64 too), backends (webgan,webgan-cpu,webgpu,wasm;
// also webgl, cpu; webgan-cpu is this project's fast CPU path in wasm; jax-webgpu and jax-wasm are
// jax-js 0.1.25, pinned, on its two fast devices, in jax-worker.js), reps (2: timed steps after the warm-up), profile (1: after the timing, one more
// TensorFlow.js step under tf.profile, its costliest kernels printed). Progress and outcome are in
// `window.benchResult` ({ done, lines, error }), as bench.html's, which `./build.sh compare`
// polls through WebDriver.

import { MODELS } from './dcgan.js';
import { cpuBench } from '../remote.js';

const status = document.getElementById('status');
const out = document.getElementById('rows');
const result = { done: false, lines: [], error: null, rows: [] };
window.benchResult = result;

const TFJS_VERSION = '4.22.0';
const BACKENDS = ['webgan', 'webgan-cpu', 'webgpu', 'wasm', 'webgl', 'cpu', 'jax-webgpu', 'jax-wasm'];
const METRIC_NAMES = ['D loss real', 'D(x)', 'D loss fake', 'D(G(z))', 'G loss', 'D(G(z)) after'];

function show(className, text) {
  status.className = `status ${className}`;
  status.textContent = text;
}

function line(text) {
  result.lines.push(text);
  out.textContent += text + '\n';
}

function fail(message) {
  result.error = message;
  result.done = true;
  show('error', message);
  document.body.dataset.bench = 'error';
  console.error(message);
}

function options() {
  const q = new URLSearchParams(location.search);
  const list = (name, fallback, allowed) => {
    const raw = (q.get(name) ?? '').trim();
    const items = raw ? raw.split(',').map((s) => s.trim()).filter(Boolean) : fallback;
    for (const i of items) if (!allowed.includes(i)) throw new Error(`${name}: "${i}" is not one of ${allowed.join(', ')}`);
    return items;
  };
  const raw = (q.get('reps') ?? '').trim();
  const reps = raw === '' ? 2 : Number(raw);
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`reps=${raw} is not a positive integer`);
  return {
    models: list('models', ['mnist32'], Object.keys(MODELS)),
    backends: list('backends', ['webgan', 'webgan-cpu', 'webgpu', 'wasm'], BACKENDS),
    reps,
    profile: q.get('profile') === '1',
  };
}

const fmt = (x, digits = 0) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const metricsText = (ms) => ms.map((v, i) => `${METRIC_NAMES[i]} ${Number(v).toFixed(4)}`).join(', ');

// ------------------------------------------------------------------------------------------
// This project
// ------------------------------------------------------------------------------------------

let wasmPkg = null;

// `cpu`: the fast CPU path in wasm (bench_train_step_cpu) instead of WebGPU, in the page's CPU
// worker (../worker.js) as the page runs it: with wasm threads, since this page is
// cross-origin isolated.
async function runWebgan(name, model, reps, cpu = false) {
  if (!wasmPkg && !cpu) {
    try {
      wasmPkg = await import('../pkg/webgan.js');
      await wasmPkg.default();
    } catch (e) {
      throw new Error(`could not load the wasm package (../pkg/webgan.js): ${e.message ?? e}; run ./build.sh to build it`);
    }
    if (typeof wasmPkg.bench_train_step !== 'function') throw new Error('www/pkg has no bench_train_step: rebuild it (./build.sh)');
  }
  const r = cpu ? await cpuBench(model.webgan, reps) : await wasmPkg.bench_train_step(model.webgan, reps);
  const metrics = Array.from(r.metrics);
  const who = cpu ? 'webgan-cpu' : 'webgan';
  line(`  ${who}: ${r.adapter}; ${r.config}`);
  line(`  ${who}: after ${reps + 1} steps: ${metricsText(metrics)}; max |change| G ${r.gChange.toExponential(2)}, D ${r.dChange.toExponential(2)}`);
  const problems = [];
  if (!metrics.every(Number.isFinite)) problems.push('non-finite metrics');
  if (!(r.gChange > 0) || !(r.dChange > 0)) problems.push('weights did not change');
  return { impl: cpu ? 'webgan (wasm CPU path)' : 'webgan (WebGPU)', warmupMs: r.warmupMs, ms: r.ms, problems };
}

// ------------------------------------------------------------------------------------------
// TensorFlow.js
// ------------------------------------------------------------------------------------------

const workers = {};
let nextId = 1;

/// Sends one command to a worker (worker.js: TensorFlow.js; jax-worker.js: jax-js, a module) and
/// resolves with its result; its lines are shown as they come.
function ask(message, script = 'worker.js') {
  const worker = (workers[script] ??= new Worker(script, { type: script === 'worker.js' ? 'classic' : 'module' }));
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const onMessage = ({ data }) => {
      if (data.id !== id) return;
      if ('line' in data) {
        line(data.line);
        return;
      }
      worker.removeEventListener('message', onMessage);
      worker.removeEventListener('error', onError);
      if ('error' in data) reject(new Error(data.error));
      else resolve(data.result);
    };
    const onError = (e) => {
      worker.removeEventListener('message', onMessage);
      worker.removeEventListener('error', onError);
      reject(new Error(`${script} failed: ${e.message || 'it could not load (is www/tfjs/node_modules there? ./build.sh compare runs npm ci)'}`));
    };
    worker.addEventListener('message', onMessage);
    worker.addEventListener('error', onError);
    worker.postMessage({ id, ...message });
  });
}

const runTfjs = (backend, model, reps, profile) => ask({ cmd: 'run', backend, model, reps, profile });
const runJax = (device, name, reps) => ask({ cmd: 'run', device, model: name, reps }, 'jax-worker.js');

// ------------------------------------------------------------------------------------------

// Each row's time over the faster of this project's rows for the same model (WebGPU or the
// wasm CPU path: the page trains on whichever is faster).
function table(rows) {
  const head = ['model', 'implementation', 'warm-up s', 'ms/step', 'images/s', 'x fastest webgan'];
  const best = (model) => Math.min(...rows.filter((r) => r.model === model && r.impl.startsWith('webgan')).map((r) => r.ms));
  const ratio = (r) => (Number.isFinite(best(r.model)) ? fmt(r.ms / best(r.model), 2) : '(no webgan row)');
  const body = rows.map((r) => [r.model, r.impl, fmt(r.warmupMs / 1000, 1), fmt(r.ms), fmt(64000 / r.ms, 1), ratio(r)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const row = (cells) => cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  return [row(head), ...body.map(row)];
}

async function main() {
  let opts;
  try {
    opts = options();
  } catch (e) {
    fail(`Bad query string: ${e.message}.`);
    return;
  }
  let info;
  try {
    info = await ask({ cmd: 'info' });
  } catch (e) {
    fail(`TensorFlow.js ${TFJS_VERSION} did not load from www/tfjs/node_modules (run \`npm ci\` in www/tfjs; ./build.sh compare does): ${e.message}`);
    return;
  }
  if (info.version !== TFJS_VERSION) {
    fail(`www/tfjs/node_modules has TensorFlow.js ${info.version}, not the pinned ${TFJS_VERSION}: run \`npm ci\` in www/tfjs.`);
    return;
  }
  if (!('gpu' in navigator)) {
    fail('WebGPU is not available in this browser (navigator.gpu is missing).');
    return;
  }
  try {
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
    const i = adapter?.info ?? {};
    line(`browser: ${navigator.userAgent.match(/(Chrom(e|ium)|HeadlessChrome)\/[\d.]+/)?.[0] ?? navigator.userAgent}; ` +
      `WebGPU adapter: ${[i.vendor, i.architecture, i.description].filter(Boolean).join(' / ') || '(no info)'}; ` +
      `${navigator.hardwareConcurrency} logical cores; TensorFlow.js ${info.version} (in a worker)`);
  } catch (e) {
    console.warn('adapter info', e);
  }
  const what = `models ${opts.models.join(', ')}; ${opts.backends.join(', ')}; ${opts.reps} timed steps after a warm-up`;
  show('pending', `Running (${what})… rows appear as they are measured; on a CPU adapter each takes minutes.`);
  line(`${what}; batch 64`);

  const rows = [];
  const problems = [];
  for (const name of opts.models) {
    const model = MODELS[name];
    let base = null;
    for (const backend of opts.backends) {
      const t0 = performance.now();
      let r;
      try {
        if (backend.startsWith('webgan')) r = await runWebgan(name, model, opts.reps, backend === 'webgan-cpu');
        else if (backend.startsWith('jax-')) r = await runJax(backend.slice(4), name, opts.reps);
        else r = await runTfjs(backend, model, opts.reps, opts.profile);
      } catch (e) {
        const msg = `${name} ${backend}: ${e?.message ?? e}`;
        line(`  FAILED ${msg}`);
        console.error(e);
        problems.push(msg);
        continue;
      }
      if (backend === 'webgan') base = r;
      r.model = name;
      r.ratio = backend === 'webgan' ? '1' : base ? `${fmt(r.ms / base.ms, 2)}` : '(no webgan row)';
      for (const p of r.problems) problems.push(`${name} ${r.impl}: ${p}`);
      rows.push(r);
      result.rows.push({ model: name, impl: r.impl, warmupMs: r.warmupMs, ms: r.ms, ok: r.problems.length === 0 });
      line(`${name}  ${r.impl}: ${fmt(r.ms)} ms/step (warm-up ${fmt(r.warmupMs / 1000, 1)} s)` +
        `${backend === 'webgan' ? '' : base ? `, ${r.ratio}x webgan's time` : ''}` +
        `${r.problems.length ? `  PROBLEM: ${r.problems.join('; ')}` : ''}  [${fmt((performance.now() - t0) / 1000, 1)} s]`);
    }
  }
  line('');
  for (const l of table(rows)) line(l);
  if (problems.length) {
    fail(`Comparison failed: ${problems.join('; ')}`);
    return;
  }
  show('ok', `Done (${what}).`);
  document.body.dataset.bench = 'done';
  result.done = true;
}

main().catch((e) => fail(`Unexpected error: ${e?.stack ?? e}`));
