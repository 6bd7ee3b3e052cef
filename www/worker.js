// A backend's thread. The page never trains or draws on its own thread: training sessions and
// pretrained generators live in one of two workers, called from www/remote.js.
//   worker.js?backend=cpu     the fast CPU path (src/fast compiled to wasm with SIMD)
//   worker.js?backend=webgpu  the WGSL kernels on WebGPU: the device is opened here, so shader
//                             compiles, command encoding and readbacks never hold up the tab
// Messages: {id, op, args}; each gets {id, result} or {id, error}. Grids come back as
// ImageBitmaps drawn on an OffscreenCanvas here, for the page to show without a copy.
//
// The CPU worker, on a cross-origin-isolated page (SharedArrayBuffer available), loads the
// threaded build (pkg-threads, built by ./build.sh with a nightly toolchain) and starts rayon's
// pool on every core; otherwise, or when that build is missing, the single-threaded one.
// `threads` says which.

const BACKEND = new URL(self.location.href).searchParams.get('backend');
let api, wasm;
let threading = { threads: 1, why: '' };

// The threaded package when this page may use it, else the plain one. Never fails over a missing
// threaded build: the plain one trains too, more slowly. The GPU worker needs no threads.
async function load() {
  if (BACKEND !== 'cpu') {
    threading.why = 'the WebGPU worker runs no wasm threads';
  } else if (self.crossOriginIsolated && typeof SharedArrayBuffer === 'function') {
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

const ready = load().then((mod) => (api = mod));
const objects = new Map(); // sessions and painters, by the page's ids (never repeated)
let data = null; // the one dataset the page last sent (a wasm Dataset)
let gpu = null; // the GPU worker's device (a wasm WebGpu), once opened

// Arguments name the dataset as '$data' (it lives here, not in the message).
const resolve = (args) => args.map((a) => (a === '$data' ? data : a));

const device = () => {
  if (!gpu) throw new Error('no GPU device is open in this worker');
  return gpu;
};

// RGBA pixels `width` wide as an ImageBitmap (square when no width is given).
function bitmap(rgba, width) {
  const w = width ?? Math.round(Math.sqrt(rgba.length / 4));
  const canvas = new OffscreenCanvas(w, rgba.length / 4 / w);
  canvas.getContext('2d').putImageData(new ImageData(rgba, w, canvas.height), 0, 0);
  return canvas.transferToImageBitmap();
}

const ops = {
  // A fresh model (`options` as Session.create reads them) on this worker's backend; returns
  // what the page reads without waiting.
  create(sid, options) {
    const s = BACKEND === 'cpu' ? api.Session.create_cpu(options) : api.Session.create(device(), options);
    objects.set(sid, s);
    return { info: s.describe(), opts: s.options(), batchSize: s.batch(), imageSize: s.image_size(), chans: s.channels() };
  },
  // Generator weights (a webgan-generator-1 file or a checkpoint's bytes).
  painter(sid, bytes) {
    const p = BACKEND === 'cpu' ? api.Painter.on_cpu(bytes) : api.Painter.on_gpu(device(), bytes);
    objects.set(sid, p);
    return { info: p.describe(), imageSize: p.image_size() };
  },
  // A new dataset of `images` images, whose pixels `push` brings a chunk at a time.
  data(size, channels, images) {
    data?.free();
    data = null;
    data = new api.Dataset(size, channels, images * channels * size * size);
    data.reserve(images);
  },
  push(pixels) {
    data.push_images(pixels);
  },
  call(sid, method, args) {
    return objects.get(sid)[method](...resolve(args));
  },
  // A method that returns RGBA pixels, as an ImageBitmap `width` wide (square by default).
  async picture(sid, method, args, width) {
    return bitmap(await objects.get(sid)[method](...args), width);
  },
  free(sid) {
    objects.get(sid)?.free();
    objects.delete(sid);
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

  // The GPU worker's device. `tunings` are the tunings the page keeps, by key: the one for this
  // adapter and build, if any, is used. A second open (after a lost device) replaces the first,
  // which is left to the garbage collector: freeing it here would report it lost to the page.
  async open(tunings) {
    gpu = await api.WebGpu.open();
    const key = gpu.tuning_key();
    const tuned = key in tunings && gpu.use_tuning(tunings[key]);
    return { report: gpu.report(), key, tuned };
  },
  // Measures the tiles for this adapter; returns the tuning for the page to keep.
  tune() {
    return device().tune((line) => console.log(line));
  },
  // Resolves, with the reason, when this device is lost.
  lost() {
    return device().lost();
  },
  destroy() {
    device().destroy();
  },
  // GPU errors no call caught, oldest first (cleared).
  errors() {
    return gpu ? gpu.take_errors() : [];
  },
};

self.onmessage = async ({ data: { id, op, args } }) => {
  try {
    await ready;
    const result = await ops[op](...args);
    // Pixels, pictures and checkpoints travel without a copy (never the shared wasm memory).
    const own = ArrayBuffer.isView(result) && result.buffer instanceof ArrayBuffer;
    const transfer = own ? [result.buffer] : result instanceof ImageBitmap ? [result] : [];
    self.postMessage({ id, result }, transfer);
  } catch (e) {
    self.postMessage({ id, error: e?.message ?? String(e) });
  }
};
