// The CPU backend's thread: training sessions and pretrained generators on the fast CPU path
// (src/fast compiled to wasm with SIMD) run here, so a step that takes the CPU half a second,
// or a grid of 64 faces, never holds up the page.
// Messages come from www/cpu-session.js: {id, op, args}; each gets {id, result} or {id, error}.

import init, { Session, Dataset, Painter } from './pkg/webgan.js';

const ready = init();
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
  data(size, channels, pixels) {
    data?.free();
    data = null;
    data = Dataset.from_pixels(size, channels, pixels);
  },
  call(sid, method, args) {
    return sessions.get(sid)[method](...resolve(args));
  },
  // The wasm heap's size in bytes (it only grows: its size is the peak so far).
  async heap() {
    return (await ready).memory.buffer.byteLength;
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
    // Pixels and checkpoints travel without a copy.
    const transfer = ArrayBuffer.isView(result) ? [result.buffer] : [];
    self.postMessage({ id, result }, transfer);
  } catch (e) {
    self.postMessage({ id, error: e?.message ?? String(e) });
  }
};
