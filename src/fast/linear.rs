//! Linear layers (PyTorch's nn.Linear, y = x w^T + b) as one threaded sgemm each.

use super::conv::channel_sum;
use super::gemm::{sgemm, Mat};
use crate::shape::Linear;

/// x [batch, d_in], w [d_out, d_in], bias [d_out] -> y [batch, d_out]
pub fn linear_forward(g: &Linear, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    assert_eq!(x.len(), g.batch * g.d_in, "linear x");
    assert_eq!(w.len(), g.d_out * g.d_in, "linear w");
    let mut y = vec![0f32; g.batch * g.d_out];
    if let Some(b) = bias {
        y.chunks_mut(g.d_out).for_each(|row| row.copy_from_slice(b));
    }
    sgemm(g.batch, g.d_out, g.d_in, Mat::rows(x, g.d_in), Mat::t(w, g.d_in), &mut y, bias.is_some(), true);
    y
}

/// dx = dy w (overwritten; None unless `need_dx`); dw += dy^T x and db += column sums of dy
/// when `grads` is given. x [batch, d_in], w [d_out, d_in], dy [batch, d_out]
pub fn linear_backward(
    g: &Linear,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    grads: Option<(&mut [f32], &mut [f32])>,
    need_dx: bool,
) -> Option<Vec<f32>> {
    assert_eq!(dy.len(), g.batch * g.d_out, "linear dy");
    if let Some((dw, db)) = grads {
        sgemm(g.d_out, g.d_in, g.batch, Mat::t(dy, g.d_out), Mat::rows(x, g.d_in), dw, true, true);
        channel_sum(dy, g.d_out, 1, db);
    }
    need_dx.then(|| {
        let mut dx = vec![0f32; g.batch * g.d_in];
        sgemm(g.batch, g.d_in, g.d_out, Mat::rows(dy, g.d_out), Mat::rows(w, g.d_in), &mut dx, false, true);
        dx
    })
}
