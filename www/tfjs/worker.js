// TensorFlow.js's side of the comparison (compare.js), in a dedicated worker: the wasm and cpu
// backends run a whole step synchronously (a dcgan64 step takes a minute or more here), which
// on the page's own thread would freeze it, and WebDriver's polling with it. TensorFlow.js comes
// from the pinned UMD bundles in node_modules; the models and the step from dcgan.js.
//
// Messages in: { id, cmd: 'info' } or { id, cmd: 'run', backend, model, reps, profile }.
// Messages out: { id, line } as it goes, then { id, result } or { id, error }.

/* global tf */

// tfjs-backend-wasm 4.22 gives XNNPACK at most half of navigator.hardwareConcurrency threads,
// whatever setThreadsCount asks (measured here: 2 cores gave 1 thread, 4 reported cores gave 2).
// So that its anchor runs one thread per core, as webgan's CPU path does, this worker reports
// twice the cores; nothing else in TensorFlow.js reads the figure.
const CORES = navigator.hardwareConcurrency || 1;
Object.defineProperty(self.navigator, 'hardwareConcurrency', { get: () => 2 * CORES });

importScripts(
  'node_modules/@tensorflow/tfjs/dist/tf.min.js',
  'node_modules/@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.min.js',
  'node_modules/@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js',
);

const TFJS_VERSION = '4.22.0';
const METRIC_NAMES = ['D loss real', 'D(x)', 'D loss fake', 'D(G(z))', 'G loss', 'D(G(z)) after'];
const fmt = (x, digits = 0) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const metricsText = (ms) => ms.map((v, i) => `${METRIC_NAMES[i]} ${Number(v).toFixed(4)}`).join(', ');

let lib = null; // dcgan.js
let line = () => {};

async function useBackend(name) {
  if (name === 'wasm') {
    // Served from node_modules by the same server: nothing comes from a CDN.
    tf.wasm.setWasmPaths(new URL('node_modules/@tensorflow/tfjs-backend-wasm/dist/', self.location.href).href);
    // One XNNPACK thread per logical core (used only where the page is cross-origin isolated,
    // which web.py's server arranges for /tfjs/).
    tf.wasm.setThreadsCount(CORES);
  }
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`tf.setBackend('${name}') failed (see the console)`);
  await tf.ready();
  let what = name;
  if (name === 'wasm') {
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    what += ` (${simd ? 'SIMD' : 'no SIMD'}, ${threads ? `${tf.wasm.getThreadsCount()} threads` : 'single thread'}` +
      `${self.crossOriginIsolated ? '' : '; page not cross-origin isolated'})`;
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


onmessage = async ({ data }) => {
  const { id } = data;
  line = (text) => postMessage({ id, line: text });
  try {
    lib ??= await import('./dcgan.js');
    ({ build, step, inputs, maxChange, addMissingKernels, checkConv2DBackpropFilter } = lib);
    let result;
    if (data.cmd === 'info') {
      result = { version: tf.version.tfjs, backends: ['webgpu', 'wasm', 'webgl', 'cpu'].filter((b) => tf.findBackendFactory(b)) };
    } else {
      result = await runTfjs(data.backend, data.model, data.reps, data.profile);
    }
    postMessage({ id, result });
  } catch (e) {
    console.error(e);
    postMessage({ id, error: `${e?.message ?? e}` });
  }
};
let build, step, inputs, maxChange, addMissingKernels, checkConv2DBackpropFilter; // from dcgan.js
