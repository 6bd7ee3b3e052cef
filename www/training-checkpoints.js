// Checkpoints (the CLI's safetensors format) to and from files, the automatic save to browser
// storage every minute, the offer to resume it on a later visit, and going back to it when a
// loss diverges. A refused file changes nothing.

import { downloadBlob } from './canvas.js';
import { loadMnist } from './data.js';
import { putSave, allSaves } from './storage.js';

const $ = (id) => document.getElementById(id);

export function installCheckpoints(ctx) {
  const { wasm, state, S, T, field, say, exclusive, guard } = ctx;

  const dataTag = () => (S.source?.kind === 'mnist' ? 'mnist' : `folder:${S.source?.name}:${S.data?.len()}`);
  ctx.autosave = async () => {
    S.lastSave = performance.now();
    for (const run of S.runs) {
      const bytes = await exclusive(() => run.session.save());
      const step = await exclusive(() => run.session.step());
      await putSave(run.label, { bytes, options: run.session.options(), step, data: dataTag(), label: run.label, time: Date.now() });
    }
    T.autosaves++;
    T.autosaveStep = T.step;
  };
  $('save').onclick = guard(async () => {
    const run = S.runs[0];
    const bytes = await exclusive(() => run.session.save());
    const step = await exclusive(() => run.session.step());
    state.lastCheckpoint = { bytes, step };
    downloadBlob(new Blob([bytes]), `webgan-${run.label.toLowerCase()}-step${step}.safetensors`);
    say(`Saved ${run.label} at step ${step} (${(bytes.length / 1e6).toFixed(1)} MB).`, 'ok');
  });
  // Loads checkpoint bytes into a new session. Everything is checked before anything changes:
  // a refused file leaves the current model, data and controls as they were.
  ctx.loadCheckpoint = async (bytes, source) => {
    const opts = wasm.Session.checkpoint_options(bytes); // throws if it is not a checkpoint
    const size = Number(/size=(\d+)/.exec(opts)[1]);
    const channels = Number(/channels=(\d+)/.exec(opts)[1]);
    let data = S.data;
    if (!data || data.size() !== size || data.channels() !== channels) {
      const mnist = channels === 1 && (source === 'mnist' || !S.source || S.source.kind === 'mnist');
      if (!mnist) {
        throw new Error(`it was trained on ${channels === 1 ? 'grey' : 'RGB'} ${size}×${size} images: load those (Image size ${size}, Colour ${channels === 1 ? 'grey' : 'RGB'}) first`);
      }
      data = await loadMnist(wasm, size);
    }
    const session = await ctx.createSession(opts);
    let step;
    try {
      step = await session.load(bytes, data);
    } catch (e) {
      session.free();
      if (data !== S.data) data.free();
      throw e;
    }
    await ctx.reset();
    if (data !== S.data) ctx.adoptMnist(data, size); // the only data loaded here is MNIST
    ctx.setControls(opts);
    field('kind').value = /kind=(\w+)/.exec(opts)[1];
    ctx.addRun(session, /kind=basic/.test(opts) ? 'BasicGAN' : 'DCGAN');
    await ctx.drawGrids();
    T.step = step;
    $('s-step').textContent = step;
    say(`Loaded a checkpoint at step ${step}: Resume continues exactly from there.`, 'ok');
  };
  $('load').onchange = guard(async (e) => {
    const file = e.target.files[0];
    e.target.value = '';
    if (!file) return;
    try {
      await ctx.loadCheckpoint(new Uint8Array(await file.arrayBuffer()));
    } catch (err) {
      throw new Error(`${file.name} was not loaded: ${err.message ?? err}. The current model is unchanged.`);
    }
  });

  // A loss became NaN or infinite: the weights are ruined. Go back to the last automatic save
  // (saved only from finite losses, and a checkpoint holding NaN is refused anyway).
  ctx.restoreAfterDivergence = async (e) => {
    T.diverged = e.message;
    const last = (await allSaves()).filter((r) => r.label === e.diverged).sort((a, b) => b.time - a.time)[0];
    if (!last) {
      say(`${e.message}. Training is paused; there is no earlier save to go back to: Reset, lower the learning rate, Start.`, 'error');
      return;
    }
    try {
      await ctx.loadCheckpoint(last.bytes, last.data === 'mnist' ? 'mnist' : undefined);
      say(`${e.message}. Training is paused and the last good state (step ${last.step}, the automatic save) is restored; a lower learning rate may help.`, 'error');
    } catch (err) {
      say(`${e.message}. Training is paused; the automatic save could not be restored: ${err.message ?? err}`, 'error');
    }
  };

  // An automatic save from an earlier visit: offer to carry on.
  allSaves()
    .then((saves) => {
      const last = saves.sort((a, b) => b.time - a.time)[0];
      if (!last) return;
      const button = $('resume-autosave');
      const where = last.data === 'mnist' ? 'MNIST' : last.data.split(':')[1];
      button.textContent = `Resume the autosaved ${last.label} (step ${last.step} on ${where}, ${new Date(last.time).toLocaleString()})`;
      button.hidden = false;
      button.onclick = guard(async () => {
        await ctx.loadCheckpoint(last.bytes, last.data === 'mnist' ? 'mnist' : undefined);
        button.hidden = true;
        await ctx.start();
      });
    })
    .catch((e) => console.warn('no automatic saves readable:', e));
}
