//! The page's threaded CPU path (www/pkg-threads: wasm threads over shared memory, rayon's pool
//! on Web Workers through wasm-bindgen-rayon) against the plain CPU reference, in Chromium. Built
//! only with the pinned nightly's atomics (`./build.sh browser-tests` runs it when that toolchain
//! is there); the test runs in a dedicated worker, since a pool's caller blocks, which the
//! page's main thread may not.
#![cfg(all(target_arch = "wasm32", target_feature = "atomics"))]

mod common;

use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

const THREADS: usize = 2;

#[wasm_bindgen_test]
async fn threaded_fast_cpu_steps_match_reference() {
    wasm_bindgen_futures::JsFuture::from(wasm_bindgen_rayon::init_thread_pool(THREADS))
        .await
        .expect("rayon's pool on Web Workers");
    assert_eq!(rayon::current_num_threads(), THREADS, "rayon's pool");
    common::steps::check_fast_steps_against_reference();
}
