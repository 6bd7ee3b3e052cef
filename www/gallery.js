// The pretrained generators: an 8x8 grid per model (re-roll draws new z), a looping walk
// between two of its images along a great circle of z-space, and a PNG download.

import { show, downloadPng } from './canvas.js';
import { RemotePainter } from './remote.js';

const FRAMES = 48; // images per walk, drawn in one batch
const FRAME_MS = 60;
// `?gallery-on-gpu` in the address draws on WebGPU after the first grid even on an emulated
// adapter (the page tests have no real GPU).
const ON_GPU_ALWAYS = new URLSearchParams(location.search).has('gallery-on-gpu');

// `adapter` ({name, emulated}, or null without WebGPU) decides where grids after the first are
// drawn: on a real GPU there; on a CPU emulation of one the fast CPU path is quicker. The
// first grid is always drawn on the CPU (in the CPU backend's worker, off the page's thread):
// it needs no shader compiles, so it comes at once.
export function startGallery(gpu, adapter, state) {
  for (const card of document.querySelectorAll('#gallery .card')) {
    const name = card.id.replace(/^card-/, '');
    state.gallery[name] = 'loading';
    const drawn = (engine) => {
      state.gallery[name] = 'ready';
      state.firstGridMs ??= Math.round(performance.now()); // since navigation started
      state.firstGridEngine ??= engine;
    };
    startCard(adapter?.emulated && !ON_GPU_ALWAYS ? null : gpu, card, drawn)
      .catch((e) => {
        state.gallery[name] = `error: ${e.message ?? e}`;
        card.querySelector('.card-info').textContent = `Could not draw: ${e.message ?? e}`;
        card.classList.add('failed');
      });
  }
}

async function startCard(gpu, card, drawn) {
  const url = card.dataset.weights;
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  let painter = await RemotePainter.create('cpu', bytes);
  const [gridCanvas, walkCanvas] = card.querySelectorAll('canvas');
  const info = card.querySelector('.card-info');
  const kib = Math.round(bytes.length / 1024);
  const describe = () => {
    info.textContent = `${painter.describe()}\nweights: ${kib} KiB, drawn on the ${painter.engine().toUpperCase()}`;
  };
  describe();

  let seed = (Math.random() * 2 ** 32) >>> 0;
  const size = painter.image_size();
  const strip = document.createElement('canvas');
  let walkTimer = null;

  const drawGrid = async () => {
    const t = performance.now();
    show(gridCanvas, await painter.grid(seed));
    card.dataset.ms = Math.round(performance.now() - t);
  };
  const drawWalk = async () => {
    const a = Math.floor(Math.random() * 64);
    const b = (a + 1 + Math.floor(Math.random() * 63)) % 64;
    show(strip, await painter.walk(seed, a, b, FRAMES));
    walkCanvas.width = size;
    walkCanvas.height = size;
    clearInterval(walkTimer);
    let i = 0;
    walkTimer = setInterval(() => {
      const f = i % (2 * FRAMES - 2); // there and back
      const frame = f < FRAMES ? f : 2 * FRAMES - 2 - f;
      walkCanvas.getContext('2d').drawImage(strip, 0, frame * size, size, size, 0, 0, size, size);
      i++;
    }, FRAME_MS);
  };
  const buttons = card.querySelectorAll('button');
  const busy = (on) => buttons.forEach((b) => (b.disabled = on));
  // A painter on a GPU device that was lost (or whose worker failed) cannot draw: the card
  // draws on the CPU path from then on, with the same weights and seed.
  const guarded = (f) => async () => {
    busy(true);
    try {
      await f().catch(async (e) => {
        if (painter.engine() !== 'gpu') throw e;
        console.warn('drawing on the GPU failed; the card draws on the CPU from now on:', e);
        painter.free();
        painter = await RemotePainter.create('cpu', bytes);
        describe();
        await f();
      });
    } catch (e) {
      info.textContent += `\nerror: ${e.message ?? e}`;
    } finally {
      busy(false);
    }
  };
  card.querySelector('.reroll').onclick = guarded(async () => {
    seed = (Math.random() * 2 ** 32) >>> 0;
    await drawGrid();
    await drawWalk();
  });
  card.querySelector('.rewalk').onclick = guarded(drawWalk);
  card.querySelector('.download').onclick = () => downloadPng(gridCanvas, `webgan-${card.id.replace('card-', '')}-${seed}.png`);

  await drawGrid();
  drawn(painter.engine());
  if (gpu) {
    // The same weights and seed on the GPU from now on: the grid on screen stays as it is.
    painter.free();
    painter = await RemotePainter.create('webgpu', bytes);
    describe();
  }
  busy(false);
  await drawWalk();
  card.dataset.walk = 'ready';
}
