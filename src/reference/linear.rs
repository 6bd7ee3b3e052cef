//! Fully connected layer, PyTorch's nn.Linear: y = x w^T + b.

use num_traits::Float;

use crate::shape::Linear;

/// Gradients of a linear layer.
pub struct LinearGrads<F> {
    pub dx: Vec<F>,
    pub dw: Vec<F>,
    pub db: Vec<F>,
}

/// y[b,o] = bias[o] + sum_i x[b,i] * w[o,i]
///
/// x [batch, d_in], w [d_out, d_in], bias [d_out] -> y [batch, d_out]
pub fn linear_forward<F: Float>(g: &Linear, x: &[F], w: &[F], bias: Option<&[F]>) -> Vec<F> {
    assert_eq!(x.len(), g.batch * g.d_in, "linear x");
    assert_eq!(w.len(), g.d_out * g.d_in, "linear w");
    let mut y = vec![F::zero(); g.batch * g.d_out];
    for b in 0..g.batch {
        for o in 0..g.d_out {
            let mut acc = bias.map_or(F::zero(), |bias| bias[o]);
            for i in 0..g.d_in {
                acc = acc + x[b * g.d_in + i] * w[o * g.d_in + i];
            }
            y[b * g.d_out + o] = acc;
        }
    }
    y
}

/// dx = dy w, dw = dy^T x, db = column sums of dy:
///   dx[b,i] = sum_o dy[b,o] * w[o,i],  dw[o,i] = sum_b dy[b,o] * x[b,i],  db[o] = sum_b dy[b,o]
///
/// x [batch, d_in], w [d_out, d_in], dy [batch, d_out] -> dx like x, dw like w, db [d_out]
pub fn linear_backward<F: Float>(g: &Linear, x: &[F], w: &[F], dy: &[F]) -> LinearGrads<F> {
    assert_eq!(x.len(), g.batch * g.d_in, "linear x");
    assert_eq!(w.len(), g.d_out * g.d_in, "linear w");
    assert_eq!(dy.len(), g.batch * g.d_out, "linear dy");
    let mut dx = vec![F::zero(); x.len()];
    let mut dw = vec![F::zero(); w.len()];
    let mut db = vec![F::zero(); g.d_out];
    for b in 0..g.batch {
        for o in 0..g.d_out {
            let d = dy[b * g.d_out + o];
            db[o] = db[o] + d;
            for i in 0..g.d_in {
                dx[b * g.d_in + i] = dx[b * g.d_in + i] + d * w[o * g.d_in + i];
                dw[o * g.d_in + i] = dw[o * g.d_in + i] + d * x[b * g.d_in + i];
            }
        }
    }
    LinearGrads { dx, dw, db }
}
