// Side by side in one browser session: this project's training step (the wasm package's
// `bench_train_step`, WebGPU through wgpu) and TensorFlow.js 4.22 (pinned, from node_modules)
// training the identical models with the identical step (dcgan.js) on its webgpu and wasm
// backends (optionally webgl and cpu). Each after a warm-up step; ms per step; a table with the
// ratios. TensorFlow.js's losses must be finite and its weights must change, or the run fails.
//
// Query: models (mnist32; comma-separated, dcgan64 too), backends (webgan,webgpu,wasm; also
// webgl, cpu), reps (2: timed steps after the warm-up), profile (1: after the timing, one more
// TensorFlow.js step under tf.profile, its costliest kernels printed). Progress and outcome are in
// `window.benchResult` ({ done, lines, error }), as bench.html's, which `./build.sh compare`
// polls through WebDriver.

import { MODELS, build, step, inputs, maxChange, addMissingKernels, checkConv2DBackpropFilter } from './dcgan.js';

/* global tf */

const status = document.getElementById('status');
const out = document.getElementById('rows');
const result = { done: false, lines: [], error: null, rows: [] };
window.benchResult = result;

const TFJS_VERSION = '4.22.0';
const BACKENDS = ['webgan', 'webgpu', 'wasm', 'webgl', 'cpu'];
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
    backends: list('backends', ['webgan', 'webgpu', 'wasm'], BACKENDS),
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

async function runWebgan(name, model, reps) {
  if (!wasmPkg) {
    try {
      wasmPkg = await import('../pkg/webgan.js');
      await wasmPkg.default();
    } catch (e) {
      throw new Error(`could not load the wasm package (../pkg/webgan.js): ${e.message ?? e}; run ./build.sh to build it`);
    }
    if (typeof wasmPkg.bench_train_step !== 'function') throw new Error('www/pkg has no bench_train_step: rebuild it (./build.sh)');
  }
  const r = await wasmPkg.bench_train_step(model.webgan, reps);
  const metrics = Array.from(r.metrics);
  line(`  webgan: ${r.adapter}; ${r.config}`);
  line(`  webgan: after ${reps + 1} steps: ${metricsText(metrics)}; max |change| G ${r.gChange.toExponential(2)}, D ${r.dChange.toExponential(2)}`);
  const problems = [];
  if (!metrics.every(Number.isFinite)) problems.push('non-finite metrics');
  if (!(r.gChange > 0) || !(r.dChange > 0)) problems.push('weights did not change');
  return { impl: 'webgan (WebGPU)', warmupMs: r.warmupMs, ms: r.ms, problems };
}

// ------------------------------------------------------------------------------------------
// TensorFlow.js
// ------------------------------------------------------------------------------------------

async function useBackend(name) {
  if (name === 'wasm') {
    // Served from node_modules by the same server: nothing comes from a CDN.
    tf.wasm.setWasmPaths(new URL('node_modules/@tensorflow/tfjs-backend-wasm/dist/', location.href).href);
    // Its documented default, made explicit: one XNNPACK thread per logical core (used only where
    // the page is cross-origin isolated, which web.py's server arranges for /tfjs/).
    tf.wasm.setThreadsCount(navigator.hardwareConcurrency || 1);
  }
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`tf.setBackend('${name}') failed (see the console)`);
  await tf.ready();
  let what = name;
  if (name === 'wasm') {
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    what += ` (${simd ? 'SIMD' : 'no SIMD'}, ${threads ? `${tf.wasm.getThreadsCount()} threads` : 'single thread'}` +
      `${crossOriginIsolated ? '' : '; page not cross-origin isolated'})`;
  } else if (name === 'webgpu') {
    const info = tf.backend().adapterInfo;
    const bits = info ? [info.vendor, info.architecture].filter(Boolean).join(' / ') : '';
    if (bits) what += ` (${bits})`;
  }
  const added = addMissingKernels(name);
  for (const k of added) {
    const err = await checkConv2DBackpropFilter();
    line(`  tfjs ${name}: kernel missing in tfjs ${TFJS_VERSION}, added: ${k}; against plain loops: max relative error ${err.toExponential(1)}`);
    if (!(err < 1e-4)) throw new Error(`the added Conv2DBackpropFilter is wrong (relative error ${err})`);
  }
  return what;
}

async function readMetrics(list) {
  const values = await Promise.all(list.map(async (t) => (await t.data())[0]));
  tf.dispose(list);
  return values;
}

async function runTfjs(backend, model, reps, profile) {
  const what = await useBackend(backend);
  const net = build(model, 1);
  const { real, z } = inputs(model, 1);
  const beforeG = net.gVars.map((v) => tf.keep(v.clone()));
  const beforeD = net.dVars.map((v) => tf.keep(v.clone()));
  const problems = [];
  const all = [];
  try {
    let t0 = performance.now();
    const warm = step(net, real, z);
    const warmMetrics = await readMetrics(warm); // waits for the GPU (webgpu) as well
    const warmupMs = performance.now() - t0;
    all.push(warmMetrics);
    const tensorsAfterOne = tf.memory().numTensors;

    t0 = performance.now();
    const pending = [];
    for (let i = 0; i < reps; i++) pending.push(step(net, real, z));
    // The last step's values come back only when all queued work is done.
    await pending[pending.length - 1][4].data();
    const ms = (performance.now() - t0) / reps;
    for (const p of pending) all.push(await readMetrics(p));

    const last = all[all.length - 1];
    const gChange = await maxChange(net.gVars, beforeG);
    const dChange = await maxChange(net.dVars, beforeD);
    line(`  tfjs ${backend}: after ${reps + 1} steps: ${metricsText(last)}; max |change| G ${gChange.toExponential(2)}, D ${dChange.toExponential(2)}`);
    if (!all.flat().every(Number.isFinite)) problems.push('non-finite losses');
    if (!(gChange > 0) || !(dChange > 0)) problems.push('weights did not change');
    const leak = tf.memory().numTensors - tensorsAfterOne;
    if (leak > 0) line(`  tfjs ${backend}: note: ${leak} tensors more after the timed steps than after the first`);
    if (profile) await profileStep(backend, net, real, z);
    return { impl: `tfjs ${what}`, warmupMs, ms, problems };
  } finally {
    tf.dispose([...beforeG, ...beforeD]);
    tf.dispose([real, z]);
    net.all.forEach((v) => v.dispose());
    tf.disposeVariables();
  }
}

/// One more step under tf.profile: time per kernel name, the costliest first.
async function profileStep(backend, net, real, z) {
  let metrics;
  const info = await tf.profile(async () => {
    metrics = step(net, real, z);
    await metrics[4].data();
  });
  tf.dispose(metrics);
  const by = new Map();
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : NaN;
    const e = by.get(k.name) ?? { ms: 0, n: 0 };
    e.ms += ms;
    e.n += 1;
    by.set(k.name, e);
  }
  const total = [...by.values()].reduce((a, e) => a + e.ms, 0);
  const top = [...by.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12);
  line(`  tfjs ${backend}: profile of one step: ${info.kernels.length} kernels, ${fmt(total)} ms in kernels; costliest:`);
  for (const [name, e] of top) line(`    ${name.padEnd(24)} ${String(e.n).padStart(4)} calls ${fmt(e.ms).padStart(8)} ms`);
}

// ------------------------------------------------------------------------------------------

function table(rows) {
  const head = ['model', 'implementation', 'warm-up s', 'ms/step', 'images/s', 'tfjs / webgan'];
  const body = rows.map((r) => [r.model, r.impl, fmt(r.warmupMs / 1000, 1), fmt(r.ms), fmt(64000 / r.ms, 1), r.ratio]);
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
  if (typeof tf === 'undefined' || !tf.wasm || !tf.findBackendFactory?.('webgpu')) {
    fail(`TensorFlow.js ${TFJS_VERSION} did not load from www/tfjs/node_modules: run \`npm ci\` in www/tfjs (./build.sh compare does).`);
    return;
  }
  if (tf.version.tfjs !== TFJS_VERSION) {
    fail(`www/tfjs/node_modules has TensorFlow.js ${tf.version.tfjs}, not the pinned ${TFJS_VERSION}: run \`npm ci\` in www/tfjs.`);
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
      `${navigator.hardwareConcurrency} logical cores; TensorFlow.js ${tf.version.tfjs}`);
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
        r = backend === 'webgan' ? await runWebgan(name, model, opts.reps) : await runTfjs(backend, model, opts.reps, opts.profile);
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
