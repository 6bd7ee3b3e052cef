//! The elementwise and small ops: activations (forward and dx), BCE with logits (loss, mean
//! probability, d_logits) and Adam (params and moments over consecutive steps).

use super::{compare, report, Rng};
use webgan::gpu::Gpu;
use webgan::ops::activation::ActivationOp;
use webgan::ops::adam::AdamOp;
use webgan::ops::loss::BceOp;
use webgan::ops::submit;
use webgan::reference;
use webgan::shape::{Activation, AdamConfig};

/// Lengths around the workgroup size (256), and one past what the capped grid covers in one
/// sweep (4096 workgroups of 256), so the grid-stride loop goes round.
const LENS: &[usize] = &[1, 255, 257, 1537, (1 << 20) + 333];

/// Normal values with exact zeros (the kink) and large magnitudes, up to 100, among them:
/// the last must give 0, 1 or -1, never NaN.
fn inputs(rng: &mut Rng, len: usize, std: f32) -> Vec<f32> {
    (0..len)
        .map(|i| match i % 23 {
            0 => 0.0,
            7 => (20.0 + 80.0 * rng.uniform()) * if i % 2 == 0 { 1.0 } else { -1.0 },
            _ => rng.normal() * std,
        })
        .collect()
}

pub async fn check_activation(gpu: &Gpu) {
    let acts = [Activation::Relu, Activation::LeakyRelu(0.2), Activation::Tanh, Activation::Sigmoid];
    for (a, &act) in acts.iter().enumerate() {
        for (i, &len) in LENS.iter().enumerate() {
            let mut rng = Rng::new(500 + 10 * a as u64 + i as u64);
            let x = inputs(&mut rng, len, 3.0);
            let dy = rng.normals(len, 1.0);
            let (xv, yv, dyv, dxv) =
                (gpu.upload("x", &x), gpu.zeros("y", len), gpu.upload("dy", &dy), gpu.zeros("dx", len));
            let op = ActivationOp::new(gpu, act, &xv, &yv, Some((&dyv, &dxv))).unwrap();
            submit(gpu, "activation check", |pass| {
                op.forward(pass);
                op.backward(pass);
            });
            // The oracle runs in f64: the reference's f32 1 - tanh^2 and s * (1 - s) cancel where
            // the curves flatten (the kernel's forms do not), errors 5x those of the kernel.
            let (x64, dy64) = (reference::to_f64(&x), reference::to_f64(&dy));
            let want_y = reference::to_f32(&reference::activation_forward(act, &x64));
            let want_dx = reference::to_f32(&reference::activation_backward(act, &x64, &dy64));
            report(&format!("activation {act:?}, {len} values"));
            report(&compare("activation", "  y", &gpu.read(&yv).await.unwrap(), &want_y));
            report(&compare("activation", "  dx", &gpu.read(&dxv).await.unwrap(), &want_dx));
        }
    }
}

pub async fn check_bce(gpu: &Gpu) {
    for (i, &len) in [1, 7, 64, 257, 1000].iter().enumerate() {
        let mut rng = Rng::new(600 + i as u64);
        let logits = inputs(&mut rng, len, 2.0);
        // Two ops (the GAN's real and fake halves) write their own slots of one metrics buffer;
        // the slots around them must stay as they were.
        let metrics0 = rng.normals(7, 1.0);
        let (lv, metrics) = (gpu.upload("logits", &logits), gpu.upload("metrics", &metrics0));
        let (d_real, d_fake) = (gpu.zeros("d_logits real", len), gpu.zeros("d_logits fake", len));
        let real = BceOp::new(gpu, &lv, 1.0, &d_real, &metrics, 1).unwrap();
        let fake = BceOp::new(gpu, &lv, 0.0, &d_fake, &metrics, 4).unwrap();
        submit(gpu, "bce check", |pass| {
            real.encode(pass);
            fake.encode(pass);
        });
        let (want_real, want_fake) =
            (reference::bce_with_logits(&logits, 1.0), reference::bce_with_logits(&logits, 0.0));
        let mut want_metrics = metrics0.clone();
        want_metrics[1..3].copy_from_slice(&[want_real.loss, want_real.mean_prob]);
        want_metrics[4..6].copy_from_slice(&[want_fake.loss, want_fake.mean_prob]);
        report(&format!("bce_with_logits, {len} logits"));
        report(&compare(
            "loss",
            "  metrics [_, loss, prob (t=1), _, loss, prob (t=0), _]",
            &gpu.read(&metrics).await.unwrap(),
            &want_metrics,
        ));
        report(&compare("loss", "  d_logits (t=1)", &gpu.read(&d_real).await.unwrap(), &want_real.dlogits));
        report(&compare("loss", "  d_logits (t=0)", &gpu.read(&d_fake).await.unwrap(), &want_fake.dlogits));
    }
}

pub async fn check_adam(gpu: &Gpu) {
    let configs = [AdamConfig::default(), AdamConfig { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8 }];
    // A network's flat buffers, with the alignment gaps between its tensors (a multiple of 4
    // values: adam_step4), then buffers of an odd length (adam_step).
    let cases = [(configs[0], None), (configs[1], None), (configs[1], Some(1001))];
    for (i, (cfg, odd)) in cases.iter().enumerate() {
        let buffer = |label| match odd {
            None => gpu.flat(label, &[300, 7, 1000]).0,
            Some(len) => gpu.zeros(label, *len),
        };
        let (params, grads, m, v) = (buffer("params"), buffer("grads"), buffer("m"), buffer("v"));
        let len = params.len;
        let mut rng = Rng::new(700 + i as u64);
        let p0 = rng.normals(len, 1.0);
        gpu.write(&params, &p0);
        // The oracle runs in f64: in f32 the reference's own bias correction 1 - beta2^t loses
        // about 1e-5 of its value to cancellation at small t (the GPU's is computed in f64).
        let mut want_p = reference::to_f64(&p0);
        let (mut want_m, mut want_v) = (vec![0.0; len], vec![0.0; len]);
        let op = AdamOp::new(gpu, cfg, &params, &grads, &m, &v).unwrap();
        report(&format!("adam {cfg:?}, {len} values"));
        for step in 1..=3 {
            let g = rng.normals(len, 0.1);
            gpu.write(&grads, &g);
            op.set_step(gpu, step);
            submit(gpu, "adam check", |pass| op.encode(pass));
            reference::adam_update(cfg, step, &mut want_p, &reference::to_f64(&g), &mut want_m, &mut want_v);
            for (what, view, want) in [("params", &params, &want_p), ("m", &m, &want_m), ("v", &v, &want_v)] {
                let got = gpu.read(view).await.unwrap();
                report(&compare("adam", &format!("  {what} after step {step}"), &got, &reference::to_f32(want)));
            }
        }
    }
}
