// Where new runs train, and why: WebGPU on a real GPU, the fast CPU path (WebAssembly with SIMD
// and threads, in a worker) where there is no WebGPU or it is a CPU emulation (SwiftShader,
// llvmpipe, WARP run the WGSL kernels several times slower than the CPU path runs the same
// step), the faster of the two where a probe has timed both on this model, or what the user
// chose. And the kernel tuning, which waits for an idle page.

import { RemoteSession, cpuThreads } from './remote.js';

const $ = (id) => document.getElementById(id);
// The kernel tuning waits for the page to sit idle this long (`?tune-after=SECONDS` sets it: the
// page tests cannot wait half a minute for each thing they check).
const IDLE_TUNE_MS = 1000 * (Number(new URLSearchParams(location.search).get('tune-after')) || 30);
const PROBE_STEPS = 2; // timed per path, after one untimed step (pipeline compiles, first buffers)
// `?probe` in the address probes on an emulated adapter too (the page tests have no real GPU).
const PROBE_ALWAYS = new URLSearchParams(location.search).has('probe');

export function installBackend(ctx) {
  const { adapter, state, S, T, field, say, exclusive } = ctx;
  ctx.noGpu = 'this browser has no WebGPU'; // why new runs cannot use WebGPU, once they cannot
  // A probe's verdict per adapter and model, kept for later visits: {webgpu, cpu} in ms/step.
  const probeKey = (opts) => `webgan-probe ${adapter?.name} ${opts}`;
  const probed = (opts) => {
    try {
      return JSON.parse(localStorage.getItem(probeKey(opts)));
    } catch {
      return null;
    }
  };
  const wantsProbe = () => field('backend').value === 'auto' && !!ctx.gpu && (PROBE_ALWAYS || !adapter?.emulated);
  const backend = (opts = ctx.options()) => {
    const asked = field('backend').value;
    if (!ctx.gpu) return { use: 'cpu', why: ctx.noGpu };
    if (asked === 'webgpu') return { use: 'webgpu', why: 'chosen' };
    if (asked === 'cpu') return { use: 'cpu', why: 'chosen' };
    const p = wantsProbe() && probed(opts);
    if (p) {
      const use = p.cpu < p.webgpu ? 'cpu' : 'webgpu';
      const ms = (v) => `${v.toFixed(v < 100 ? 1 : 0)} ms`;
      return { use, why: `a probe timed this model's step at ${ms(p.webgpu)} on WebGPU (${adapter?.name}) and ${ms(p.cpu)} on the CPU` };
    }
    if (adapter?.emulated && !PROBE_ALWAYS) return { use: 'cpu', why: `WebGPU here is ${adapter.name}, a CPU emulation: the CPU path is faster` };
    return { use: 'webgpu', why: `WebGPU on ${adapter?.name ?? 'the GPU'}; Start times both paths on the model first and keeps the faster` };
  };
  // Times PROBE_STEPS steps of `opts` on each path, on the current data, and keeps the verdict.
  // Both probe models are thrown away: the run itself starts fresh on the faster path.
  const probe = async (opts) => {
    const times = {};
    for (const use of ['webgpu', 'cpu']) {
      say(`Timing a step of this model on ${use === 'cpu' ? 'the CPU' : 'WebGPU'}, to train on the faster…`);
      const session = await RemoteSession.create(use, opts);
      try {
        await session.train(S.data, 1);
        const t0 = performance.now();
        await session.train(S.data, PROBE_STEPS); // resolves once the GPU has run them
        times[use] = (performance.now() - t0) / PROBE_STEPS;
      } finally {
        session.free();
      }
    }
    T.probe = times;
    try {
      localStorage.setItem(probeKey(opts), JSON.stringify(times));
    } catch {
      // storage full or refused: the verdict holds for this visit's runs only
    }
    return times;
  };
  ctx.threads = null; // {threads, why} once the CPU worker has said
  const cpuWhere = () => {
    const t = ctx.threads;
    if (!t) return 'the CPU (WebAssembly with SIMD, in a worker)';
    const n = t.threads > 1 ? `${t.threads} threads` : `one thread: ${t.why}`;
    return `the CPU (WebAssembly with SIMD, in a worker, ${n})`;
  };
  ctx.showBackend = () => {
    const b = backend();
    T.backendWhy = b.why;
    $('backend-why').textContent = `New runs train on ${b.use === 'cpu' ? cpuWhere() : 'WebGPU'}: ${b.why}.`;
  };
  cpuThreads().then((t) => {
    ctx.threads = state.cpuThreads = t;
    ctx.showBackend();
  });
  if (!ctx.gpu) {
    field('backend').value = 'cpu';
    field('backend').disabled = true;
  }
  $('controls').addEventListener('change', ctx.showBackend); // the backend, or the model probed
  ctx.showBackend();
  // A new run (`opts` from the controls, and its `kind`) may be probed first; its verdict holds
  // for both kinds. A loaded checkpoint (`opts` naming its kind) follows the verdict shown.
  ctx.createSession = async (opts, kind) => {
    if (kind && wantsProbe() && !probed(opts)) {
      await exclusive(() => probe(opts));
      ctx.showBackend();
    }
    const options = kind ? `${opts} kind=${kind}` : opts;
    const b = backend(kind ? opts : undefined);
    return RemoteSession.create(b.use, options);
  };

  // The kernels' tile shapes for this adapter are measured once and kept in localStorage. That
  // takes tens of seconds on a CPU adapter (nearly all of it shader compiles), so nothing waits
  // for it: runs start with the cached tuning or the adapter class's default, and the tuning
  // runs only once the page has sat idle for a while after a run. Then the runs on WebGPU take
  // the new tiles before their next step (`Session.retile`: same model, same step), and runs
  // created afterwards (and later visits) start with them.
  const tuneWhenIdle = () => {
    if (S.tuning || S.running || S.actions > 0 || T.lost) return;
    if (!S.runs.some((r) => r.session.backend() === 'webgpu')) return;
    if (performance.now() - S.lastBusy < IDLE_TUNE_MS) return;
    if (ctx.gpu.is_tuned()) return;
    const before = T.message;
    say('Tuning the kernels for this GPU while the page is idle (once; the runs go on with them)…');
    S.tuning = exclusive(() => ctx.gpu.tune())
      .then(async (tuning) => {
        console.log(`kernel tuning: ${tuning}`);
        let retiled = 0;
        for (const run of S.runs) if (await exclusive(() => run.session.retile())) retiled++;
        T.retiled = (T.retiled ?? 0) + retiled;
        const which = retiled ? 'the runs continue with them, as will new runs' : 'new runs use them';
        if (T.message.startsWith('Tuning')) say(`${before} (Kernels tuned for this GPU: ${which}.)`);
      })
      .catch((e) => console.warn('kernel tuning failed (the default tiles stay):', e))
      .finally(() => {
        S.tuning = null;
        S.lastBusy = performance.now();
      });
  };
  setInterval(tuneWhenIdle, 5_000);
}
