//! GPU-vs-reference checks shared by the native tests (tests/kernels.rs, on lavapipe) and the
//! browser tests (tests/browser.rs, in headless Chromium's WebGPU). Each check runs an op on the
//! GPU and through `webgan::reference` on the same inputs and compares every output.

#![allow(dead_code)]

pub mod batchnorm;
pub mod conv;
pub mod linear;
pub mod pointwise;
pub mod steps;

/// The one tolerance table: |got - want| <= abs + rel * |want| for every element.
/// f32 sums of up to a few thousand products, in whatever order the kernel chose, against the
/// reference's sequential f32 sums: errors grow with the reduction length, hence `rel`.
pub const TOLERANCES: &[(&str, f32, f32)] = &[
    // (op, abs, rel)
    ("conv", 1e-4, 1e-3),
    ("linear", 1e-4, 1e-3),
    ("batchnorm", 1e-4, 1e-3),
    ("activation", 1e-6, 1e-5),
    ("loss", 1e-6, 1e-5),
    ("adam", 1e-7, 1e-5),
];

pub fn tolerance(op: &str) -> (f32, f32) {
    TOLERANCES.iter().find(|t| t.0 == op).map(|t| (t.1, t.2)).unwrap_or_else(|| panic!("no tolerance for {op}"))
}

/// Compares element by element; panics naming the worst element when any is out of tolerance,
/// and returns a one-line summary with the worst error otherwise.
pub fn compare(op: &str, what: &str, got: &[f32], want: &[f32]) -> String {
    assert_eq!(got.len(), want.len(), "{what}: got {} values, want {}", got.len(), want.len());
    let (abs, rel) = tolerance(op);
    let mut worst = (0usize, 0f32, f32::NEG_INFINITY); // (index, error, error / allowed)
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        let ratio = if err.is_nan() || g.is_nan() != w.is_nan() { f32::INFINITY } else { err / (abs + rel * w.abs()) };
        if ratio > worst.2 || (ratio.is_nan() && !worst.2.is_nan()) {
            worst = (i, err, ratio);
        }
    }
    let (i, err, ratio) = worst;
    let line = format!(
        "{what}: {} values, worst [{i}] got {:.7e} want {:.7e} (|err| {err:.2e}, {:.3} of tolerance)",
        got.len(),
        got.get(i).copied().unwrap_or(0.0),
        want.get(i).copied().unwrap_or(0.0),
        ratio
    );
    assert!(ratio <= 1.0, "MISMATCH {op} {line}");
    line
}

/// The activation `act` applied to `y`, if any: the reference for an op with one fused in.
pub fn then(act: Option<webgan::shape::Activation>, y: Vec<f32>) -> Vec<f32> {
    match act {
        Some(a) => webgan::reference::activation_forward(a, &y),
        None => y,
    }
}

/// The GPU for the browser tests (tests/browser.rs, tests/firefox.rs): fails the test, naming
/// why, where there is no WebGPU; reports the adapter and its tiles.
pub async fn browser_gpu() -> webgan::gpu::Gpu {
    let gpu = webgan::gpu::Gpu::new().await.unwrap_or_else(|e| panic!("WebGPU is required for these tests: {e}"));
    report(&format!("adapter: {}, {}", gpu.adapter_summary(), gpu.tuning()));
    gpu
}

/// Prints on both targets (console in the browser).
pub fn report(line: &str) {
    #[cfg(target_arch = "wasm32")]
    web_sys::console::log_1(&line.into());
    #[cfg(not(target_arch = "wasm32"))]
    println!("{line}");
}

/// Deterministic inputs: splitmix64 and Box-Muller.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    pub fn normal(&mut self) -> f32 {
        let u1 = (self.uniform() as f64).max(1e-12);
        let u2 = self.uniform() as f64;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
    pub fn normals(&mut self, len: usize, std: f32) -> Vec<f32> {
        (0..len).map(|_| self.normal() * std).collect()
    }
}
