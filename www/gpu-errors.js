// GPU errors that no call caught (validation errors, out of memory) are collected on the wasm
// side in the GPU worker (WebGpu::take_errors): wgpu's default would be to panic and take the
// module down. This reads them twice a second, shows them to the user in words, and keeps them
// in window.webgan.errors, where the page tests look for them.

const POLL_MS = 500;

// Watches `gpu` until it is replaced (a lost device reopened): call again with the new one.
export function watchGpuErrors(gpu, state) {
  const box = document.getElementById('gpu-errors');
  const drain = async () => {
    let errors;
    try {
      errors = await gpu.take_errors();
    } catch {
      return; // the worker has no device any more (or failed): its watcher ends with it
    }
    if (errors.length === 0) return;
    state.errors.push(...errors.map((e) => `GPU error: ${e}`));
    box.hidden = false;
    box.textContent =
      `The GPU reported ${state.errors.length === 1 ? 'an error' : `${state.errors.length} errors`}; ` +
      `what was drawn or trained after it may be wrong. Reloading the page starts afresh. ` +
      `The last one: ${errors[errors.length - 1]}`;
  };
  clearInterval(state.gpuErrorTimer);
  state.gpuErrorTimer = setInterval(drain, POLL_MS);
  state.drainGpuErrors = drain; // for the page tests, to check right after an action (a promise)
}
