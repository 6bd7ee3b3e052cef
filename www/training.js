// The training panel. This file holds what its parts share (the state, the status line, the
// buttons, one session call at a time); the parts, each installing its controls on `ctx`:
//   training-data.js         the data: bundled MNIST, or the user's folder or files
//   training-backend.js      where new runs train (WebGPU or the CPU path) and the idle tuning
//   training-runs.js         runs, the loop that trains without blocking the tab, grids, stats
//   training-checkpoints.js  checkpoints to and from files, automatic saves, divergence
//   training-device.js       a lost GPU device, and carrying on after it

import { Chart } from './chart.js';
import { cpuHeapBytes } from './remote.js';
import { installData } from './training-data.js';
import { installBackend } from './training-backend.js';
import { installRuns } from './training-runs.js';
import { installCheckpoints } from './training-checkpoints.js';
import { installDevice } from './training-device.js';

const $ = (id) => document.getElementById(id);

// `firstGpu` is the page's WebGpu (null without WebGPU); `adapter` is {name, emulated} for it.
export function startTraining(wasm, firstGpu, adapter, state) {
  const form = $('controls');
  const chart = new Chart($('chart'));
  const S = {
    data: null, // the wasm Dataset
    source: null, // {kind: 'mnist'} or {kind: 'folder', name, files}
    runs: [], // [{session, label, canvas, rows}]
    running: false,
    lock: Promise.resolve(), // every session call goes through `exclusive`, one at a time
    lastSave: 0,
    actions: 0, // the user's actions in flight (loading, scoring, saving...)
    lastBusy: 0, // when an action or a training step last ended (the tuning waits for quiet)
    tuning: null, // a kernel tuning in progress
  };
  // What the page tests read (state.training), kept up to date by every part.
  const T = (state.training = { step: 0, running: false, message: '', data: null, grids: 0, autosaves: 0 });
  Object.defineProperty(T, 'rows', { get: () => chart.rows }); // the chart's history, for tests
  state.cpuHeapBytes = cpuHeapBytes; // for the page's benchmarks

  const field = (name) => form.elements[name];
  const ctx = {
    wasm,
    adapter,
    state,
    S,
    T,
    chart,
    field,
    gpu: firstGpu, // replaced when a lost device is reopened, null once none is usable
    // Runs f after every earlier session call has finished (wasm sessions take one call at a time).
    exclusive(f) {
      const result = S.lock.then(f);
      S.lock = result.catch(() => {});
      return result;
    },
    say(text, kind = '') {
      $('train-status').className = `status ${kind}`;
      $('train-status').textContent = text;
      T.message = text;
    },
    options: () => ['size', 'channels', 'ngf', 'ndf', 'lr', 'beta1', 'batch', 'ema'].map((k) => `${k}=${field(k).value}`).join(' '),
    setControls(opts) {
      for (const word of opts.split(' ')) {
        const [k, v] = word.split('=');
        if (field(k)) field(k).value = v;
      }
    },
    buttons() {
      const has = S.runs.length > 0 && !T.lost;
      $('start').disabled = S.running || !S.data || !!T.lost;
      $('pause').disabled = !S.running;
      $('resume').disabled = S.running || !has;
      $('reset').disabled = !has;
      $('save').disabled = !has;
      $('score').disabled = !has || !S.data;
      T.running = S.running;
    },
    // A user action: counted while in flight, and an error it throws is told to the user.
    guard: (f) => async (...args) => {
      S.actions++;
      try {
        await f(...args);
      } catch (e) {
        ctx.say(e.message ?? String(e), 'error'); // refused input and the like
        console.warn(e);
      } finally {
        S.actions--;
        S.lastBusy = performance.now();
        ctx.buttons();
      }
    },
  };

  installData(ctx);
  installBackend(ctx);
  installRuns(ctx);
  installCheckpoints(ctx);
  installDevice(ctx);

  for (const el of ['train-mnist', 'folder', 'files', 'load']) $(el).disabled = false;
  ctx.buttons();
}
