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

// Makes sure the worker holds `data` (a wasm Dataset of this page); returns the worker's name for it.
async function withData(data) {
  if (sent.data !== data) {
    sent.data = null;
    await call('data', data.size(), data.channels(), data.pixels());
    sent.data = data;
  }
  return '$data';
}

// The CPU backend's wasm heap in bytes, its peak so far (0 before the worker has started).
export const cpuHeapBytes = () => (worker ? call('heap') : Promise.resolve(0));

export class CpuSession {
  // A fresh model (`options` as Session.create reads them), in the worker.
  static async create(options) {
    const s = new CpuSession(nextSession++);
    Object.assign(s, await call('create', s.sid, options));
    return s;
  }

  constructor(sid) {
    this.sid = sid;
  }

  backend() {
    return 'cpu';
  }
  describe() {
    return this.info;
  }
  options() {
    return this.opts;
  }
  batch() {
    return this.batchSize;
  }
  image_size() {
    return this.imageSize;
  }
  channels() {
    return this.chans;
  }
  step() {
    return call('call', this.sid, 'step', []);
  }
  epochs() {
    return call('call', this.sid, 'epochs', []);
  }
  metrics(from) {
    return call('call', this.sid, 'metrics', [from]);
  }
  grid() {
    return call('call', this.sid, 'grid', []);
  }
  save() {
    return call('call', this.sid, 'save', []);
  }
  async train(data, steps) {
    return call('call', this.sid, 'train', [await withData(data), steps]);
  }
  async score(data, count, classifier) {
    return call('call', this.sid, 'score', [await withData(data), count, classifier.slice()]);
  }
  async load(bytes, data) {
    return call('call', this.sid, 'load', [bytes.slice(), await withData(data)]);
  }
  free() {
    call('free', this.sid).catch(() => {});
  }
}

export class CpuPainter {
  // Generator weights (a webgan-generator-1 file or a checkpoint's bytes), in the worker.
  static async create(bytes) {
    const p = new CpuPainter(nextSession++);
    Object.assign(p, await call('painter', p.sid, bytes.slice()));
    return p;
  }

  constructor(sid) {
    this.sid = sid;
  }

  engine() {
    return 'cpu';
  }
  describe() {
    return this.info;
  }
  image_size() {
    return this.imageSize;
  }
  grid(seed) {
    return call('call', this.sid, 'grid', [seed]);
  }
  walk(seed, a, b, frames) {
    return call('call', this.sid, 'walk', [seed, a, b, frames]);
  }
  free() {
    call('free', this.sid).catch(() => {});
  }
}
