// The page's side of its two workers (www/worker.js): one for the CPU path, one for WebGPU.
// Training sessions and pretrained generators live there and are called like the wasm `Session`
// and `Painter`: the same methods, those that compute returning a promise; grids come back as
// ImageBitmaps. The GPU device itself is opened in its worker and stands here as a `GpuDevice`.
// A dataset is copied to a worker once, when a call first names it.

let nextSession = 0; // ids of remote objects, unique across both workers

// One worker and the calls in flight to it.
class Link {
  constructor(backend) {
    this.backend = backend;
    this.worker = null;
    this.nextId = 0;
    this.pending = new Map();
    this.sent = null; // the Dataset object the worker holds a copy of
  }

  call(op, ...args) {
    this.worker ??= this.start();
    const id = this.nextId++;
    const transfer = args.filter((a) => ArrayBuffer.isView(a)).map((a) => a.buffer);
    this.worker.postMessage({ id, op, args }, transfer);
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  start() {
    const url = new URL(`./worker.js?backend=${this.backend}`, import.meta.url);
    const w = new Worker(url, { type: 'module' });
    w.onmessage = ({ data: { id, result, error } }) => {
      const p = this.pending.get(id);
      this.pending.delete(id);
      if (error === undefined) p.resolve(result);
      else p.reject(new Error(error));
    };
    // A worker that fails (it could not load, say) takes its objects with it: the calls in
    // flight fail, and the next call starts a fresh worker (for WebGPU, "Reconnect" does).
    w.onerror = (e) => {
      const name = this.backend === 'cpu' ? 'CPU' : 'WebGPU';
      const why = new Error(`the ${name} worker failed: ${e.message ?? 'could not start'}`);
      for (const p of this.pending.values()) p.reject(why);
      this.pending.clear();
      w.terminate();
      if (this.worker === w) Object.assign(this, { worker: null, sent: null });
    };
    return w;
  }

  // Makes sure the worker holds `data` (a wasm Dataset of this page); returns the worker's name
  // for it. The pixels go over a few megabytes at a time: copying MNIST's 61 MB out of wasm in
  // one piece held up the page for a tenth of a second.
  async withData(data) {
    if (this.sent !== data) {
      this.sent = null;
      const [size, channels] = [data.size(), data.channels()];
      await this.call('data', size, channels, data.len());
      const images = Math.max(1, Math.floor(CHUNK_BYTES / (channels * size * size)));
      for (let start = 0; start < data.len(); start += images) await this.call('push', data.pixels(start, images));
      this.sent = data;
    }
    return '$data';
  }
}
const CHUNK_BYTES = 4 << 20;
const links = { cpu: new Link('cpu'), webgpu: new Link('webgpu') };

// The CPU backend's wasm heap in bytes, its peak so far (0 before the worker has started).
export const cpuHeapBytes = () => (links.cpu.worker ? links.cpu.call('heap') : Promise.resolve(0));

// {threads, why}: how many threads the CPU path runs on (wasm threads on an isolated page).
export const cpuThreads = () => links.cpu.call('threads');

// `bench_train_step_cpu(options, reps)` in the CPU worker, as the page's CPU runs train there.
export const cpuBench = (options, reps) => links.cpu.call('bench', options, reps);

// An object that lives in a worker under an id: made by worker op `op` (which returns the
// fields the page reads without waiting), its methods called by name, freed with it.
class Remote {
  static async make(backend, op, ...args) {
    const r = new this(links[backend], nextSession++);
    Object.assign(r, await r.link.call(op, r.sid, ...args));
    return r;
  }

  constructor(link, sid) {
    this.link = link;
    this.sid = sid;
  }

  call(method, args = []) {
    return this.link.call('call', this.sid, method, args);
  }
  // A method returning RGBA pixels, as an ImageBitmap `width` wide (square by default).
  picture(method, args = [], width = undefined) {
    return this.link.call('picture', this.sid, method, args, width);
  }

  backend() {
    return this.link.backend;
  }
  describe() {
    return this.info;
  }
  image_size() {
    return this.imageSize;
  }
  free() {
    this.link.call('free', this.sid).catch(() => {});
  }
}

// A training session on `backend` ('cpu' or 'webgpu', whose device must be open).
export class RemoteSession extends Remote {
  // A fresh model (`options` as Session.create reads them).
  static create(backend, options) {
    return this.make(backend, 'create', options);
  }

  // Gives a WebGPU run the kernels' new tiles before its next step; kernel tiles are a WebGPU
  // matter, so a CPU run says false.
  retile() {
    return this.backend() === 'webgpu' ? this.call('retile') : false;
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
    return this.picture('grid');
  }
  save() {
    return this.call('save');
  }
  async train(data, steps) {
    return this.call('train', [await this.link.withData(data), steps]);
  }
  async score(data, count, classifier) {
    return this.call('score', [await this.link.withData(data), count, classifier.slice()]);
  }
  async load(bytes, data) {
    return this.call('load', [bytes.slice(), await this.link.withData(data)]);
  }
}

// A pretrained generator on `backend`.
export class RemotePainter extends Remote {
  // Generator weights (a webgan-generator-1 file or a checkpoint's bytes).
  static create(backend, bytes) {
    return this.make(backend, 'painter', bytes.slice());
  }

  engine() {
    return this.backend() === 'cpu' ? 'cpu' : 'gpu';
  }
  grid(seed) {
    return this.picture('grid', [seed]);
  }
  // `frames` images from a to b, one above the other.
  walk(seed, a, b, frames) {
    return this.picture('walk', [seed, a, b, frames], this.imageSize);
  }
}

// The page's GPU device, open in the WebGPU worker. Its kernel tuning is kept in this page's
// localStorage (workers have none) under the adapter's key, and handed to the worker.
const TUNING = 'webgan tuning: ';
export class GpuDevice {
  // Opens the device (again after a loss); fails with the browser's reason.
  static async open() {
    const tunings = {};
    try {
      for (let i = 0; i < localStorage.length; i++) {
        const key = localStorage.key(i);
        if (key.startsWith(TUNING)) tunings[key.slice(TUNING.length)] = localStorage.getItem(key);
      }
    } catch {
      // storage switched off: the default tiles, and a tuning that lasts this visit
    }
    const { report, key, tuned } = await links.webgpu.call('open', tunings);
    return new GpuDevice(report, key, tuned);
  }

  constructor(report, key, tuned) {
    Object.assign(this, { adapterReport: report, key, tuned });
  }

  // The adapter and its limits, one `label: value [default d]` per line.
  report() {
    return this.adapterReport;
  }
  // Whether this adapter's kernels run with a tuning measured here (on this or an earlier visit).
  is_tuned() {
    return this.tuned;
  }
  // Measures the tiles (in the worker, tens of seconds on a CPU adapter) and keeps them.
  async tune() {
    const tuning = await links.webgpu.call('tune');
    try {
      localStorage.setItem(TUNING + this.key, tuning);
    } catch {
      // storage full or refused: this visit keeps the tuning, the next one measures again
    }
    this.tuned = true;
    return tuning;
  }
  // Resolves, with the reason, when the device is lost (or its worker failed).
  lost() {
    return links.webgpu.call('lost').catch((e) => e.message);
  }
  // Destroys the device, as a lost GPU would (the page's recovery is tested with it).
  destroy() {
    links.webgpu.call('destroy').catch(() => {});
  }
  // GPU errors no call caught, oldest first (a promise).
  take_errors() {
    return links.webgpu.call('errors');
  }
}
