// The page's entry point (a static ES module, no bundler): loads the wasm package that
// `./build.sh` writes to ./pkg, opens WebGPU (or says plainly why not), then starts the
// gallery of pretrained generators and the training panel.
//
// `window.webgan` exposes the page's state for people poking in the console and for the page
// tests (tests/page): timings, gallery status, training progress, the last checkpoint.

import { startGallery } from './gallery.js';
import { startTraining } from './training.js';
import { watchGpuErrors } from './gpu-errors.js';

const state = (window.webgan = { webgpu: 'pending', firstGridMs: null, gallery: {}, errors: [] });
const status = document.getElementById('status');

function show(kind, text) {
  status.className = `status ${kind}`;
  status.textContent = text;
}

// Why there is no WebGPU, in words a user can act on; null when there is.
function missingWebGpu() {
  if ('gpu' in navigator) return null;
  return window.isSecureContext
    ? 'this browser has no WebGPU, or it is switched off (Chrome and Edge 113+, Safari 26+, Firefox 141+ on Windows have it)'
    : 'this page is not a secure context (serve it from https:// or http://localhost)';
}

// What the browser itself says about the adapter (wgpu does not carry vendor and architecture over).
async function browserAdapterInfo() {
  try {
    const info = (await navigator.gpu.requestAdapter())?.info ?? {};
    return [info.vendor, info.architecture, info.description].filter(Boolean).join(' / ');
  } catch {
    return '';
  }
}

function fillReport(report) {
  const table = document.getElementById('report');
  for (const line of report.split('\n')) {
    const m = /^([^:]+): (.*?)(?: \[default (\d+)\])?$/.exec(line);
    if (!m) continue;
    const tr = table.tBodies[0].insertRow();
    for (const text of [m[1], m[2], m[3] ?? '']) tr.insertCell().textContent = text;
  }
  table.hidden = false;
}

async function main() {
  let wasm;
  try {
    wasm = await import('./pkg/webgan.js');
    await wasm.default();
  } catch (e) {
    show('error', `Could not load the wasm package (./pkg/webgan.js): ${e.message ?? e}. Run ./build.sh to build it.`);
    state.webgpu = 'no-wasm';
    return;
  }

  let gpu = null;
  let why = missingWebGpu();
  if (!why) {
    try {
      gpu = await wasm.WebGpu.open();
    } catch (e) {
      why = e.message ?? String(e);
    }
  }
  if (gpu) {
    const report = gpu.report();
    const vendor = await browserAdapterInfo();
    show('ok', `WebGPU: ${[vendor, report.split('\n')[0].replace(/^adapter: /, '')].filter(Boolean).join(' — ')}`);
    fillReport(report);
    watchGpuErrors(gpu, state);
    state.webgpu = 'ok';
  } else {
    show('error', `WebGPU is not available: ${why}. The samples below are drawn on the CPU instead; training needs WebGPU.`);
    state.webgpu = 'unavailable';
  }
  document.body.dataset.webgpu = state.webgpu;

  startGallery(wasm, gpu, state);
  if (gpu) startTraining(wasm, gpu, state);
}

main().catch((e) => {
  state.errors.push(String(e?.stack ?? e));
  show('error', `Unexpected error: ${e?.message ?? e}`);
});
