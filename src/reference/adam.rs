//! Adam, as PyTorch's torch.optim.Adam without weight decay or amsgrad.

use num_traits::Float;

use super::cast;
use crate::shape::AdamConfig;

/// One Adam update, in place, elementwise over the flat parameter tensor. `step` is the
/// 1-based count of updates including this one (the bias corrections need it):
///   m = b1*m + (1-b1)*g,  v = b2*v + (1-b2)*g^2
///   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
/// eps is added after the square root, as in PyTorch (not inside it, as in some papers).
///
/// params, grads, m, v [len] (m and v start at zero before step 1)
pub fn adam_update<F: Float>(cfg: &AdamConfig, step: u32, params: &mut [F], grads: &[F], m: &mut [F], v: &mut [F]) {
    assert!(step >= 1, "adam step is 1-based");
    assert!(grads.len() == params.len() && m.len() == params.len() && v.len() == params.len(), "adam lengths");
    let (lr, b1, b2, eps): (F, F, F, F) = (cast(cfg.lr), cast(cfg.beta1), cast(cfg.beta2), cast(cfg.eps));
    let t = i32::try_from(step).expect("adam step fits in i32");
    let (bc1, bc2) = (F::one() - b1.powi(t), F::one() - b2.powi(t));
    for i in 0..params.len() {
        let g = grads[i];
        m[i] = b1 * m[i] + (F::one() - b1) * g;
        v[i] = b2 * v[i] + (F::one() - b2) * g * g;
        params[i] = params[i] - lr * (m[i] / bc1) / ((v[i] / bc2).sqrt() + eps);
    }
}

/// The exponential moving average of parameters, in place, elementwise:
///   ema = decay * ema + (1 - decay) * params
/// (applied after each optimiser step; the average starts at the initial parameters).
pub fn ema_update<F: Float>(decay: f32, ema: &mut [F], params: &[F]) {
    assert_eq!(ema.len(), params.len(), "ema lengths");
    let d: F = cast(decay);
    for (e, &p) in ema.iter_mut().zip(params) {
        *e = d * *e + (F::one() - d) * p;
    }
}
