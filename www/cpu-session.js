// Sessions on the CPU backend, and pretrained generators drawn on the CPU, run in a worker
// (www/cpu-worker.js) and called like the wasm `Session` and `Painter` on the page's thread:
// the same methods, those that compute returning a promise (training.js and gallery.js await
// them either way). The dataset is copied to the worker once, when a call first names it.

let worker = null;
let nextId = 0; // message ids
let nextSession = 0;
const pending = new Map();
const sent = { data: null }; // the Dataset object the worker holds a copy of

function call(op, ...args) {
  worker ??= startWorker();
  const id = nextId++;
  const transfer = args.filter((a) => ArrayBuffer.isView(a)).map((a) => a.buffer);
  worker.postMessage({ id, op, args }, transfer);
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}

function startWorker() {
  const w = new Worker(new URL('./cpu-worker.js', import.meta.url), { type: 'module' });
  w.onmessage = ({ data: { id, result, error } }) => {
    const p = pending.get(id);
    pending.delete(id);
    if (error === undefined) p.resolve(result);
    else p.reject(new Error(error));
  };
  w.onerror = (e) => {
    const why = new Error(`the CPU training worker failed: ${e.message ?? 'could not start'}`);
    for (const p of pending.values()) p.reject(why);
    pending.clear();
  };
  return w;
}

// Makes sure the worker holds `data` (a wasm Dataset of this page); returns the worker's name for
// it. The pixels go over a few megabytes at a time: copying MNIST's 61 MB out of wasm in one
// piece held up the page for a tenth of a second.
const CHUNK_BYTES = 4 << 20;
async function withData(data) {
  if (sent.data !== data) {
    sent.data = null;
    const [size, channels] = [data.size(), data.channels()];
    await call('data', size, channels, data.len());
    const images = Math.max(1, Math.floor(CHUNK_BYTES / (channels * size * size)));
    for (let start = 0; start < data.len(); start += images) await call('push', data.pixels(start, images));
    sent.data = data;
  }
  return '$data';
}

// The CPU backend's wasm heap in bytes, its peak so far (0 before the worker has started).
export const cpuHeapBytes = () => (worker ? call('heap') : Promise.resolve(0));

// {threads, why}: how many threads the CPU path runs on (wasm threads on an isolated page).
export const cpuThreads = () => call('threads');

// `bench_train_step_cpu(options, reps)` in the worker, as the page's CPU runs train there.
export const cpuBench = (options, reps) => call('bench', options, reps);

// An object that lives in the worker under an id: made by worker op `op` (which returns the
// fields the page reads without waiting), its methods called by name, freed with it.
class Remote {
  static async make(op, ...args) {
    const r = new this(nextSession++);
    Object.assign(r, await call(op, r.sid, ...args));
    return r;
  }

  constructor(sid) {
    this.sid = sid;
  }

  call(method, args = []) {
    return call('call', this.sid, method, args);
  }

  describe() {
    return this.info;
  }
  image_size() {
    return this.imageSize;
  }
  free() {
    call('free', this.sid).catch(() => {});
  }
}

export class CpuSession extends Remote {
  // A fresh model (`options` as Session.create reads them), in the worker.
  static create(options) {
    return this.make('create', options);
  }

  backend() {
    return 'cpu';
  }
  // Kernel tiles are a WebGPU matter.
  retile() {
    return false;
  }
  options() {
    return this.opts;
  }
  batch() {
    return this.batchSize;
  }
  channels() {
    return this.chans;
  }
  step() {
    return this.call('step');
  }
  epochs() {
    return this.call('epochs');
  }
  metrics(from) {
    return this.call('metrics', [from]);
  }
  grid() {
    return this.call('grid');
  }
  save() {
    return this.call('save');
  }
  async train(data, steps) {
    return this.call('train', [await withData(data), steps]);
  }
  async score(data, count, classifier) {
    return this.call('score', [await withData(data), count, classifier.slice()]);
  }
  async load(bytes, data) {
    return this.call('load', [bytes.slice(), await withData(data)]);
  }
}

export class CpuPainter extends Remote {
  // Generator weights (a webgan-generator-1 file or a checkpoint's bytes), in the worker.
  static create(bytes) {
    return this.make('painter', bytes.slice());
  }

  engine() {
    return 'cpu';
  }
  grid(seed) {
    return this.call('grid', [seed]);
  }
  walk(seed, a, b, frames) {
    return this.call('walk', [seed, a, b, frames]);
  }
}
