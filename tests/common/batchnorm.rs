//! batchnorm: eval forward, training forward (y and the running statistics), dx and
//! [d_gamma; d_beta] against the reference.

use super::{compare, report, then, Rng};
use webgan::gpu::Gpu;
use webgan::ops::batchnorm::{BatchNormBuffers, BatchNormGradBuffers, BatchNormOp};
use webgan::ops::submit;
use webgan::reference;
use webgan::shape::{Activation, BatchNorm, BatchNormConfig};

pub const BATCHNORM_CASES: &[BatchNorm] = &[
    // One value per channel: the biased variance (0) stands in for the unbiased one.
    BatchNorm { batch: 1, channels: 3, spatial: 1 },
    // After a linear layer (spatial 1), more channels than a workgroup has threads.
    BatchNorm { batch: 4, channels: 130, spatial: 1 },
    // Odd images, batch 1 and > 1.
    BatchNorm { batch: 1, channels: 5, spatial: 5 * 5 },
    BatchNorm { batch: 2, channels: 3, spatial: 7 * 9 },
    BatchNorm { batch: 8, channels: 16, spatial: 11 * 11 },
    // Planes of exactly 16 and 64 values: the smallest planes given workgroups of their own.
    // These and 32x32 (planes of a multiple of 4) take the vec4 entry points; the rest the
    // scalar ones.
    BatchNorm { batch: 3, channels: 5, spatial: 4 * 4 },
    BatchNorm { batch: 5, channels: 7, spatial: 8 * 8 },
    // Many values per channel: each thread loops over the channel many times.
    BatchNorm { batch: 16, channels: 2, spatial: 33 * 33 },
    BatchNorm { batch: 6, channels: 3, spatial: 32 * 32 },
];

fn plus(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(a, b)| a + b).collect()
}

pub async fn check_batchnorm(gpu: &Gpu) {
    let cfg = BatchNormConfig::default();
    // Each case with the CPU adapters' small reduction workgroup and the GPUs' full one, and
    // plain or with an activation fused in (checked against batchnorm, then the activation).
    let acts = [None, Some(Activation::Relu), Some(Activation::LeakyRelu(0.2))];
    let cases = BATCHNORM_CASES.iter().flat_map(|s| [(s, 16), (s, 256)]);
    for (i, (s, reduce_wg)) in cases.enumerate() {
        let fused = acts[i % acts.len()];
        let c = s.channels;
        let mut rng = Rng::new(400 + i as u64);
        // Channel means well away from zero, so a one-pass variance would show.
        let offsets = rng.normals(c, 3.0);
        let x: Vec<f32> =
            rng.normals(s.len(), 2.0).iter().enumerate().map(|(j, v)| v + offsets[(j / s.spatial) % c]).collect();
        let gamma: Vec<f32> = rng.normals(c, 0.3).iter().map(|v| 1.0 + v).collect();
        let beta = rng.normals(c, 0.5);
        let mut running_mean = rng.normals(c, 0.5);
        let mut running_var: Vec<f32> = (0..c).map(|_| 0.5 + rng.uniform()).collect();
        let dy = rng.normals(s.len(), 1.0);
        // Gradients already accumulated: the backward must add to them.
        let d_affine0 = rng.normals(2 * c, 0.1);

        let io = BatchNormBuffers {
            x: gpu.upload("x", &x),
            affine: gpu.upload("affine", &[gamma.as_slice(), &beta].concat()),
            running: gpu.upload("running", &[running_mean.as_slice(), &running_var].concat()),
            y: gpu.zeros("y", s.len()),
        };
        let grads = BatchNormGradBuffers {
            dy: gpu.upload("dy", &dy),
            dx: gpu.zeros("dx", s.len()),
            d_affine: gpu.upload("d_affine", &d_affine0),
        };
        report(&format!("batchnorm {s:?}, reductions in {reduce_wg}-thread workgroups, fused {fused:?}"));

        // Eval first, from an op built without gradients, while the running stats are the initial ones.
        let eval = BatchNormOp::new(gpu, s, &cfg, reduce_wg, fused, &io, None).unwrap();
        submit(gpu, "batchnorm eval check", |pass| eval.forward_eval(pass));
        let want_eval =
            then(fused, reference::batchnorm_forward_eval(s, &cfg, &x, &gamma, &beta, &running_mean, &running_var));
        report(&compare("batchnorm", "  y (eval)", &gpu.read(&io.y).await.unwrap(), &want_eval));

        let op = BatchNormOp::new(gpu, s, &cfg, reduce_wg, fused, &io, Some(&grads)).unwrap();
        submit(gpu, "batchnorm check", |pass| {
            op.forward_train(pass);
            op.backward(pass);
        });
        let (want_y, saved) =
            reference::batchnorm_forward_train(s, &cfg, &x, &gamma, &beta, &mut running_mean, &mut running_var);
        // dy is the gradient with respect to the activation's output.
        let dz = match fused {
            Some(act) => reference::activation_backward(act, &want_y, &dy),
            None => dy.clone(),
        };
        let want_y = then(fused, want_y);
        let want = reference::batchnorm_backward(s, &x, &gamma, &saved, &dz);
        report(&compare("batchnorm", "  y", &gpu.read(&io.y).await.unwrap(), &want_y));
        report(&compare(
            "batchnorm",
            "  running",
            &gpu.read(&io.running).await.unwrap(),
            &[running_mean, running_var].concat(),
        ));
        report(&compare("batchnorm", "  dx", &gpu.read(&grads.dx).await.unwrap(), &want.dx));
        report(&compare(
            "batchnorm",
            "  d_affine",
            &gpu.read(&grads.d_affine).await.unwrap(),
            &plus(&d_affine0, &[want.dgamma, want.dbeta].concat()),
        ));
    }
}
