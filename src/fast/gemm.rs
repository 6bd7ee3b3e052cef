//! One strided sgemm for every matrix product of the fast path.
//!
//! faer's `gemm` crate takes arbitrary row and column strides, so transposed operands (W^T in a
//! conv's input gradient, col^T in its weight gradient, x w^T in a linear layer) cost nothing.
//! Measured here (2 cores, AVX-512, 2026-11-27) on the mnist32 layer shapes at batch 64:
//! `gemm` called single-threaded per sample from rayon tasks ran at 100-180 GFLOP/s;
//! `matrixmultiply` the same way at 75-115; one batched GEMM using the crates' own threading
//! (`gemm` Rayon, `matrixmultiply` "threading") at 50-180, worst on the small layers. So convs
//! parallelise over samples with single-threaded products, and only a linear layer (one product
//! for the whole batch) asks `gemm` for threads.

/// A matrix view: element (r, c) of `data` is at `r * rs + c * cs`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// Row-major with `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Mat<'a> {
        Mat { data, rs: cols, cs: 1 }
    }
    /// The transpose of a row-major matrix with `cols` columns.
    pub fn t(data: &'a [f32], cols: usize) -> Mat<'a> {
        Mat { data, rs: 1, cs: cols }
    }
}

/// c (m x n, row-major) = a (m x k) b (k x n), or c += a b when `accumulate`. `threads` lets
/// the product itself use rayon (only worth it for one big product, not inside rayon tasks).
#[allow(clippy::too_many_arguments)] // BLAS's own shape: sizes, operands, output, two flags
pub fn sgemm(m: usize, n: usize, k: usize, a: Mat, b: Mat, c: &mut [f32], accumulate: bool, threads: bool) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= m * n, "sgemm: c holds {} < {m}x{n}", c.len());
    let last = |x: &Mat, r: usize, cl: usize| (r.max(1) - 1) * x.rs + (cl.max(1) - 1) * x.cs;
    if k > 0 {
        assert!(last(&a, m, k) < a.data.len(), "sgemm: a too short for {m}x{k}");
        assert!(last(&b, k, n) < b.data.len(), "sgemm: b too short for {k}x{n}");
    }
    let parallelism = if threads { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
    // SAFETY: the asserts above keep every index the strides reach inside the slices; c is
    // borrowed mutably and cannot alias a or b.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}
