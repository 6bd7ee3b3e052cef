// A lost GPU device. It is gone with everything on it; the automatic save in IndexedDB is not.
// Pause, say so, and offer to open a new device and carry on from that save, without a reload.
// Runs on the CPU path carry on, and new runs go there.

import { allSaves } from './storage.js';
import { watchGpuErrors } from './gpu-errors.js';
import { GpuDevice } from './remote.js';

const $ = (id) => document.getElementById(id);

export function installDevice(ctx) {
  const { state, S, T, field, say, guard } = ctx;
  // ctx.lostSignal resolves when the current device is lost (after the page has said so).
  const watch = (device) =>
    (ctx.lostSignal = device.lost().then((why) => {
      if (device !== ctx.gpu) return;
      if (!S.runs.some((r) => r.session.backend() === 'webgpu')) {
        // Nothing here lived on the device: runs on the CPU carry on, and new runs go there too.
        ctx.gpu = null;
        ctx.noGpu = `the GPU device was lost (${why})`;
        T.gpuLost = why;
        field('backend').value = 'cpu';
        field('backend').disabled = true;
        ctx.showBackend();
        return;
      }
      T.lost = why;
      S.running = false;
      S.lock = Promise.resolve(); // calls in flight on the dead device may never settle
      say(`The GPU device was lost (${why}). Training is paused; the last automatic save${T.autosaveStep !== undefined ? ` (step ${T.autosaveStep})` : ''} is intact in this browser.`, 'error');
      $('reconnect').hidden = false;
      ctx.buttons();
    }));
  if (ctx.gpu) watch(ctx.gpu);
  state.debug = { loseGpu: () => ctx.gpu?.destroy() };
  $('reconnect').onclick = guard(async () => {
    const fresh = await GpuDevice.open();
    const saves = await allSaves();
    ctx.gpu = fresh;
    watch(ctx.gpu);
    watchGpuErrors(ctx.gpu, state);
    S.runs.forEach((r) => r.session.free());
    S.runs = [];
    $('runs').replaceChildren();
    S.loop = null;
    T.lost = undefined;
    $('reconnect').hidden = true;
    const last = saves.sort((a, b) => b.time - a.time)[0];
    if (!last) {
      say('A new GPU device is ready; there was no automatic save yet: Start trains a new model.', 'ok');
      return;
    }
    await ctx.loadCheckpoint(last.bytes, last.data === 'mnist' ? 'mnist' : undefined);
    say(`A new GPU device is ready; loaded the automatic save at step ${last.step}. Resume carries on from there.`, 'ok');
  });
}
