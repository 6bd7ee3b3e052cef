// The kernel benchmark page: runs `run_benchmark` from the wasm package (the same Rust code as
// `webgan-cli bench`) with options from the query string, and shows each line as it arrives.
//
// Query: batch (64), reps (2), only ("": every layer), tiles ("": the adapter's default, "all",
// or "TMxTN/WG_MxWG_N"), detail (set and not "0": each training step's dispatches timed alone). Progress and outcome are also in `window.benchResult`
// ({ done, lines, error }), which `./build.sh bench` polls through WebDriver.

const status = document.getElementById('status');
const out = document.getElementById('rows');
const result = { done: false, lines: [], error: null };
window.benchResult = result;

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
  const int = (name, fallback) => {
    const raw = q.get(name);
    if (raw === null || raw.trim() === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name}=${raw} is not a positive integer`);
    return n;
  };
  const detail = (q.get('detail') ?? '').trim();
  return {
    batch: int('batch', 64),
    reps: int('reps', 2),
    only: q.get('only') ?? '',
    tiles: (q.get('tiles') ?? '').trim(),
    detail: detail !== '' && detail !== '0',
  };
}

async function main() {
  let opts;
  try {
    opts = options();
  } catch (e) {
    fail(`Bad query string: ${e.message}.`);
    return;
  }
  if (!('gpu' in navigator)) {
    const why = window.isSecureContext
      ? 'navigator.gpu is missing (this browser has no WebGPU, or it is switched off; in Chromium on Linux try --enable-unsafe-webgpu)'
      : 'navigator.gpu is missing because this page is not a secure context (serve it from https:// or http://localhost)';
    fail(`WebGPU is not available in this browser: ${why}.`);
    return;
  }

  // wgpu does not carry the browser's vendor/architecture strings over ("adapter:  (BrowserWebGpu,
  // Cpu)"), so name the adapter here first. Informational only: failures are left to the run.
  try {
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
    const i = adapter?.info ?? {};
    const what = [i.vendor, i.architecture, i.description].filter(Boolean).join(' / ');
    if (what) line(`browser adapter: ${what}`);
  } catch (e) {
    console.warn('adapter info', e);
  }

  let wasm;
  try {
    wasm = await import('./pkg/webgan.js');
    await wasm.default();
  } catch (e) {
    fail(`Could not load the wasm package (./pkg/webgan.js): ${e.message ?? e}. Run ./build.sh to build it.`);
    return;
  }

  const what = `batch ${opts.batch}, reps ${opts.reps}` +
    (opts.only ? `, only "${opts.only}"` : '') + (opts.tiles ? `, tiles ${opts.tiles}` : '') + (opts.detail ? ', each dispatch' : '');
  show('pending', `Running (${what})… rows appear as they are measured; CPU adapters take minutes.`);
  const t0 = performance.now();
  try {
    await wasm.run_benchmark(opts.batch, opts.reps, opts.only, opts.tiles, opts.detail, line);
  } catch (e) {
    const msg = e?.message ?? String(e);
    fail(/adapter/i.test(msg) && !result.lines.length ? `WebGPU is not available in this browser: ${msg}.` : `Benchmark failed: ${msg}`);
    return;
  }
  const rows = result.lines.filter((l) => / GFLOP\/s( |$)/.test(l)).length;
  if (rows === 0) line(`(no layer name contains "${opts.only}")`);
  show('ok', `Done: ${rows} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s (${what}).`);
  document.body.dataset.bench = 'done';
  result.done = true;
}

main().catch((e) => fail(`Unexpected error: ${e?.stack ?? e}`));
