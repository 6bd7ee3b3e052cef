// Runs (a DCGAN, and BasicGAN beside it to compare), the loop that trains them a few steps per
// call without blocking the tab, their live grids, the chart and the figures under it, and
// "Measure quality".

import { show } from './canvas.js';

const $ = (id) => document.getElementById(id);
const AUTOSAVE_MS = 60_000;
const TARGET_CALL_MS = 250; // queue about this much GPU work per call, then yield to the page

export function installRuns(ctx) {
  const { state, S, T, chart, field, say, exclusive, guard } = ctx;

  ctx.addRun = (session, label) => {
    // This run's automatic saves replace the one an earlier visit left: stop offering that.
    $('resume-autosave').hidden = true;
    const figure = document.createElement('figure');
    figure.className = 'run';
    const canvas = document.createElement('canvas');
    canvas.className = 'grid';
    const caption = document.createElement('figcaption');
    const t = ctx.threads;
    const cpu = `the CPU${t ? `, ${t.threads} thread${t.threads === 1 ? '' : 's'}` : ''}`;
    const ema = Number(/ema=([\d.e-]+)/.exec(session.options())?.[1] ?? 0);
    const drawn = ema > 0 ? `; the grid shows G's moving average (decay ${ema})` : '';
    caption.textContent = `${label}: ${session.describe()}, on ${session.backend() === 'cpu' ? cpu : 'WebGPU'}${drawn}`;
    figure.append(canvas, caption);
    $('runs').append(figure);
    S.runs.push({ session, label, canvas, rows: 0 });
    T.backend = session.backend();
  };
  const createRuns = async (opts) => {
    const kind = field('kind').value;
    ctx.addRun(await ctx.createSession(opts, kind), kind === 'dcgan' ? 'DCGAN' : 'BasicGAN');
    if (field('compare').checked && kind === 'dcgan') ctx.addRun(await ctx.createSession(opts, 'basic'), 'BasicGAN');
  };
  ctx.drawGrids = async () => {
    for (const run of S.runs) show(run.canvas, await exclusive(() => run.session.grid()));
    T.grids++;
  };
  ctx.reset = async () => {
    await ctx.stop();
    await exclusive(() => {
      S.runs.forEach((r) => r.session.free());
      S.runs = [];
    });
    $('runs').replaceChildren();
    chart.clear();
    T.step = 0;
    say(S.data ? 'Reset: Start trains a new model.' : 'Pick the data, then Start.');
  };
  ctx.stop = async () => {
    S.running = false;
    await S.loop;
  };
  ctx.start = async () => {
    await ctx.refreshData();
    if (!S.data) throw new Error('Pick the data first: MNIST, a folder or images.');
    if (S.runs.length === 0) {
      // Never waits for a tuning: the cached one, else the adapter class's default tiles.
      await createRuns(ctx.options());
      await ctx.drawGrids();
    }
    S.running = true;
    T.diverged = undefined;
    ctx.buttons();
    const mine = loop()
      .catch(async (e) => {
        // A readback on a device that was just lost fails before the loss itself is reported:
        // give the loss a moment to arrive, so that it is reported as what it is.
        if (!T.lost) await Promise.race([ctx.lostSignal, new Promise((r) => setTimeout(r, 3000))]);
        if (S.loop !== mine || T.lost) return; // a loop left behind on a lost device
        S.running = false;
        S.loop = null;
        if (e.diverged) return ctx.restoreAfterDivergence(e);
        say(`Training stopped: ${e.message ?? e}`, 'error');
        state.errors.push(String(e?.stack ?? e));
      })
      .finally(ctx.buttons);
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
        await ctx.drawGrids();
        nextGrid = step + every;
      }
      if (performance.now() - S.lastSave > AUTOSAVE_MS) await ctx.autosave();
      if (step >= target) {
        S.running = false;
        say(`Done: ${step} steps.`, 'ok');
      }
    }
    if (T.lost) return; // nothing on the lost device can be read: the last save stays as it was
    await ctx.drawGrids();
    await ctx.autosave();
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
    say(`${T.score}. Lower is better: on MNIST two sets of 256 real digits score about 17, the shipped generator about 15.`, 'ok');
  });
  $('start').onclick = guard(ctx.start);
  $('resume').onclick = guard(ctx.start);
  $('pause').onclick = guard(async () => {
    say('Pausing after the steps in flight…');
    await ctx.stop();
  });
  $('reset').onclick = guard(ctx.reset);
}
