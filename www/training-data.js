// The training data: the bundled MNIST, or a folder or files the user picks or drops. A folder
// with no usable image changes nothing; skipped files are counted and listed with the reason.

import { loadMnist, filesFromInput, filesFromDrop, decodeFiles, datasetName, BUDGET_BYTES } from './data.js';

const $ = (id) => document.getElementById(id);

export function installData(ctx) {
  const { wasm, S, T, field, say, guard } = ctx;
  const showData = (text, progress) => {
    $('data-status').hidden = false;
    $('data-text').textContent = text;
    if (progress !== undefined) $('data-progress').value = progress;
  };
  // Makes `data` (MNIST at size x size) the training data, and says so.
  ctx.adoptMnist = (data, size) => {
    $('grey-proposal').hidden = true;
    if (S.data !== data) S.data?.free(); // 60 MB of pixels at 32x32: not kept twice
    S.data = data;
    S.source = { kind: 'mnist' };
    showData(`MNIST: ${data.len()} images of 28×28 padded to ${size}×${size}`, 1);
    T.data = { loaded: data.len(), skipped: 0, total: data.len(), source: 'mnist' };
  };
  const useMnist = async () => {
    field('channels').value = '1';
    const size = Number(field('size').value);
    if (S.source?.kind === 'mnist' && S.data?.size() === size && S.data.channels() === 1) return;
    showData('Loading MNIST (9.5 MB, decompressed here)…', 0);
    ctx.adoptMnist(await loadMnist(wasm, size), size);
  };
  const useFiles = async (files, name) => {
    const size = Number(field('size').value);
    const channels = Number(field('channels').value);
    const kept = { data: S.data, info: T.data }; // put back if the folder has no usable image
    S.data = null;
    ctx.buttons();
    showData(`Decoding ${files.length} files…`, 0);
    const t0 = performance.now();
    const result = await decodeFiles(wasm, files, size, channels, (p) =>
      showData(`${p.done} of ${p.total} files: ${p.loaded} images, ${p.skipped} skipped`, p.total ? p.done / p.total : 1),
    );
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    const budget = result.unused > 0 ? `; memory budget (${BUDGET_BYTES >> 20} MB of pixels) reached: using ${result.loaded} of ${files.length - result.skipped.length} images` : '';
    showData(`${name}: ${result.loaded} images (${channels === 1 ? 'grey' : 'RGB'} ${size}×${size}), ${result.skipped.length} skipped, in ${secs} s${budget}`, 1);
    const details = $('data-skipped');
    details.hidden = result.skipped.length === 0;
    details.querySelector('summary').textContent = `${result.skipped.length} files skipped: why`;
    details.querySelector('ul').replaceChildren(
      ...result.skipped.map(({ path, reason }) => Object.assign(document.createElement('li'), { textContent: `${path}: ${reason}` })),
    );
    T.data = { loaded: result.loaded, skipped: result.skipped.length, total: files.length, reasons: result.skipped, source: 'folder', grey: result.grey };
    $('grey-proposal').hidden = !(result.grey && channels === 3);
    if (result.loaded === 0) {
      result.dataset.free();
      [T.refused, S.data, T.data] = [T.data, kept.data, kept.info];
      say(`No usable image in ${name}: nothing changed.`, 'error');
      return;
    }
    kept.data?.free();
    S.data = result.dataset;
    S.source = { kind: 'folder', name, files };
    say('Images ready: Start to train on them.');
  };
  // The data again at the size and colour the controls now ask for.
  ctx.refreshData = async () => {
    const want = [Number(field('size').value), Number(field('channels').value)];
    if (S.data && S.data.size() === want[0] && S.data.channels() === want[1]) return;
    if (S.source?.kind === 'mnist') await useMnist();
    else if (S.source?.kind === 'folder') await useFiles(S.source.files, S.source.name);
  };

  $('use-grey').onclick = guard(async () => {
    field('channels').value = '1';
    await ctx.stop();
    await ctx.refreshData();
  });
  $('train-mnist').onclick = guard(async () => {
    await ctx.stop();
    await useMnist();
    await ctx.reset();
    await ctx.start();
  });
  for (const id of ['folder', 'files']) {
    $(id).onchange = guard(async (e) => {
      const files = filesFromInput(e.target);
      if (files.length === 0) return;
      await ctx.stop();
      await useFiles(files, datasetName(files));
      e.target.value = '';
    });
  }
  const zone = $('dropzone');
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener(
    'drop',
    guard(async (e) => {
      e.preventDefault();
      zone.classList.remove('over');
      const files = await filesFromDrop(e.dataTransfer);
      if (files.length === 0) return;
      await ctx.stop();
      await useFiles(files, datasetName(files));
    }),
  );
}
