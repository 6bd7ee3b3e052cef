//! conv2d and conv_transpose2d (PyTorch semantics, NCHW).
//!
//! Both are written out directly: conv_transpose2d does not call conv2d, so each is an
//! independent oracle and the tests can check that one is the adjoint of the other.

use num_traits::Float;

use crate::shape::{Conv2d, ConvTranspose2d};

/// Gradients of a conv layer. `db[c_out]` is the sum of dy over batch and space.
pub struct ConvGrads<F> {
    pub dx: Vec<F>,
    pub dw: Vec<F>,
    pub db: Vec<F>,
}

/// The coordinate that kernel tap `k` reaches from position `base` (= o * stride for conv2d's
/// output o, = i * stride for conv_transpose2d's input i) after shifting back by `pad`:
/// `base + k - pad`, or None where that falls outside `0..len` (the implicit zero padding for
/// conv2d, the cropped border for conv_transpose2d).
fn tap(base: usize, k: usize, pad: usize, len: usize) -> Option<usize> {
    (base + k).checked_sub(pad).filter(|&i| i < len)
}

/// conv2d forward (cross-correlation, as in PyTorch):
///   y[n,co,oh,ow] = bias[co] + sum_{ci,kh,kw} x[n,ci,oh*s-p+kh, ow*s-p+kw] * w[co,ci,kh,kw]
///
/// x [batch, c_in, h_in, w_in], w [c_out, c_in, k, k], bias [c_out] -> y [batch, c_out, h_out, w_out]
pub fn conv2d_forward<F: Float>(g: &Conv2d, x: &[F], w: &[F], bias: Option<&[F]>) -> Vec<F> {
    assert_eq!(x.len(), g.input_len(), "conv2d x");
    assert_eq!(w.len(), g.weight_len(), "conv2d w");
    let (k, s, p) = (g.kernel, g.stride, g.pad);
    let (h_out, w_out) = (g.h_out(), g.w_out());
    let xi = |n: usize, c: usize, h: usize, ww: usize| ((n * g.c_in + c) * g.h_in + h) * g.w_in + ww;
    let wi = |co: usize, ci: usize, kh: usize, kw: usize| ((co * g.c_in + ci) * k + kh) * k + kw;

    let mut y = vec![F::zero(); g.output_len()];
    for n in 0..g.batch {
        for co in 0..g.c_out {
            for oh in 0..h_out {
                for ow in 0..w_out {
                    let mut acc = bias.map_or(F::zero(), |b| b[co]);
                    for ci in 0..g.c_in {
                        for kh in 0..k {
                            let Some(ih) = tap(oh * s, kh, p, g.h_in) else {
                                continue;
                            };
                            for kw in 0..k {
                                let Some(iw) = tap(ow * s, kw, p, g.w_in) else {
                                    continue;
                                };
                                acc = acc + x[xi(n, ci, ih, iw)] * w[wi(co, ci, kh, kw)];
                            }
                        }
                    }
                    y[((n * g.c_out + co) * h_out + oh) * w_out + ow] = acc;
                }
            }
        }
    }
    y
}

/// conv2d backward. Every forward term x[..]*w[..] that fed y[n,co,oh,ow] sends dy back to
/// both factors, so one loop nest over the same (output, tap) pairs as the forward yields all
/// three gradients:
///   dx[n,ci,ih,iw] += dy * w[co,ci,kh,kw],  dw[co,ci,kh,kw] += dy * x[n,ci,ih,iw],  db[co] += dy
///
/// x [batch, c_in, h_in, w_in], w [c_out, c_in, k, k], dy [batch, c_out, h_out, w_out]
/// -> dx like x, dw like w, db [c_out]
pub fn conv2d_backward<F: Float>(g: &Conv2d, x: &[F], w: &[F], dy: &[F]) -> ConvGrads<F> {
    assert_eq!(x.len(), g.input_len(), "conv2d x");
    assert_eq!(w.len(), g.weight_len(), "conv2d w");
    assert_eq!(dy.len(), g.output_len(), "conv2d dy");
    let (k, s, p) = (g.kernel, g.stride, g.pad);
    let (h_out, w_out) = (g.h_out(), g.w_out());
    let xi = |n: usize, c: usize, h: usize, ww: usize| ((n * g.c_in + c) * g.h_in + h) * g.w_in + ww;
    let wi = |co: usize, ci: usize, kh: usize, kw: usize| ((co * g.c_in + ci) * k + kh) * k + kw;

    let mut dx = vec![F::zero(); x.len()];
    let mut dw = vec![F::zero(); w.len()];
    let mut db = vec![F::zero(); g.c_out];
    for n in 0..g.batch {
        for co in 0..g.c_out {
            for oh in 0..h_out {
                for ow in 0..w_out {
                    let d = dy[((n * g.c_out + co) * h_out + oh) * w_out + ow];
                    db[co] = db[co] + d;
                    for ci in 0..g.c_in {
                        for kh in 0..k {
                            let Some(ih) = tap(oh * s, kh, p, g.h_in) else {
                                continue;
                            };
                            for kw in 0..k {
                                let Some(iw) = tap(ow * s, kw, p, g.w_in) else {
                                    continue;
                                };
                                let (xj, wj) = (xi(n, ci, ih, iw), wi(co, ci, kh, kw));
                                dx[xj] = dx[xj] + d * w[wj];
                                dw[wj] = dw[wj] + d * x[xj];
                            }
                        }
                    }
                }
            }
        }
    }
    ConvGrads { dx, dw, db }
}

/// conv_transpose2d forward, in scatter form: each input pixel stamps the kernel, scaled by its
/// value, onto the output at stride s; the stamp is shifted up/left by p and whatever lands
/// outside the output (the top/left `pad` rows and what lies beyond h_out, w_out) is dropped.
///   y[n,co,ih*s-p+kh, iw*s-p+kw] += x[n,ci,ih,iw] * w[ci,co,kh,kw];   y starts at bias[co]
///
/// x [batch, c_in, h_in, w_in], w [c_in, c_out, k, k], bias [c_out] -> y [batch, c_out, h_out, w_out]
pub fn conv_transpose2d_forward<F: Float>(g: &ConvTranspose2d, x: &[F], w: &[F], bias: Option<&[F]>) -> Vec<F> {
    assert_eq!(x.len(), g.input_len(), "conv_transpose2d x");
    assert_eq!(w.len(), g.weight_len(), "conv_transpose2d w");
    let (k, s, p) = (g.kernel, g.stride, g.pad);
    let (h_out, w_out) = (g.h_out(), g.w_out());
    let yi = |n: usize, c: usize, h: usize, ww: usize| ((n * g.c_out + c) * h_out + h) * w_out + ww;
    let wi = |ci: usize, co: usize, kh: usize, kw: usize| ((ci * g.c_out + co) * k + kh) * k + kw;

    let mut y = vec![F::zero(); g.output_len()];
    if let Some(b) = bias {
        for (i, v) in y.iter_mut().enumerate() {
            *v = b[(i / (h_out * w_out)) % g.c_out];
        }
    }
    for n in 0..g.batch {
        for ci in 0..g.c_in {
            for ih in 0..g.h_in {
                for iw in 0..g.w_in {
                    let xv = x[((n * g.c_in + ci) * g.h_in + ih) * g.w_in + iw];
                    for co in 0..g.c_out {
                        for kh in 0..k {
                            let Some(oh) = tap(ih * s, kh, p, h_out) else {
                                continue;
                            };
                            for kw in 0..k {
                                let Some(ow) = tap(iw * s, kw, p, w_out) else {
                                    continue;
                                };
                                let yj = yi(n, co, oh, ow);
                                y[yj] = y[yj] + xv * w[wi(ci, co, kh, kw)];
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

/// conv_transpose2d backward: the same (input pixel, tap) pairs as the forward scatter, each
/// term x*w sending dy[n,co,oh,ow] back to both factors:
///   dx[n,ci,ih,iw] += dy * w[ci,co,kh,kw],  dw[ci,co,kh,kw] += dy * x[n,ci,ih,iw]
/// and db[co] is the plain sum of dy (the bias was added to every output pixel).
///
/// x [batch, c_in, h_in, w_in], w [c_in, c_out, k, k], dy [batch, c_out, h_out, w_out]
/// -> dx like x, dw like w, db [c_out]
pub fn conv_transpose2d_backward<F: Float>(g: &ConvTranspose2d, x: &[F], w: &[F], dy: &[F]) -> ConvGrads<F> {
    assert_eq!(x.len(), g.input_len(), "conv_transpose2d x");
    assert_eq!(w.len(), g.weight_len(), "conv_transpose2d w");
    assert_eq!(dy.len(), g.output_len(), "conv_transpose2d dy");
    let (k, s, p) = (g.kernel, g.stride, g.pad);
    let (h_out, w_out) = (g.h_out(), g.w_out());
    let yi = |n: usize, c: usize, h: usize, ww: usize| ((n * g.c_out + c) * h_out + h) * w_out + ww;
    let wi = |ci: usize, co: usize, kh: usize, kw: usize| ((ci * g.c_out + co) * k + kh) * k + kw;

    let mut dx = vec![F::zero(); x.len()];
    let mut dw = vec![F::zero(); w.len()];
    let mut db = vec![F::zero(); g.c_out];
    for (i, &d) in dy.iter().enumerate() {
        let co = (i / (h_out * w_out)) % g.c_out;
        db[co] = db[co] + d;
    }
    for n in 0..g.batch {
        for ci in 0..g.c_in {
            for ih in 0..g.h_in {
                for iw in 0..g.w_in {
                    let xj = ((n * g.c_in + ci) * g.h_in + ih) * g.w_in + iw;
                    for co in 0..g.c_out {
                        for kh in 0..k {
                            let Some(oh) = tap(ih * s, kh, p, h_out) else {
                                continue;
                            };
                            for kw in 0..k {
                                let Some(ow) = tap(iw * s, kw, p, w_out) else {
                                    continue;
                                };
                                let (d, wj) = (dy[yi(n, co, oh, ow)], wi(ci, co, kh, kw));
                                dx[xj] = dx[xj] + d * w[wj];
                                dw[wj] = dw[wj] + d * x[xj];
                            }
                        }
                    }
                }
            }
        }
    }
    ConvGrads { dx, dw, db }
}
