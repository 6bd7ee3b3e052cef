// The CPU backend's thread: training sessions and pretrained generators on the fast CPU path
// (src/fast compiled to wasm with SIMD) run here, so a step that takes the CPU half a second,
// or a grid of 64 faces, never holds up the page.
// Messages come from www/cpu-session.js: {id, op, args}; each gets {id, result} or {id, error}.
//
// On a cross-origin-isolated page (SharedArrayBuffer available) it loads the threaded build
// (pkg-threads, built by ./build.sh with a nightly toolchain) and starts rayon's pool on every
// core; otherwise, or when that build is missing, the single-threaded one. `threads` says which.

let api, Session, Dataset, Painter, wasm;
let threading = { threads: 1, why: '' };

// The threaded package when this page may use it, else the plain one. Never fails over a missing
// threaded build: the plain one trains too, more slowly.
async function load() {
  if (self.crossOriginIsolated && typeof SharedArrayBuffer === 'function') {
    try {
      const mod = await import('./pkg-threads/webgan.js');
      wasm = await mod.default();
      const cores = Math.max(1, navigator.hardwareConcurrency || 1);
      await mod.initThreadPool(cores);
      threading = { threads: mod.cpu_threads(), why: `wasm threads, one per logical core` };
      return mod;
    } catch (e) {
      threading.why = `the threaded build did not load (${e?.message ?? e})`;
    }
  } else {
    threading.why = 'the page is not cross-origin isolated, so it has no shared memory for wasm threads';
  }
  const mod = await import('./pkg/webgan.js');
  wasm = await mod.default();
  return mod;
}

const ready = load().then((mod) => ({ Session, Dataset, Painter } = api = mod));
const sessions = new Map(); // and painters: ids never repeat
let data = null; // the one dataset the page last sent (a wasm Dataset)

// Arguments name the dataset as '$data' (it lives here, not in the message).
const resolve = (args) => args.map((a) => (a === '$data' ? data : a));

const ops = {
  create(sid, options) {
    const s = Session.create_cpu(options);
    sessions.set(sid, s);
    // What the page reads without waiting (CpuSession keeps them).
    return { info: s.describe(), opts: s.options(), batchSize: s.batch(), imageSize: s.image_size(), chans: s.channels() };
  },
  painter(sid, bytes) {
    const p = Painter.on_cpu(bytes);
    sessions.set(sid, p);
    return { info: p.describe(), imageSize: p.image_size() };
  },
  // A new dataset of `images` images, whose pixels `push` brings a chunk at a time.
  data(size, channels, images) {
    data?.free();
    data = null;
    data = new Dataset(size, channels, images * channels * size * size);
    data.reserve(images);
  },
  push(pixels) {
    data.push_images(pixels);
  },
  call(sid, method, args) {
    return sessions.get(sid)[method](...resolve(args));
  },
  // The wasm heap's size in bytes (it only grows: its size is the peak so far).
  heap() {
    return wasm.memory.buffer.byteLength;
  },
  // How many threads the CPU path runs on, and why.
  threads() {
    return threading;
  },
  // One timed training step of the CPU path (./build.sh compare's webgan-cpu row).
  bench(options, reps) {
    return api.bench_train_step_cpu(options, reps);
  },
  free(sid) {
    sessions.get(sid)?.free();
    sessions.delete(sid);
  },
};

self.onmessage = async ({ data: { id, op, args } }) => {
  try {
    await ready;
    const result = await ops[op](...args);
    // Pixels and checkpoints travel without a copy (never the shared wasm memory itself).
    const own = ArrayBuffer.isView(result) && result.buffer instanceof ArrayBuffer;
    const transfer = own ? [result.buffer] : [];
    self.postMessage({ id, result }, transfer);
  } catch (e) {
    self.postMessage({ id, error: e?.message ?? String(e) });
  }
};
