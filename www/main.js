// The page's entry point: a static ES module, no bundler. It loads the wasm package that
// `./build.sh` writes to ./pkg and, for now, reports which WebGPU adapter training would use.

const status = document.getElementById('status');
const table = document.getElementById('report');

function fail(message) {
  status.className = 'status error';
  status.textContent = message;
  document.body.dataset.webgpu = 'unavailable';
  console.error(message);
}

function row(cells) {
  const tr = document.createElement('tr');
  cells.forEach((text, i) => {
    const td = document.createElement('td');
    td.textContent = text;
    if (i === 0) td.className = 'label';
    else if (/^\d+$/.test(text)) td.className = 'num';
    tr.appendChild(td);
  });
  table.tBodies[0].appendChild(tr);
}

// What the browser itself says about the adapter: wgpu does not carry the vendor and
// architecture strings over, so read them here.
async function browserAdapterInfo() {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error('navigator.gpu.requestAdapter() returned null (no usable GPU adapter; in Chromium on Linux try --enable-unsafe-webgpu)');
  const info = adapter.info ?? {};
  return [info.vendor, info.architecture, info.description].filter(Boolean).join(' / ') || '(not exposed)';
}

async function main() {
  if (!('gpu' in navigator)) {
    const why = window.isSecureContext
      ? 'navigator.gpu is missing (this browser has no WebGPU, or it is switched off)'
      : 'navigator.gpu is missing because this page is not a secure context (serve it from https:// or http://localhost)';
    fail(`WebGPU is not available in this browser: ${why}.`);
    return;
  }

  let vendor;
  try {
    vendor = await browserAdapterInfo();
  } catch (e) {
    fail(`WebGPU is not available in this browser: ${e.message ?? e}.`);
    return;
  }

  let wasm;
  try {
    wasm = await import('./pkg/webgan.js');
    await wasm.default();
  } catch (e) {
    fail(`Could not load the wasm package (./pkg/webgan.js): ${e.message ?? e}. Run ./build.sh to build it.`);
    return;
  }

  let report;
  try {
    report = await wasm.adapter_report();
  } catch (e) {
    fail(`WebGPU is not available in this browser: ${e.message ?? e}.`);
    return;
  }

  // `label: value [default d]` lines from src/web/mod.rs.
  const lines = report.split('\n');
  const summary = lines.find((l) => l.startsWith('adapter: '))?.slice('adapter: '.length) ?? '';
  status.className = 'status ok';
  status.textContent = `WebGPU adapter: ${vendor} — ${summary}`;
  row(['vendor / architecture', vendor, '']);
  for (const line of lines) {
    const m = /^([^:]+): (.*?)(?: \[default (\d+)\])?$/.exec(line);
    if (m && m[1] !== 'adapter') row([m[1], m[2], m[3] ?? '']);
  }
  table.hidden = false;
  document.body.dataset.webgpu = 'ok';
}

main().catch((e) => fail(`Unexpected error: ${e?.stack ?? e}`));
