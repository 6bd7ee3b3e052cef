//! The seed's full-size layers (64x64 RGB, up to 1024 channels) at batch 64 fit WebGPU's default
//! limits: every conv, transposed conv, linear, batchnorm and activation builds (the ops check
//! binding sizes and workgroup counts) and all their dispatches encode without a validation
//! error. Nothing is run: at these sizes a CPU adapter needs minutes.
#![cfg(not(target_arch = "wasm32"))]

use webgan::bench::{build, seed_layers};
use webgan::gpu::Gpu;
use webgan::ops::activation::ActivationOp;
use webgan::ops::batchnorm::{BatchNormBuffers, BatchNormGradBuffers, BatchNormOp};
use webgan::shape::{Activation, BatchNorm, BatchNormConfig};

#[test]
fn seed_layers_at_batch_64_fit_default_limits() {
    let mut gpu = pollster::block_on(Gpu::new()).expect("a GPU adapter (lavapipe in CI)");
    // The device may have been granted the adapter's larger buffer limits; hold every op's
    // checks (binding sizes, workgroup counts, split-K scratch) to WebGPU's defaults instead.
    gpu.limits = wgpu::Limits::default();
    let batch = 64;
    let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        for (name, layer) in seed_layers(batch) {
            let p = build(&gpu, &layer, &gpu.tuning()).unwrap_or_else(|e| panic!("{name}: {e}"));
            for d in p.forward.iter().chain(&p.backward_input).chain(&p.backward_params) {
                d.encode(&mut pass);
            }
            println!("{name}: fits");
        }
        // The batchnorms after G's linear (4x4x1024) and after each conv, and G's tanh output.
        let norms = [(1024, 16), (512, 64), (256, 256), (128, 1024), (128, 256), (256, 64), (512, 16)];
        for (channels, spatial) in norms {
            let s = BatchNorm { batch, channels, spatial };
            let io = BatchNormBuffers {
                x: gpu.zeros("x", s.len()),
                affine: gpu.zeros("affine", 2 * channels),
                running: gpu.zeros("running", 2 * channels),
                y: gpu.zeros("y", s.len()),
            };
            let grads = BatchNormGradBuffers {
                dy: gpu.zeros("dy", s.len()),
                dx: gpu.zeros("dx", s.len()),
                d_affine: gpu.zeros("d_affine", 2 * channels),
            };
            let op = BatchNormOp::new(
                &gpu,
                &s,
                &BatchNormConfig::default(),
                gpu.tuning().reduce_wg,
                None,
                &io,
                Some(&grads),
            )
            .unwrap();
            op.forward_train(&mut pass);
            op.forward_eval(&mut pass);
            op.backward(&mut pass);
            println!("batchnorm {s:?}: fits");
        }
        let len = batch * 3 * 64 * 64;
        let (x, y, dy, dx) = (gpu.zeros("x", len), gpu.zeros("y", len), gpu.zeros("dy", len), gpu.zeros("dx", len));
        let op = ActivationOp::new(&gpu, Activation::Tanh, &x, &y, Some((&dy, &dx))).unwrap();
        op.forward(&mut pass);
        op.backward(&mut pass);
    }
    drop(encoder.finish());
    let error = pollster::block_on(scope.pop());
    assert!(error.is_none(), "validation error: {error:?}");
}
