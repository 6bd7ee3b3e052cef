//! linear: forward, d_input, d_weight, d_bias against the reference.

use super::{compare, report, Rng};
use webgan::gpu::{Gpu, Tuning};
use webgan::ops::linear::{LinearBuffers, LinearGradBuffers, LinearOp};
use webgan::ops::submit;
use webgan::reference;
use webgan::shape::Linear;

pub const LINEAR_CASES: &[Linear] = &[
    Linear { batch: 1, d_in: 7, d_out: 5 },
    Linear { batch: 3, d_in: 100, d_out: 65 },
    // The seed's generator input layer, narrowed: z (100) -> 4*4*C.
    Linear { batch: 16, d_in: 100, d_out: 4 * 4 * 24 },
    // A discriminator's last layer: one logit from a flattened feature map.
    Linear { batch: 9, d_in: 4 * 4 * 32, d_out: 1 },
];

pub async fn check_linear(gpu: &Gpu) {
    check_linear_cases(gpu, &gpu.tuning(), LINEAR_CASES).await;
}

pub async fn check_linear_cases(gpu: &Gpu, tiles: &Tuning, cases: &[Linear]) {
    for (i, g) in cases.iter().enumerate() {
        let mut rng = Rng::new(300 + i as u64);
        let x = rng.normals(g.batch * g.d_in, 1.0);
        let w = rng.normals(g.d_out * g.d_in, 0.1);
        let b = rng.normals(g.d_out, 0.5);
        let dy = rng.normals(g.batch * g.d_out, 1.0);
        let dw0 = rng.normals(w.len(), 0.1);
        let db0 = rng.normals(b.len(), 0.1);

        let io = LinearBuffers {
            x: gpu.upload("x", &x),
            w: gpu.upload("w", &w),
            bias: Some(gpu.upload("b", &b)),
            y: gpu.zeros("y", dy.len()),
        };
        let grads = LinearGradBuffers {
            dy: gpu.upload("dy", &dy),
            dx: Some(gpu.zeros("dx", x.len())),
            dw: gpu.upload("dw", &dw0),
            db: Some(gpu.upload("db", &db0)),
        };
        let op = LinearOp::new(gpu, g, tiles, &io, Some(&grads)).unwrap();
        submit(gpu, "linear check", |pass| {
            op.forward(pass);
            op.backward(pass, true, true);
        });
        let want_y = reference::linear_forward(g, &x, &w, Some(&b));
        let want = reference::linear_backward(g, &x, &w, &dy);
        let plus = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| a + b).collect::<Vec<_>>();
        report(&format!("linear {g:?}"));
        report(&compare("linear", "  y", &gpu.read(&io.y).await.unwrap(), &want_y));
        report(&compare("linear", "  dx", &gpu.read(grads.dx.as_ref().unwrap()).await.unwrap(), &want.dx));
        report(&compare("linear", "  dw", &gpu.read(&grads.dw).await.unwrap(), &plus(&dw0, &want.dw)));
        report(&compare("linear", "  db", &gpu.read(grads.db.as_ref().unwrap()).await.unwrap(), &plus(&db0, &want.db)));
    }
}
