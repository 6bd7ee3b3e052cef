//! The CPU reference checked against itself, in f64:
//! - every backward output against central finite differences of L = sum(out * r), r random
//!   (so dL/dout = r is what goes into the backward);
//! - conv2d against a hand-computed example, and conv_transpose2d as its exact adjoint;
//! - batchnorm's running statistics and eval mode against direct computation;
//! - BCE against the naive formula, Adam against a hand-computed two-step example.
//!
//! Each check prints its worst relative error, |a - n| / max(|a|, |n|, 1e-3); run with
//! `cargo test --test reference_grads -- --nocapture` to see them.

#![cfg(not(target_arch = "wasm32"))]

use webgan::reference::*;
use webgan::shape::*;

/// Central-difference step: truncation error ~ H^2, rounding ~ 1e-16 * |L| / H, both ~1e-10.
const H: f64 = 1e-5;
/// Worst relative error accepted between analytic and numeric gradients.
const TOL: f64 = 1e-6;

/// splitmix64 for bits, Box-Muller for normals: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in the open interval (0, 1), so ln() below is finite.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
    fn normals(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.normal()).collect()
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Checks `analytic` = dL/d`input` by central differences of `loss`, prints and asserts.
fn fd_check(name: &str, input: &[f64], analytic: &[f64], loss: impl Fn(&[f64]) -> f64) {
    assert_eq!(input.len(), analytic.len(), "{name}: gradient length");
    let mut u = input.to_vec();
    let (mut worst, mut at, mut num_at) = (0.0f64, 0, 0.0);
    for i in 0..u.len() {
        let orig = u[i];
        u[i] = orig + H;
        let plus = loss(&u);
        u[i] = orig - H;
        let minus = loss(&u);
        u[i] = orig;
        let numeric = (plus - minus) / (2.0 * H);
        let err = (analytic[i] - numeric).abs() / analytic[i].abs().max(numeric.abs()).max(1e-3);
        if err >= worst {
            (worst, at, num_at) = (err, i, numeric);
        }
    }
    println!("{name:<58} worst rel err {worst:.2e} at [{at}] (analytic {:.6}, numeric {num_at:.6})", analytic[at]);
    assert!(worst < TOL, "{name}: worst relative error {worst:.3e} >= {TOL:.0e}");
}

/// Elementwise agreement of two tensors that should be equal up to rounding.
fn assert_close(name: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let worst = got.iter().zip(want).map(|(g, w)| (g - w).abs() / w.abs().max(1.0)).fold(0.0, f64::max);
    println!("{name:<58} worst rel err {worst:.2e}");
    assert!(worst < tol, "{name}: worst relative error {worst:.3e} >= {tol:.0e}\n got  {got:?}\n want {want:?}");
}

#[test]
fn conv2d_grads() {
    let shapes = [
        Conv2d { batch: 1, c_in: 2, c_out: 3, h_in: 7, w_in: 5, kernel: 3, stride: 1, pad: 1 },
        Conv2d { batch: 2, c_in: 3, c_out: 2, h_in: 9, w_in: 8, kernel: 5, stride: 2, pad: 2 },
        Conv2d { batch: 2, c_in: 2, c_out: 2, h_in: 8, w_in: 6, kernel: 4, stride: 2, pad: 1 },
        // (6 - 3) / 2 + 1 = 2 rows: the last input row is never read.
        Conv2d { batch: 3, c_in: 1, c_out: 2, h_in: 6, w_in: 7, kernel: 3, stride: 2, pad: 0 },
    ];
    let mut rng = Rng(1);
    for g in shapes {
        let (x, w, b) = (rng.normals(g.input_len()), rng.normals(g.weight_len()), rng.normals(g.c_out));
        let r = rng.normals(g.output_len());
        let grads = conv2d_backward(&g, &x, &w, &r);
        let tag = format!(
            "conv2d b{} {}->{} {}x{} k{} s{} p{}",
            g.batch, g.c_in, g.c_out, g.h_in, g.w_in, g.kernel, g.stride, g.pad
        );
        fd_check(&format!("{tag} dx"), &x, &grads.dx, |x| dot(&conv2d_forward(&g, x, &w, Some(&b)), &r));
        fd_check(&format!("{tag} dw"), &w, &grads.dw, |w| dot(&conv2d_forward(&g, &x, w, Some(&b)), &r));
        fd_check(&format!("{tag} db"), &b, &grads.db, |b| dot(&conv2d_forward(&g, &x, &w, Some(b)), &r));
    }
}

#[test]
fn conv_transpose2d_grads() {
    let shapes = [
        // DCGAN's 5x5 / stride 2 / pad 2 with out_pad 1: exactly doubles the size.
        ConvTranspose2d { batch: 1, c_in: 2, c_out: 3, h_in: 3, w_in: 4, kernel: 5, stride: 2, pad: 2, out_pad: 1 },
        // The common 4x4 / stride 2 / pad 1, which doubles without out_pad.
        ConvTranspose2d { batch: 2, c_in: 3, c_out: 2, h_in: 4, w_in: 3, kernel: 4, stride: 2, pad: 1, out_pad: 0 },
        ConvTranspose2d { batch: 2, c_in: 2, c_out: 2, h_in: 3, w_in: 5, kernel: 3, stride: 1, pad: 1, out_pad: 0 },
        ConvTranspose2d { batch: 1, c_in: 2, c_out: 1, h_in: 2, w_in: 3, kernel: 3, stride: 2, pad: 0, out_pad: 1 },
    ];
    let mut rng = Rng(2);
    for g in shapes {
        let (x, w, b) = (rng.normals(g.input_len()), rng.normals(g.weight_len()), rng.normals(g.c_out));
        let r = rng.normals(g.output_len());
        let grads = conv_transpose2d_backward(&g, &x, &w, &r);
        let tag = format!(
            "conv_t2d b{} {}->{} {}x{} k{} s{} p{} op{}",
            g.batch, g.c_in, g.c_out, g.h_in, g.w_in, g.kernel, g.stride, g.pad, g.out_pad
        );
        fd_check(&format!("{tag} dx"), &x, &grads.dx, |x| dot(&conv_transpose2d_forward(&g, x, &w, Some(&b)), &r));
        fd_check(&format!("{tag} dw"), &w, &grads.dw, |w| dot(&conv_transpose2d_forward(&g, &x, w, Some(&b)), &r));
        fd_check(&format!("{tag} db"), &b, &grads.db, |b| dot(&conv_transpose2d_forward(&g, &x, &w, Some(b)), &r));

        // conv_transpose2d is written independently of conv2d, yet must be its adjoint:
        // its forward is conv2d's input gradient and its input gradient is conv2d's forward.
        let conv = g.adjoint();
        let y = rng.normals(g.output_len());
        let conv_dx = conv2d_backward(&conv, &vec![0.0; conv.input_len()], &w, &x).dx;
        assert_close(&format!("{tag} fwd = conv2d dx"), &conv_transpose2d_forward(&g, &x, &w, None), &conv_dx, 1e-12);
        let convt_dx = conv_transpose2d_backward(&g, &vec![0.0; g.input_len()], &w, &y).dx;
        assert_close(&format!("{tag} dx = conv2d fwd"), &convt_dx, &conv2d_forward(&conv, &y, &w, None), 1e-12);
    }
}

/// Pins conv2d's semantics (cross-correlation, not flipped; zero padding on the top/left).
/// x = 1..9 as 3x3, w = [[1, 10], [100, 1000]], stride 2, pad 1, bias 0.5: each output is
/// the 2x2 window at (2*oh - 1, 2*ow - 1) times w, e.g. y[0][1] = 100*2 + 1000*3.
#[test]
fn conv2d_golden() {
    let g = Conv2d { batch: 1, c_in: 1, c_out: 1, h_in: 3, w_in: 3, kernel: 2, stride: 2, pad: 1 };
    let x: Vec<f64> = (1..=9).map(f64::from).collect();
    let y = conv2d_forward(&g, &x, &[1.0, 10.0, 100.0, 1000.0], Some(&[0.5]));
    assert_close("conv2d golden 3x3 k2 s2 p1", &y, &[1000.5, 3200.5, 7040.5, 9865.5], 1e-15);
}

/// Pins conv_transpose2d's out_pad: the extra row and column go at the bottom/right.
/// x = [[1, 2], [3, 4]], 3x3 kernel of ones, stride 2, pad 1, out_pad 1 -> 4x4: each input
/// pixel adds its value on rows/cols 2*i-1 ..= 2*i+1 that fall inside 0..4.
#[test]
fn conv_transpose2d_golden() {
    let g = ConvTranspose2d { batch: 1, c_in: 1, c_out: 1, h_in: 2, w_in: 2, kernel: 3, stride: 2, pad: 1, out_pad: 1 };
    let y = conv_transpose2d_forward(&g, &[1.0, 2.0, 3.0, 4.0], &[1.0; 9], None);
    #[rustfmt::skip]
    let want = [
        1.0, 3.0, 2.0, 2.0,
        4.0, 10.0, 6.0, 6.0,
        3.0, 7.0, 4.0, 4.0,
        3.0, 7.0, 4.0, 4.0,
    ];
    assert_close("conv_t2d golden 2x2 k3 s2 p1 op1", &y, &want, 1e-15);
}

fn bn_shapes() -> [BatchNorm; 3] {
    [
        BatchNorm { batch: 2, channels: 3, spatial: 5 },
        BatchNorm { batch: 1, channels: 2, spatial: 6 },
        // After a linear layer: one value per sample and channel.
        BatchNorm { batch: 4, channels: 3, spatial: 1 },
    ]
}

/// Inputs whose channels have a mean well away from 0 and a spread away from 1, and
/// gamma != 1, beta != 0, so no term of the backward can hide.
fn bn_inputs(rng: &mut Rng, s: &BatchNorm) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let x = rng.normals(s.len()).iter().map(|v| 0.7 + 1.8 * v).collect();
    let gamma = rng.normals(s.channels).iter().map(|v| 1.0 + 0.5 * v).collect();
    (x, gamma, rng.normals(s.channels))
}

#[test]
fn batchnorm_grads() {
    let cfg = BatchNormConfig::default();
    let mut rng = Rng(3);
    for s in bn_shapes() {
        let (x, gamma, beta) = bn_inputs(&mut rng, &s);
        let r = rng.normals(s.len());
        // Training mode: the loss flows through the batch mean and variance too.
        let loss = |x: &[f64], gamma: &[f64], beta: &[f64]| {
            let (mut rm, mut rv) = (vec![0.0; s.channels], vec![1.0; s.channels]);
            dot(&batchnorm_forward_train(&s, &cfg, x, gamma, beta, &mut rm, &mut rv).0, &r)
        };
        let (mut rm, mut rv) = (vec![0.0; s.channels], vec![1.0; s.channels]);
        let (_, saved) = batchnorm_forward_train(&s, &cfg, &x, &gamma, &beta, &mut rm, &mut rv);
        let grads = batchnorm_backward(&s, &x, &gamma, &saved, &r);
        let tag = format!("batchnorm b{} c{} s{}", s.batch, s.channels, s.spatial);
        fd_check(&format!("{tag} dx"), &x, &grads.dx, |x| loss(x, &gamma, &beta));
        fd_check(&format!("{tag} dgamma"), &gamma, &grads.dgamma, |g| loss(&x, g, &beta));
        fd_check(&format!("{tag} dbeta"), &beta, &grads.dbeta, |b| loss(&x, &gamma, b));
    }
}

/// Running statistics over two training steps, against means and variances computed here;
/// and eval mode fed the batch's own (biased) statistics must reproduce the training output.
#[test]
fn batchnorm_running_stats_and_eval() {
    let cfg = BatchNormConfig { momentum: 0.25, eps: 1e-5 };
    let m = f64::from(cfg.momentum);
    let mut rng = Rng(4);
    // The last shape has n = 1 value per channel: the unbiased variance falls back to the biased (0).
    for s in bn_shapes().into_iter().chain([BatchNorm { batch: 1, channels: 2, spatial: 1 }]) {
        let n = s.batch * s.spatial;
        let (mut rm, mut rv) =
            (rng.normals(s.channels), rng.normals(s.channels).iter().map(|v| 1.0 + v * v).collect::<Vec<_>>());
        let (mut want_rm, mut want_rv) = (rm.clone(), rv.clone());
        for step in 0..2 {
            let (x, gamma, beta) = bn_inputs(&mut rng, &s);
            let (y, saved) = batchnorm_forward_train(&s, &cfg, &x, &gamma, &beta, &mut rm, &mut rv);
            let (mut means, mut vars) = (vec![], vec![]);
            for c in 0..s.channels {
                let vals: Vec<f64> = (0..s.batch)
                    .flat_map(|b| (0..s.spatial).map(move |i| (b * s.channels + c) * s.spatial + i))
                    .map(|j| x[j])
                    .collect();
                let mean = vals.iter().sum::<f64>() / n as f64;
                let ss: f64 = vals.iter().map(|v| (v - mean) * (v - mean)).sum();
                want_rm[c] = (1.0 - m) * want_rm[c] + m * mean;
                want_rv[c] = (1.0 - m) * want_rv[c] + m * if n > 1 { ss / (n - 1) as f64 } else { 0.0 };
                means.push(mean);
                vars.push(ss / n as f64);
            }
            let tag = format!("batchnorm b{} c{} s{} step {step}", s.batch, s.channels, s.spatial);
            assert_close(&format!("{tag} running_mean"), &rm, &want_rm, 1e-13);
            assert_close(&format!("{tag} running_var"), &rv, &want_rv, 1e-13);
            let invstd: Vec<f64> = vars.iter().map(|v| 1.0 / (v + f64::from(cfg.eps)).sqrt()).collect();
            assert_close(&format!("{tag} saved mean"), &saved.mean, &means, 1e-13);
            assert_close(&format!("{tag} saved invstd"), &saved.invstd, &invstd, 1e-13);
            let y_eval = batchnorm_forward_eval(&s, &cfg, &x, &gamma, &beta, &means, &vars);
            assert_close(&format!("{tag} eval(batch stats) = train"), &y_eval, &y, 1e-12);
        }
    }
}

#[test]
fn linear_grads() {
    let shapes = [Linear { batch: 1, d_in: 4, d_out: 3 }, Linear { batch: 3, d_in: 5, d_out: 2 }];
    let mut rng = Rng(5);
    for g in shapes {
        let (x, w, b) = (rng.normals(g.batch * g.d_in), rng.normals(g.d_out * g.d_in), rng.normals(g.d_out));
        let r = rng.normals(g.batch * g.d_out);
        let grads = linear_backward(&g, &x, &w, &r);
        let tag = format!("linear b{} {}->{}", g.batch, g.d_in, g.d_out);
        fd_check(&format!("{tag} dx"), &x, &grads.dx, |x| dot(&linear_forward(&g, x, &w, Some(&b)), &r));
        fd_check(&format!("{tag} dw"), &w, &grads.dw, |w| dot(&linear_forward(&g, &x, w, Some(&b)), &r));
        fd_check(&format!("{tag} db"), &b, &grads.db, |b| dot(&linear_forward(&g, &x, &w, Some(b)), &r));
    }
}

#[test]
fn activation_grads() {
    let mut rng = Rng(6);
    for act in [Activation::Relu, Activation::LeakyRelu(0.2), Activation::Tanh, Activation::Sigmoid] {
        for len in [7, 24] {
            // Keep inputs off the kink at 0, where a central difference straddles two slopes.
            let x: Vec<f64> = rng
                .normals(len)
                .iter()
                .map(|&v| if v.abs() < 0.05 { v + 0.1f64.copysign(v) } else { 2.0 * v })
                .collect();
            let r = rng.normals(len);
            let dx = activation_backward(act, &x, &r);
            fd_check(&format!("{act:?} len {len} dx"), &x, &dx, |x| dot(&activation_forward(act, x), &r));
        }
    }
    // At exactly 0 the negative branch's slope is used, as in PyTorch.
    assert_eq!(activation_backward(Activation::Relu, &[0.0], &[1.0]), [0.0]);
    assert_eq!(activation_backward(Activation::LeakyRelu(0.2), &[0.0], &[1.0]), [f64::from(0.2f32)]);
}

#[test]
fn bce_grads_and_values() {
    let mut rng = Rng(7);
    for len in [1, 6] {
        // Logits well into both tails as well as near 0.
        let logits: Vec<f64> = rng.normals(len).iter().map(|v| 4.0 * v).collect();
        for target in [0.0, 1.0] {
            let out = bce_with_logits(&logits, target);
            let tag = format!("bce len {len} target {target}");
            fd_check(&format!("{tag} dlogits"), &logits, &out.dlogits, |l| bce_with_logits(l, target).loss);

            let probs: Vec<f64> = logits.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect();
            let naive =
                -probs.iter().map(|p| target * p.ln() + (1.0 - target) * (1.0 - p).ln()).sum::<f64>() / len as f64;
            let mean_prob = probs.iter().sum::<f64>() / len as f64;
            assert_close(
                &format!("{tag} loss, mean_prob = naive"),
                &[out.loss, out.mean_prob],
                &[naive, mean_prob],
                1e-12,
            );
        }
    }
    // Saturated logits in f32: the stable form gives |x| for the wrong side, 0 for the right one.
    let out = bce_with_logits(&[100.0f32, -100.0], 0.0);
    assert_eq!((out.loss, out.mean_prob), (50.0, 0.5));
    assert_eq!(out.dlogits, [0.5, 0.0]);
}

/// Two Adam steps on two parameters, with hyperparameters that are exact in binary so the
/// expected values can be written out by hand:
///   lr 0.5, b1 0.5, b2 0.75, eps 0.25; grads [2, 0] then [-3, 0.5].
/// Step 1: m = [1, 0], v = [1, 0], corrections 1-b1 = 0.5, 1-b2 = 0.25: m^ = [2, 0], v^ = [4, 0]
///   p0 = 1 - 0.5 * 2 / (2 + 0.25) = 5/9;  p1 unchanged (m = 0).
/// Step 2: m = [-1, 0.25], v = [3, 0.0625], corrections 0.75, 0.4375:
///   p0 = 5/9 + 0.5 * (4/3) / (sqrt(48/7) + 0.25);  p1 = -0.5 - 0.5 * (1/3) / (sqrt(1/7) + 0.25)
#[test]
fn adam_two_steps() {
    let cfg = AdamConfig { lr: 0.5, beta1: 0.5, beta2: 0.75, eps: 0.25 };
    let (mut p, mut m, mut v) = (vec![1.0f64, -0.5], vec![0.0; 2], vec![0.0; 2]);
    adam_update(&cfg, 1, &mut p, &[2.0, 0.0], &mut m, &mut v);
    assert_close("adam step 1 params", &p, &[5.0 / 9.0, -0.5], 1e-15);
    assert_close("adam step 1 m, v", &[m.clone(), v.clone()].concat(), &[1.0, 0.0, 1.0, 0.0], 1e-15);
    adam_update(&cfg, 2, &mut p, &[-3.0, 0.5], &mut m, &mut v);
    let want = [
        5.0 / 9.0 + 0.5 * (4.0 / 3.0) / ((48.0f64 / 7.0).sqrt() + 0.25),
        -0.5 - 0.5 * (1.0 / 3.0) / ((1.0f64 / 7.0).sqrt() + 0.25),
    ];
    assert_close("adam step 2 params", &p, &want, 1e-15);
    assert_close("adam step 2 m, v", &[m, v].concat(), &[-1.0, 0.25, 3.0, 0.0625], 1e-15);
}

#[test]
fn softmax_xent_grads_and_values() {
    let mut rng = Rng(11);
    for (batch, classes) in [(1, 10), (5, 3), (4, 10)] {
        // Logits spread wide enough that some probabilities are tiny and some near 1.
        let logits: Vec<f64> = rng.normals(batch * classes).iter().map(|v| 5.0 * v).collect();
        let labels: Vec<u8> = (0..batch).map(|n| ((n * 7 + 3) % classes) as u8).collect();
        let out = softmax_cross_entropy(&logits, &labels, classes);
        let tag = format!("softmax xent batch {batch} classes {classes}");
        fd_check(&format!("{tag} dlogits"), &logits, &out.dlogits, |l| softmax_cross_entropy(l, &labels, classes).loss);

        // Against the naive -mean(ln softmax[label]) and argmax accuracy.
        let probs = softmax(&logits, classes);
        let naive =
            -labels.iter().enumerate().map(|(n, &l)| probs[n * classes + l as usize].ln()).sum::<f64>() / batch as f64;
        let correct =
            probs.chunks(classes).zip(&labels).filter(|(row, &l)| row.iter().all(|&p| p <= row[l as usize])).count();
        assert_close(
            &format!("{tag} loss, accuracy = naive"),
            &[out.loss, out.accuracy],
            &[naive, correct as f64 / batch as f64],
            1e-12,
        );
        assert_close(
            &format!("{tag} softmax rows sum to 1"),
            &probs.chunks(classes).map(|r| r.iter().sum()).collect::<Vec<f64>>(),
            &vec![1.0; batch],
            1e-15,
        );
    }
    // Saturated logits in f32: no overflow, the loss of a confident wrong answer is the margin.
    let out = softmax_cross_entropy(&[1000.0f32, 0.0, -1000.0, 0.0], &[1, 0], 2);
    assert_eq!((out.loss, out.accuracy), (1000.0, 0.0));
    assert_eq!(out.dlogits, [0.5, -0.5, -0.5, 0.5]);
}
