// The training panel: data (bundled MNIST, or the user's folder), the model controls, the
// backend (WebGPU, or the fast CPU path in a worker), the loop that runs steps without
// blocking the tab, live grids and chart, checkpoints to and from files, and the automatic
// save in browser storage.

import { Chart } from './chart.js';
import { putSquare, downloadBlob } from './canvas.js';
import { loadMnist, filesFromInput, filesFromDrop, decodeFiles, datasetName, BUDGET_BYTES } from './data.js';
import { putSave, allSaves } from './storage.js';
import { watchGpuErrors } from './gpu-errors.js';
import { CpuSession, cpuHeapBytes, cpuThreads } from './cpu-session.js';

const $ = (id) => document.getElementById(id);
const AUTOSAVE_MS = 60_000;
const TARGET_CALL_MS = 250; // queue about this much GPU work per call, then yield to the page
const IDLE_TUNE_MS = 30_000; // the kernel tuning waits for the page to sit idle this long

// `firstGpu` is the page's WebGpu (null without WebGPU); `adapter` is {name, emulated} for it.
export function startTraining(wasm, firstGpu, adapter, state) {
  let gpu = firstGpu; // replaced when a lost device is reopened
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
    tuned: undefined, // whether this device's tuning is cached (asked once)
  };
  const T = (state.training = { step: 0, running: false, message: '', data: null, grids: 0, autosaves: 0 });
  Object.defineProperty(T, 'rows', { get: () => chart.rows }); // the chart's history, for tests
  state.cpuHeapBytes = cpuHeapBytes; // for the page's benchmarks

  // Runs f after every earlier session call has finished (wasm sessions take one call at a time).
  const exclusive = (f) => {
    const result = S.lock.then(f);
    S.lock = result.catch(() => {});
    return result;
  };
  const say = (text, kind = '') => {
    $('train-status').className = `status ${kind}`;
    $('train-status').textContent = text;
    T.message = text;
  };
  const field = (name) => form.elements[name];
  const options = () =>
    ['size', 'channels', 'ngf', 'ndf', 'lr', 'beta1', 'batch'].map((k) => `${k}=${field(k).value}`).join(' ');
  const setControls = (opts) => {
    for (const word of opts.split(' ')) {
      const [k, v] = word.split('=');
      if (field(k)) field(k).value = v;
    }
  };
  const buttons = () => {
    const has = S.runs.length > 0 && !T.lost;
    $('start').disabled = S.running || !S.data || !!T.lost;
    $('pause').disabled = !S.running;
    $('resume').disabled = S.running || !has;
    $('reset').disabled = !has;
    $('save').disabled = !has;
    $('score').disabled = !has || !S.data;
    T.running = S.running;
  };

  // ---- data ----------------------------------------------------------------------------------

  const showData = (text, progress) => {
    $('data-status').hidden = false;
    $('data-text').textContent = text;
    if (progress !== undefined) $('data-progress').value = progress;
  };
  // Makes `data` (MNIST at size x size) the training data, and says so.
  const adoptMnist = (data, size) => {
    $('grey-proposal').hidden = true;
    S.data = data;
    S.source = { kind: 'mnist' };
    showData(`MNIST: ${data.len()} images of 28×28 padded to ${size}×${size}`, 1);
    T.data = { loaded: data.len(), skipped: 0, total: data.len(), source: 'mnist' };
  };
  const useMnist = async () => {
    field('channels').value = '1';
    const size = Number(field('size').value);
    showData('Loading MNIST (9.5 MB, decompressed here)…', 0);
    adoptMnist(await loadMnist(wasm, size), size);
  };
  const useFiles = async (files, name) => {
    const size = Number(field('size').value);
    const channels = Number(field('channels').value);
    const kept = { data: S.data, info: T.data }; // put back if the folder has no usable image
    S.data = null;
    buttons();
    showData(`Decoding ${files.length} files…`, 0);
    const t0 = performance.now();
    const result = await decodeFiles(wasm, files, size, channels, (p) =>
      showData(`${p.done} of ${p.total} files: ${p.loaded} images, ${p.skipped} skipped`, p.total ? p.done / p.total : 1),
    );
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    const budget = result.unused > 0 ? `; memory budget (${BUDGET_BYTES >> 20} MB of pixels) reached: using ${result.loaded} of ${files.length - result.skipped.length} images` : '';
    showData(`${name}: ${result.loaded} images (${channels === 1 ? 'grey' : 'RGB'} ${size}×${size}), ${result.skipped.length} skipped, in ${secs} s${budget}`, 1);
    const details = $('data-skipped');
    details.hidden = result.skipped.length === 0;
    details.querySelector('summary').textContent = `${result.skipped.length} files skipped: why`;
    details.querySelector('ul').replaceChildren(
      ...result.skipped.map(({ path, reason }) => Object.assign(document.createElement('li'), { textContent: `${path}: ${reason}` })),
    );
    T.data = { loaded: result.loaded, skipped: result.skipped.length, total: files.length, reasons: result.skipped, source: 'folder', grey: result.grey };
    $('grey-proposal').hidden = !(result.grey && channels === 3);
    if (result.loaded === 0) {
      result.dataset.free();
      [T.refused, S.data, T.data] = [T.data, kept.data, kept.info];
      say(`No usable image in ${name}: nothing changed.`, 'error');
      return;
    }
    S.data = result.dataset;
    S.source = { kind: 'folder', name, files };
    say('Images ready: Start to train on them.');
  };
  // The data again at the size and colour the controls now ask for.
  const refreshData = async () => {
    const want = [Number(field('size').value), Number(field('channels').value)];
    if (S.data && S.data.size() === want[0] && S.data.channels() === want[1]) return;
    if (S.source?.kind === 'mnist') await useMnist();
    else if (S.source?.kind === 'folder') await useFiles(S.source.files, S.source.name);
  };
  const guard = (f) => async (...args) => {
    S.actions++;
    try {
      await f(...args);
    } catch (e) {
      say(e.message ?? String(e), 'error'); // refused input and the like: the user is told
      console.warn(e);
    } finally {
      S.actions--;
      S.lastBusy = performance.now();
      buttons();
    }
  };

  // The kernels' tile shapes for this adapter are measured once and kept in localStorage. That
  // takes tens of seconds on a CPU adapter (nearly all of it shader compiles), so nothing waits
  // for it: runs start with the cached tuning or the adapter class's default, and the tuning
  // runs only once the page has sat idle for a while after a run; runs created afterwards (and
  // later visits) use it.
  const tuneWhenIdle = () => {
    if (S.tuning || S.running || S.actions > 0 || T.lost) return;
    if (!S.runs.some((r) => r.session.backend() === 'webgpu')) return;
    if (performance.now() - S.lastBusy < IDLE_TUNE_MS) return;
    // is_tuned hashes the shader sources for the cache key: ask once per device, not every 5 s.
    S.tuned ??= gpu.is_tuned();
    if (S.tuned) return;
    const before = T.message;
    say('Tuning the kernels for this GPU while the page is idle (once; new runs use them)…');
    S.tuning = exclusive(() => gpu.tune((line) => console.log(line)))
      .then((tuning) => {
        console.log(`kernel tuning: ${tuning}`);
        S.tuned = true;
        if (T.message.startsWith('Tuning')) say(`${before} (Kernels tuned for this GPU: new runs use them.)`);
      })
      .catch((e) => console.warn('kernel tuning failed (the default tiles stay):', e))
      .finally(() => {
        S.tuning = null;
        S.lastBusy = performance.now();
      });
  };
  setInterval(tuneWhenIdle, 5_000);

  $('use-grey').onclick = guard(async () => {
    field('channels').value = '1';
    await stop();
    await refreshData();
  });
  $('train-mnist').onclick = guard(async () => {
    await stop();
    await useMnist();
    await reset();
    await start();
  });
  for (const id of ['folder', 'files']) {
    $(id).onchange = guard(async (e) => {
      const files = filesFromInput(e.target);
      if (files.length === 0) return;
      await stop();
      await useFiles(files, datasetName(files));
      e.target.value = '';
    });
  }
  const zone = $('dropzone');
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener(
    'drop',
    guard(async (e) => {
      e.preventDefault();
      zone.classList.remove('over');
      const files = await filesFromDrop(e.dataTransfer);
      if (files.length === 0) return;
      await stop();
      await useFiles(files, datasetName(files));
    }),
  );

  // ---- the backend ---------------------------------------------------------------------------

  // Where new runs train, and why. A CPU emulation of a GPU (SwiftShader, llvmpipe, WARP) runs
  // the WGSL kernels several times slower than the fast CPU path runs the same step.
  let noGpu = 'this browser has no WebGPU'; // why new runs cannot use WebGPU, once they cannot
  const backend = () => {
    const asked = field('backend').value;
    if (!gpu) return { use: 'cpu', why: noGpu };
    if (asked === 'webgpu') return { use: 'webgpu', why: 'chosen' };
    if (asked === 'cpu') return { use: 'cpu', why: 'chosen' };
    return adapter?.emulated
      ? { use: 'cpu', why: `WebGPU here is ${adapter.name}, a CPU emulation: the CPU path is faster` }
      : { use: 'webgpu', why: `WebGPU on ${adapter?.name ?? 'the GPU'}` };
  };
  let threads = null; // {threads, why} once the CPU worker has said
  const cpuWhere = () => {
    if (!threads) return 'the CPU (WebAssembly with SIMD, in a worker)';
    const n = threads.threads > 1 ? `${threads.threads} threads` : `one thread: ${threads.why}`;
    return `the CPU (WebAssembly with SIMD, in a worker, ${n})`;
  };
  const showBackend = () => {
    const b = backend();
    $('backend-why').textContent = `New runs train on ${b.use === 'cpu' ? cpuWhere() : 'WebGPU'}: ${b.why}.`;
  };
  cpuThreads().then((t) => {
    threads = state.cpuThreads = t;
    showBackend();
  });
  if (!gpu) {
    field('backend').value = 'cpu';
    field('backend').disabled = true;
  }
  field('backend').onchange = showBackend;
  showBackend();
  const createSession = (opts) => (backend().use === 'cpu' ? CpuSession.create(opts) : wasm.Session.create(gpu, opts));

  // ---- sessions and the loop -----------------------------------------------------------------

  const addRun = (session, label) => {
    // This run's automatic saves replace the one an earlier visit left: stop offering that.
    $('resume-autosave').hidden = true;
    const figure = document.createElement('figure');
    figure.className = 'run';
    const canvas = document.createElement('canvas');
    canvas.className = 'grid';
    const caption = document.createElement('figcaption');
    const cpu = `the CPU${threads ? `, ${threads.threads} thread${threads.threads === 1 ? '' : 's'}` : ''}`;
    caption.textContent = `${label}: ${session.describe()}, on ${session.backend() === 'cpu' ? cpu : 'WebGPU'}`;
    figure.append(canvas, caption);
    $('runs').append(figure);
    S.runs.push({ session, label, canvas, rows: 0 });
    T.backend = session.backend();
  };
  const createRuns = async (opts) => {
    const kind = field('kind').value;
    addRun(await createSession(`${opts} kind=${kind}`), kind === 'dcgan' ? 'DCGAN' : 'BasicGAN');
    if (field('compare').checked && kind === 'dcgan') addRun(await createSession(`${opts} kind=basic`), 'BasicGAN');
  };
  const drawGrids = async () => {
    for (const run of S.runs) putSquare(run.canvas, await exclusive(() => run.session.grid()));
    T.grids++;
  };
  const reset = async () => {
    await stop();
    await exclusive(() => {
      S.runs.forEach((r) => r.session.free());
      S.runs = [];
    });
    $('runs').replaceChildren();
    chart.clear();
    T.step = 0;
    say(S.data ? 'Reset: Start trains a new model.' : 'Pick the data, then Start.');
  };
  const stop = async () => {
    S.running = false;
    await S.loop;
  };
  const start = async () => {
    await refreshData();
    if (!S.data) throw new Error('Pick the data first: MNIST, a folder or images.');
    if (S.runs.length === 0) {
      // Never waits for a tuning: the cached one, else the adapter class's default tiles.
      await createRuns(options());
      await drawGrids();
    }
    S.running = true;
    T.diverged = undefined;
    buttons();
    const mine = loop()
      .catch(async (e) => {
        // A readback on a device that was just lost fails before the loss itself is reported:
        // give the loss a moment to arrive, so that it is reported as what it is.
        if (!T.lost) await Promise.race([lostSignal, new Promise((r) => setTimeout(r, 3000))]);
        if (S.loop !== mine || T.lost) return; // a loop left behind on a lost device
        S.running = false;
        S.loop = null;
        if (e.diverged) return restoreAfterDivergence(e);
        say(`Training stopped: ${e.message ?? e}`, 'error');
        state.errors.push(String(e?.stack ?? e));
      })
      .finally(buttons);
    S.loop = mine;
  };

  const loop = async () => {
    const primary = S.runs[0];
    const target = Number(field('steps').value);
    const every = Math.max(1, Number(field('every').value));
    let k = 1;
    let msPerStep = null;
    let step = await exclusive(() => primary.session.step());
    let nextGrid = step + every;
    S.lastSave = performance.now();
    say(`Training ${S.runs.map((r) => r.label).join(' and ')} on ${S.source.kind === 'mnist' ? 'MNIST' : S.source.name}…`, 'ok');
    while (S.running) {
      // Never past the target: fast steps make k large.
      const n = Math.max(1, Math.min(k, target - step));
      const t0 = performance.now();
      for (const run of S.runs) step = await exclusive(() => run.session.train(S.data, n));
      const ms = (performance.now() - t0) / n;
      S.lastBusy = performance.now();
      msPerStep = msPerStep === null ? ms : 0.8 * msPerStep + 0.2 * ms;
      k = Math.max(1, Math.min(32, Math.round(TARGET_CALL_MS / msPerStep)));

      for (const run of S.runs) {
        const rows = await exclusive(() => run.session.metrics(run.rows));
        run.rows += rows.length / 7;
        if (run === primary) chart.push(rows);
        for (let i = 0; i < rows.length; i++) {
          if (i % 7 !== 0 && !Number.isFinite(rows[i])) {
            S.running = false;
            throw Object.assign(new Error(`${run.label} diverged at step ${rows[i - (i % 7)]}: a loss became ${rows[i]}`), { diverged: run.label });
          }
        }
      }
      const epochs = await exclusive(() => primary.session.epochs());
      showStats(step, epochs, msPerStep, target);
      if (step >= nextGrid) {
        await drawGrids();
        nextGrid = step + every;
      }
      if (performance.now() - S.lastSave > AUTOSAVE_MS) await autosave();
      if (step >= target) {
        S.running = false;
        say(`Done: ${step} steps.`, 'ok');
      }
    }
    if (T.lost) return; // nothing on the lost device can be read: the last save stays as it was
    await drawGrids();
    await autosave();
    // Stopped before the target: by Pause, or by a folder or file the user picked meanwhile.
    if (step < target) say(`Paused at step ${step}. Resume continues exactly from here.`);
  };

  const showStats = (step, epochs, msPerStep, target) => {
    const m = chart.last();
    const batch = S.runs[0].session.batch();
    const ips = (batch * S.runs.length * 1000) / msPerStep;
    const left = Math.max(0, target - step) * msPerStep / 1000;
    const fmt = (v, d = 3) => (v === undefined ? '–' : v.toFixed(d));
    $('s-step').textContent = step;
    $('s-epoch').textContent = epochs.toFixed(2);
    $('s-ips').textContent = ips.toFixed(1);
    $('s-ms').textContent = msPerStep.toFixed(0);
    $('s-eta').textContent = left > 3600 ? `${(left / 3600).toFixed(1)} h` : left > 90 ? `${(left / 60).toFixed(0)} min` : `${left.toFixed(0)} s`;
    $('s-dloss').textContent = fmt(m?.dloss);
    $('s-gloss').textContent = fmt(m?.gloss);
    $('s-dx').textContent = fmt(m?.dx);
    $('s-dgz').textContent = fmt(m?.dgz);
    Object.assign(T, { step, epochs, ips, msPerStep, dloss: m?.dloss, gloss: m?.gloss, dx: m?.dx, dgz: m?.dgz });
  };

  // ---- checkpoints ---------------------------------------------------------------------------

  const dataTag = () => (S.source?.kind === 'mnist' ? 'mnist' : `folder:${S.source?.name}:${S.data?.len()}`);
  const autosave = async () => {
    S.lastSave = performance.now();
    for (const run of S.runs) {
      const bytes = await exclusive(() => run.session.save());
      const step = await exclusive(() => run.session.step());
      await putSave(run.label, { bytes, options: run.session.options(), step, data: dataTag(), label: run.label, time: Date.now() });
    }
    T.autosaves++;
    T.autosaveStep = T.step;
  };
  $('save').onclick = guard(async () => {
    const run = S.runs[0];
    const bytes = await exclusive(() => run.session.save());
    const step = await exclusive(() => run.session.step());
    state.lastCheckpoint = { bytes, step };
    downloadBlob(new Blob([bytes]), `webgan-${run.label.toLowerCase()}-step${step}.safetensors`);
    say(`Saved ${run.label} at step ${step} (${(bytes.length / 1e6).toFixed(1)} MB).`, 'ok');
  });
  // Loads checkpoint bytes into a new session. Everything is checked before anything changes:
  // a refused file leaves the current model, data and controls as they were.
  const loadCheckpoint = async (bytes, source) => {
    const opts = wasm.Session.checkpoint_options(bytes); // throws if it is not a checkpoint
    const size = Number(/size=(\d+)/.exec(opts)[1]);
    const channels = Number(/channels=(\d+)/.exec(opts)[1]);
    let data = S.data;
    if (!data || data.size() !== size || data.channels() !== channels) {
      const mnist = channels === 1 && (source === 'mnist' || !S.source || S.source.kind === 'mnist');
      if (!mnist) {
        throw new Error(`it was trained on ${channels === 1 ? 'grey' : 'RGB'} ${size}×${size} images: load those (Image size ${size}, Colour ${channels === 1 ? 'grey' : 'RGB'}) first`);
      }
      data = await loadMnist(wasm, size);
    }
    const session = await createSession(opts);
    let step;
    try {
      step = await session.load(bytes, data);
    } catch (e) {
      session.free();
      if (data !== S.data) data.free();
      throw e;
    }
    await reset();
    if (data !== S.data) adoptMnist(data, size); // the only data loaded here is MNIST
    setControls(opts);
    field('kind').value = /kind=(\w+)/.exec(opts)[1];
    addRun(session, /kind=basic/.test(opts) ? 'BasicGAN' : 'DCGAN');
    await drawGrids();
    T.step = step;
    $('s-step').textContent = step;
    say(`Loaded a checkpoint at step ${step}: Resume continues exactly from there.`, 'ok');
  };
  $('load').onchange = guard(async (e) => {
    const file = e.target.files[0];
    e.target.value = '';
    if (!file) return;
    try {
      await loadCheckpoint(new Uint8Array(await file.arrayBuffer()));
    } catch (err) {
      throw new Error(`${file.name} was not loaded: ${err.message ?? err}. The current model is unchanged.`);
    }
  });

  // On request (it costs a few hundred samples): the sliced Wasserstein distance of each run.
  // For 32x32 grey models also the digit coverage, judged by the project's MNIST classifier.
  let classifier = null;
  $('score').onclick = guard(async () => {
    say('Measuring: 256 samples against 256 training images…');
    const digits = S.runs[0].session.image_size() === 32 && S.runs[0].session.channels() === 1;
    if (digits && !classifier) {
      const response = await fetch('weights/mnist-classifier.safetensors');
      if (!response.ok) throw new Error(`weights/mnist-classifier.safetensors: HTTP ${response.status}`);
      classifier = new Uint8Array(await response.arrayBuffer());
    }
    const lines = [];
    for (const run of S.runs) {
      const step = await exclusive(() => run.session.step());
      const judge = digits ? classifier : new Uint8Array(0);
      lines.push(`${run.label} at step ${step}: ${await exclusive(() => run.session.score(S.data, 256, judge))}`);
    }
    T.score = lines.join('\n');
    say(`${T.score}. Lower is better: on MNIST two sets of 256 real digits score about 17, the shipped generator about 21.`, 'ok');
  });
  $('start').onclick = guard(start);
  $('resume').onclick = guard(start);
  $('pause').onclick = guard(async () => {
    say('Pausing after the steps in flight…');
    await stop();
  });
  $('reset').onclick = guard(reset);

  // A loss became NaN or infinite: the weights are ruined. Go back to the last automatic save
  // (saved only from finite losses, and a checkpoint holding NaN is refused anyway).
  const restoreAfterDivergence = async (e) => {
    T.diverged = e.message;
    const last = (await allSaves()).filter((r) => r.label === e.diverged).sort((a, b) => b.time - a.time)[0];
    if (!last) {
      say(`${e.message}. Training is paused; there is no earlier save to go back to: Reset, lower the learning rate, Start.`, 'error');
      return;
    }
    try {
      await loadCheckpoint(last.bytes, last.data === 'mnist' ? 'mnist' : undefined);
      say(`${e.message}. Training is paused and the last good state (step ${last.step}, the automatic save) is restored; a lower learning rate may help.`, 'error');
    } catch (err) {
      say(`${e.message}. Training is paused; the automatic save could not be restored: ${err.message ?? err}`, 'error');
    }
  };

  // ---- a lost GPU device ---------------------------------------------------------------------

  // The device is gone with everything on it; the automatic save in IndexedDB is not. Pause,
  // say so, and offer to open a new device and carry on from that save, without a reload.
  // lostSignal resolves when the current device is lost (after the page has said so).
  let lostSignal = null;
  const watch = (device) =>
    (lostSignal = device.lost().then((why) => {
      if (device !== gpu) return;
      if (!S.runs.some((r) => r.session.backend() === 'webgpu')) {
        // Nothing here lived on the device: runs on the CPU carry on, and new runs go there too.
        gpu = null;
        noGpu = `the GPU device was lost (${why})`;
        T.gpuLost = why;
        field('backend').value = 'cpu';
        field('backend').disabled = true;
        showBackend();
        return;
      }
      T.lost = why;
      S.running = false;
      S.lock = Promise.resolve(); // calls in flight on the dead device may never settle
      say(`The GPU device was lost (${why}). Training is paused; the last automatic save${T.autosaveStep !== undefined ? ` (step ${T.autosaveStep})` : ''} is intact in this browser.`, 'error');
      $('reconnect').hidden = false;
      buttons();
    }));
  if (gpu) watch(gpu);
  state.debug = { loseGpu: () => gpu?.destroy() };
  $('reconnect').onclick = guard(async () => {
    const fresh = await wasm.WebGpu.open();
    const saves = await allSaves();
    gpu = fresh;
    S.tuned = undefined;
    watch(gpu);
    watchGpuErrors(gpu, state);
    S.runs.forEach((r) => r.session.free());
    S.runs = [];
    $('runs').replaceChildren();
    S.loop = null;
    T.lost = undefined;
    $('reconnect').hidden = true;
    const last = saves.sort((a, b) => b.time - a.time)[0];
    if (!last) {
      say('A new GPU device is ready; there was no automatic save yet: Start trains a new model.', 'ok');
      return;
    }
    await loadCheckpoint(last.bytes, last.data === 'mnist' ? 'mnist' : undefined);
    say(`A new GPU device is ready; loaded the automatic save at step ${last.step}. Resume carries on from there.`, 'ok');
  });

  // An automatic save from an earlier visit: offer to carry on.
  allSaves()
    .then((saves) => {
      const last = saves.sort((a, b) => b.time - a.time)[0];
      if (!last) return;
      const button = $('resume-autosave');
      const where = last.data === 'mnist' ? 'MNIST' : last.data.split(':')[1];
      button.textContent = `Resume the autosaved ${last.label} (step ${last.step} on ${where}, ${new Date(last.time).toLocaleString()})`;
      button.hidden = false;
      button.onclick = guard(async () => {
        await loadCheckpoint(last.bytes, last.data === 'mnist' ? 'mnist' : undefined);
        button.hidden = true;
        await start();
      });
    })
    .catch((e) => console.warn('no automatic saves readable:', e));

  for (const el of ['train-mnist', 'folder', 'files', 'load']) $(el).disabled = false;
  buttons();
}
