// Where new runs train, and why: WebGPU on a real GPU, the fast CPU path (WebAssembly with SIMD
// and threads, in a worker) where there is no WebGPU or it is a CPU emulation (SwiftShader,
// llvmpipe, WARP run the WGSL kernels several times slower than the CPU path runs the same
// step), or what the user chose. And the kernel tuning, which waits for an idle page.

import { CpuSession, cpuThreads } from './cpu-session.js';

const $ = (id) => document.getElementById(id);
const IDLE_TUNE_MS = 30_000; // the kernel tuning waits for the page to sit idle this long

export function installBackend(ctx) {
  const { wasm, adapter, state, S, T, field, say, exclusive } = ctx;
  ctx.noGpu = 'this browser has no WebGPU'; // why new runs cannot use WebGPU, once they cannot
  const backend = () => {
    const asked = field('backend').value;
    if (!ctx.gpu) return { use: 'cpu', why: ctx.noGpu };
    if (asked === 'webgpu') return { use: 'webgpu', why: 'chosen' };
    if (asked === 'cpu') return { use: 'cpu', why: 'chosen' };
    return adapter?.emulated
      ? { use: 'cpu', why: `WebGPU here is ${adapter.name}, a CPU emulation: the CPU path is faster` }
      : { use: 'webgpu', why: `WebGPU on ${adapter?.name ?? 'the GPU'}` };
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
  field('backend').onchange = ctx.showBackend;
  ctx.showBackend();
  ctx.createSession = (opts) => (backend().use === 'cpu' ? CpuSession.create(opts) : wasm.Session.create(ctx.gpu, opts));

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
    S.tuned ??= ctx.gpu.is_tuned();
    if (S.tuned) return;
    const before = T.message;
    say('Tuning the kernels for this GPU while the page is idle (once; new runs use them)…');
    S.tuning = exclusive(() => ctx.gpu.tune((line) => console.log(line)))
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
}
