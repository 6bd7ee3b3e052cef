// Training data in the page: the bundled MNIST, or the user's images (a folder from the
// picker, files, or a folder dropped on the page, walked recursively). Images are decoded by a
// pool of workers and pushed into the wasm Dataset in file-path order, so the same folder
// always gives the same dataset (a checkpoint's data order depends on it).

export const MNIST_URL = 'data/mnist/train-images-idx3-ubyte.gz';
export const BUDGET_BYTES = 512 * 1024 * 1024; // pixels kept in memory, at most

// Why a file is skipped without decoding: hidden files, and files in hidden folders (a name
// starting with '.': .DS_Store, ._photo.jpg from macOS, .git/), as the native loader does. The
// first part of a folder's path is the folder the user chose, whatever its name.
export function hiddenReason(path) {
  const parts = path.split('/');
  const below = parts.length > 1 ? parts.slice(1) : parts;
  const at = below.findIndex((p) => p.startsWith('.'));
  if (at < 0) return null;
  return at === below.length - 1 ? "hidden: file (name starts with '.')" : `hidden: in folder ${below[at]} (name starts with '.')`;
}

// The bundled MNIST training images as a Dataset of size x size grey images: each digit centred
// and zero-padded (MNIST's background is 0), as the native loader does (`data::idx::mnist_pool`).
// The file is read as a stream: the browser gunzips it a chunk at a time, each digit is padded as
// its bytes arrive, and the digits go into the Dataset in pieces of at most 20 ms (or 1,024
// digits) with the page's frames in between. (Inflating and padding all 60,000 in one wasm call held up the page for a
// quarter of a second, and gathering the 47 MB into one buffer first for a tenth.)
export async function loadMnist(wasm, size) {
  const response = await fetch(MNIST_URL);
  if (!response.ok) throw new Error(`${MNIST_URL}: HTTP ${response.status}`);
  const reader = response.body.pipeThrough(new DecompressionStream('gzip')).getReader();
  const CHUNK = 1024; // digits per push into wasm at most; fewer when 20 ms have passed
  const head = new Uint8Array(16);
  let heard = 0; // header bytes read
  let data = null, count, rows, cols, padded, plane;
  let done = 0; // digits complete
  let slot = 0; // digits padded and not yet pushed
  let [r, c, to] = [0, 0, 0]; // where the next byte of the digit being read goes in `padded`
  let since = performance.now(); // the last yield to the page
  const start = (s) => (to = s * plane + ((size - rows) >> 1) * size + ((size - cols) >> 1));
  try {
    for (;;) {
      const { done: end, value } = await reader.read();
      if (end) break;
      let i = 0;
      if (heard < 16) {
        const n = Math.min(16 - heard, value.length);
        head.set(value.subarray(0, n), heard);
        [heard, i] = [heard + n, n];
        if (heard < 16) continue;
        const view = new DataView(head.buffer);
        [count, rows, cols] = [4, 8, 12].map((at) => view.getUint32(at));
        if (view.getUint32(0) !== 0x803) throw new Error(`${MNIST_URL} is not an IDX image file`);
        if (rows > size || cols > size) throw new Error(`MNIST's ${rows}x${cols} digits do not fit in ${size}x${size}`);
        plane = size * size;
        data = new wasm.Dataset(size, 1, count * plane);
        data.reserve(count);
        padded = new Uint8Array(CHUNK * plane);
        start(0);
      }
      while (i < value.length && done < count) {
        // The rest of the current row, or as much of it as this piece of the stream holds.
        const n = Math.min(cols - c, value.length - i);
        for (let k = 0; k < n; k++) padded[to + k] = value[i + k];
        i += n;
        to += n;
        c += n;
        if (c < cols) continue;
        c = 0;
        to += size - cols;
        if (++r < rows) continue;
        r = 0;
        done++;
        if (++slot === CHUNK || performance.now() - since > 20) {
          data.push_images(padded.subarray(0, slot * plane));
          slot = 0;
          await new Promise((resolve) => setTimeout(resolve));
          since = performance.now();
        }
        start(slot);
      }
    }
    if (!data || done < count) throw new Error(`${MNIST_URL} ends early: ${done} of ${count ?? '?'} digits`);
  } catch (e) {
    data?.free();
    throw e;
  }
  if (slot > 0) data.push_images(padded.subarray(0, slot * plane));
  return data;
}

// What to call a set of [{file, path}]: the folder they all sit in (a chosen or dropped
// folder), else "N files" (loose files have no folder in their path).
export function datasetName(files) {
  const tops = new Set(files.map((f) => (f.path.includes('/') ? f.path.split('/')[0] : '')));
  const [top] = tops;
  return tops.size === 1 && top ? top : `${files.length} ${files.length === 1 ? 'file' : 'files'}`;
}

// [{file, path}] from an <input type=file> (webkitdirectory or multiple).
export function filesFromInput(input) {
  return [...input.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
}

// [{file, path}] from a drop: folders are walked recursively.
export async function filesFromDrop(dataTransfer) {
  const entries = [...dataTransfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  if (entries.length === 0) return [...dataTransfer.files].map((file) => ({ file, path: file.name }));
  const out = [];
  const walk = async (entry) => {
    if (entry.isFile) {
      out.push({ file: await new Promise((ok, fail) => entry.file(ok, fail)), path: entry.fullPath.replace(/^\//, '') });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail)); // up to 100 at a time
        if (batch.length === 0) break;
        for (const e of batch) await walk(e);
      }
    }
  };
  for (const e of entries) await walk(e);
  return out;
}

// Decodes `files` into a new Dataset of size x size images with `channels` channels.
// onProgress({done, total, loaded, skipped}) is called as files finish. Returns
// {dataset, loaded, skipped: [{path, reason}], unused, grey} (unused: files past the memory
// budget; grey: every image kept is a shade of grey).
// Hidden files are skipped with their reason, not decoded. Reasons start with a kind: "not an
// image", "corrupt image", "hidden" (the native loader's kinds).
export async function decodeFiles(wasm, files, size, channels, onProgress) {
  files = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const dataset = new wasm.Dataset(size, channels, BUDGET_BYTES);
  const skipped = [];
  const results = new Map(); // finished out of order, waiting for their turn
  let next = 0; // the next file (in path order) to push
  let full = false;
  let colour = 0; // images kept that are not grey
  const workers = Array.from({ length: Math.min(4, navigator.hardwareConcurrency || 2) }, () => new Worker('decode-worker.js'));
  let issued = 0;

  const report = () => onProgress?.({ done: next, total: files.length, loaded: dataset.len(), skipped: skipped.length });
  const drain = () => {
    while (results.has(next)) {
      const r = results.get(next);
      results.delete(next);
      if (r.error) skipped.push({ path: files[next].path, reason: r.error });
      else if (!full && !dataset.push_rgba(new Uint8Array(r.rgba.buffer))) full = true;
      else if (!full && !r.grey) colour++;
      next++;
    }
  };
  try {
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise((resolve) => {
            let current = -1; // the file this worker is decoding
            const feed = () => {
              for (;;) {
                // Stop early once the budget is used up; keep at most 64 results waiting.
                if (full || issued >= files.length) return resolve();
                if (issued - next > 64) return setTimeout(feed, 5);
                current = issued++;
                const hidden = hiddenReason(files[current].path);
                if (!hidden) break;
                results.set(current, { error: hidden });
                drain();
              }
              worker.postMessage({ id: current, file: files[current].file, size });
            };
            worker.onmessage = ({ data }) => {
              results.set(data.id, data);
              drain();
              report();
              feed();
            };
            worker.onerror = (e) => {
              e.preventDefault();
              results.set(current, { error: `decoder failed (${e.message})` });
              drain();
              feed();
            };
            feed();
          }),
      ),
    );
  } finally {
    workers.forEach((w) => w.terminate());
  }
  drain();
  report();
  return { dataset, loaded: dataset.len(), skipped, unused: files.length - next, grey: dataset.len() > 0 && colour === 0 };
}
