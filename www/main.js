// The page's entry point (a static ES module, no bundler): loads the wasm package that
// `./build.sh` writes to ./pkg (the page's thread uses it for the datasets), opens WebGPU in its
// worker (or says plainly why not), then starts the gallery of pretrained generators and the
// training panel. Training and drawing run in workers (www/remote.js): this thread only shows.
//
// `window.webgan` exposes the page's state for people poking in the console and for the page
// tests (tests/page): timings, gallery status, training progress, the last checkpoint.

import { startGallery } from './gallery.js';
import { startTraining } from './training.js';
import { watchGpuErrors } from './gpu-errors.js';
import { GpuDevice } from './remote.js';

const state = (window.webgan = { webgpu: 'pending', firstGridMs: null, gallery: {}, errors: [] });
const status = document.getElementById('status');

// Main-thread tasks over 50 ms (the browser's own "long task" threshold): the page tests read
// the longest one while training runs, to show that training never holds up the tab.
state.longTasks = { count: 0, maxMs: 0, frames: [] };
state.resetLongTasks = () => state.longTasks && Object.assign(state.longTasks, { count: 0, maxMs: 0, frames: [] });
if (PerformanceObserver.supportedEntryTypes?.includes('longtask')) {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      state.longTasks.count++;
      state.longTasks.maxMs = Math.max(state.longTasks.maxMs, Math.round(e.duration));
    }
  }).observe({ type: 'longtask' });
  // Which scripts ran in them: Chromium's long-animation-frame entries name them (the five
  // longest frames kept, longest first).
  if (PerformanceObserver.supportedEntryTypes.includes('long-animation-frame')) {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (e.blockingDuration === 0) continue;
        const scripts = e.scripts.map((s) => `${s.invoker || s.sourceFunctionName || '?'} (${s.sourceURL.split('/').pop()}:${s.sourceCharPosition}) ${Math.round(s.duration)} ms`);
        state.longTasks.frames.push({ ms: Math.round(e.duration), blockingMs: Math.round(e.blockingDuration), scripts });
        state.longTasks.frames = state.longTasks.frames.sort((a, b) => b.ms - a.ms).slice(0, 5);
      }
    }).observe({ type: 'long-animation-frame' });
  }
} else {
  state.longTasks = null; // not measurable in this browser (Firefox, Safari)
}

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

// What the browser itself says about the adapter (wgpu does not carry vendor and architecture
// over), and whether it is a CPU emulation of a GPU (SwiftShader, llvmpipe, WARP): there the
// fast CPU path trains faster than WGSL kernels on the emulation.
async function browserAdapter() {
  try {
    const adapter = await navigator.gpu.requestAdapter();
    const info = adapter?.info ?? {};
    const text = [info.vendor, info.architecture, info.description].filter(Boolean).join(' / ');
    return { text, fallback: Boolean(info.isFallbackAdapter ?? adapter?.isFallbackAdapter), found: Boolean(adapter) };
  } catch {
    return { text: '', fallback: false, found: false };
  }
}
const EMULATION = /swiftshader|llvmpipe|lavapipe|softpipe|\bwarp\b|basic render/i;

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
      gpu = await GpuDevice.open();
    } catch (e) {
      console.warn('WebGPU could not be opened:', e);
      // wgpu's own message lists the native backends it was built without: not for users.
      why = (await browserAdapter()).found
        ? `the browser's GPU adapter refused a device (${e.message ?? e})`
        : 'the browser offers WebGPU but no adapter (it is switched off, or this GPU or driver is blocklisted)';
    }
  }
  let adapter = null;
  if (gpu) {
    const report = gpu.report();
    const browser = await browserAdapter();
    const name = /^name: (.*)$/m.exec(report)?.[1];
    const shown = name && !name.startsWith('(') ? name : browser.text || 'an unnamed adapter';
    const cpu = /^device type: Cpu$/m.test(report);
    adapter = { name: shown, emulated: browser.fallback || cpu || EMULATION.test(`${shown} ${browser.text}`) };
    const kind = adapter.emulated ? 'a CPU emulation of a GPU' : /^device type: (.*)$/m.exec(report)?.[1] ?? '';
    show('ok', `WebGPU: ${shown}${kind ? ` (${kind})` : ''}`);
    fillReport(report);
    watchGpuErrors(gpu, state);
    state.gpuTuned = gpu.is_tuned(); // with a tuning kept from an earlier visit
    state.webgpu = 'ok';
  } else {
    show('error', `WebGPU is not available: ${why}. The samples below are drawn, and models trained, on the CPU instead (WebAssembly).`);
    state.webgpu = 'unavailable';
  }
  state.adapter = adapter;
  document.body.dataset.webgpu = state.webgpu;

  startGallery(gpu, adapter, state);
  startTraining(wasm, gpu, adapter, state);
}

main().catch((e) => {
  state.errors.push(String(e?.stack ?? e));
  show('error', `Unexpected error: ${e?.message ?? e}`);
});
