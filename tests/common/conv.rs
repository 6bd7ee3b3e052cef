//! conv2d and conv_transpose2d: forward, d_input, d_weight, d_bias against the reference.

use super::{compare, report, then, Rng};
use webgan::gpu::{Gpu, Tiles, Tuning, View};
use webgan::ops::conv::{ConvBuffers, ConvGradBuffers, ConvOp};
use webgan::ops::submit;
use webgan::reference;
use webgan::shape::{Activation, Conv2d, ConvTranspose2d};

pub const CONV2D_CASES: &[Conv2d] = &[
    // The seed's 5x5 / stride 2 / pad 2 on an odd, non-square image, batch > 1.
    Conv2d { batch: 2, c_in: 3, c_out: 5, h_in: 11, w_in: 9, kernel: 5, stride: 2, pad: 2 },
    // The common 4x4 / stride 2 / pad 1, batch 1, channel counts that fill no tile.
    Conv2d { batch: 1, c_in: 4, c_out: 7, h_in: 8, w_in: 10, kernel: 4, stride: 2, pad: 1 },
    // Stride 1, 3x3.
    Conv2d { batch: 3, c_in: 2, c_out: 3, h_in: 7, w_in: 7, kernel: 3, stride: 1, pad: 1 },
    // A first discriminator layer on MNIST-sized input: one input channel, split-K weight grad.
    Conv2d { batch: 8, c_in: 1, c_out: 8, h_in: 32, w_in: 32, kernel: 5, stride: 2, pad: 2 },
    // Wider: several tiles in both GEMM dimensions.
    Conv2d { batch: 4, c_in: 24, c_out: 40, h_in: 16, w_in: 16, kernel: 5, stride: 2, pad: 2 },
    // No padding, and a stride larger than the kernel: some inputs get no gradient.
    Conv2d { batch: 2, c_in: 3, c_out: 4, h_in: 9, w_in: 8, kernel: 2, stride: 3, pad: 0 },
    // Wider, 4x4: several tiles in both GEMM dimensions.
    Conv2d { batch: 4, c_in: 24, c_out: 40, h_in: 16, w_in: 16, kernel: 4, stride: 2, pad: 1 },
];

pub const CONV_TRANSPOSE2D_CASES: &[ConvTranspose2d] = &[
    // The seed's generator layer: 5x5 / stride 2 / pad 2 / output_padding 1 doubles the size.
    ConvTranspose2d { batch: 2, c_in: 6, c_out: 3, h_in: 4, w_in: 5, kernel: 5, stride: 2, pad: 2, out_pad: 1 },
    // 4x4 / stride 2 / pad 1 also doubles it, batch 1.
    ConvTranspose2d { batch: 1, c_in: 5, c_out: 4, h_in: 3, w_in: 3, kernel: 4, stride: 2, pad: 1, out_pad: 0 },
    // Stride 1.
    ConvTranspose2d { batch: 2, c_in: 3, c_out: 2, h_in: 5, w_in: 4, kernel: 3, stride: 1, pad: 1, out_pad: 0 },
    // 5x5 / stride 2 without output_padding: an odd output size.
    ConvTranspose2d { batch: 3, c_in: 4, c_out: 2, h_in: 4, w_in: 4, kernel: 5, stride: 2, pad: 2, out_pad: 0 },
    // Wider, to a one-channel image: several tiles, split-K weight grad.
    ConvTranspose2d { batch: 4, c_in: 32, c_out: 1, h_in: 8, w_in: 8, kernel: 5, stride: 2, pad: 2, out_pad: 1 },
    ConvTranspose2d { batch: 4, c_in: 40, c_out: 24, h_in: 8, w_in: 8, kernel: 5, stride: 2, pad: 2, out_pad: 1 },
    // Stride 3 without padding, non-square.
    ConvTranspose2d { batch: 2, c_in: 3, c_out: 2, h_in: 3, w_in: 4, kernel: 4, stride: 3, pad: 0, out_pad: 0 },
    // Wider, 4x4: several tiles in both GEMM dimensions.
    ConvTranspose2d { batch: 4, c_in: 40, c_out: 24, h_in: 8, w_in: 8, kernel: 4, stride: 2, pad: 1, out_pad: 0 },
];

struct Case {
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    dy: Vec<f32>,
    // Gradients already accumulated before this backward: the kernels must add to them.
    dw0: Vec<f32>,
    db0: Vec<f32>,
}

impl Case {
    fn new(seed: u64, x_len: usize, w_len: usize, c_out: usize, y_len: usize) -> Case {
        let mut rng = Rng::new(seed);
        Case {
            x: rng.normals(x_len, 1.0),
            w: rng.normals(w_len, 0.2),
            b: rng.normals(c_out, 0.5),
            dy: rng.normals(y_len, 1.0),
            dw0: rng.normals(w_len, 0.1),
            db0: rng.normals(c_out, 0.1),
        }
    }
}

/// Activations fused into the epilogues, by case: none, relu after the layer, leaky relu before
/// it (x is taken as its output), and leaky relus on both sides.
fn fused(i: usize) -> Fused {
    let (relu, leaky) = (Some(Activation::Relu), Some(Activation::LeakyRelu(0.2)));
    let cases = [(None, None), (relu, None), (None, leaky), (leaky, leaky)];
    let (act, dx_act) = cases[i % cases.len()];
    Fused { act, dx_act }
}

#[derive(Clone, Copy, Debug, Default)]
struct Fused {
    act: Option<Activation>,
    dx_act: Option<Activation>,
}

impl Fused {
    /// The reference for y: the conv's output through `act`.
    fn y(&self, y: Vec<f32>) -> Vec<f32> {
        then(self.act, y)
    }

    /// The reference for dx: the conv's input gradient through `dx_act`, whose input has the
    /// sign of its output x.
    fn dx(&self, x: &[f32], dx: Vec<f32>) -> Vec<f32> {
        self.dx_act.map_or(dx.clone(), |a| reference::activation_backward(a, x, &dx))
    }
}

/// Uploads, runs forward then backward on the GPU, and reads back (y, dx, dw, db).
async fn run_gpu(
    gpu: &Gpu,
    c: &Case,
    y_len: usize,
    fused: Fused,
    build: impl FnOnce(&ConvBuffers, &ConvGradBuffers) -> ConvOp,
) -> [Vec<f32>; 4] {
    let io = ConvBuffers {
        x: gpu.upload("x", &c.x),
        w: gpu.upload("w", &c.w),
        bias: Some(gpu.upload("b", &c.b)),
        y: gpu.zeros("y", y_len),
        act: fused.act,
    };
    let grads = ConvGradBuffers {
        dy: gpu.upload("dy", &c.dy),
        dx: Some(gpu.zeros("dx", c.x.len())),
        dw: gpu.upload("dw", &c.dw0),
        db: Some(gpu.upload("db", &c.db0)),
        dx_act: fused.dx_act,
    };
    let op = build(&io, &grads);
    submit(gpu, "conv check", |pass| {
        op.forward(pass);
        op.backward(pass, true, true);
    });
    let read = |v: &View| {
        let v = v.clone();
        async move { gpu.read(&v).await.expect("readback") }
    };
    [
        read(&io.y).await,
        read(grads.dx.as_ref().unwrap()).await,
        read(&grads.dw).await,
        read(grads.db.as_ref().unwrap()).await,
    ]
}

fn plus(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(a, b)| a + b).collect()
}

pub async fn check_conv2d(gpu: &Gpu) {
    check_conv2d_cases(gpu, &gpu.tuning(), CONV2D_CASES).await;
}

pub async fn check_conv_transpose2d(gpu: &Gpu) {
    check_conv_transpose2d_cases(gpu, &gpu.tuning(), CONV_TRANSPOSE2D_CASES).await;
}

/// Every candidate tile shape (each unrolled differently) gives the same answers, with either
/// reduction workgroup size for the bias sums. Compiling is nearly all of this test's time on a
/// CPU adapter (every tile shape is a new pipeline per kernel and conv geometry), so each shape
/// runs on the fewest pipelines that exercise it: one wide 4x4 stride-2 conv (its GEMMs span
/// several tiles in both dimensions, with ragged edges; one gather pipeline, where 5x5 compiles
/// one per stride phase), no fused activation (those are checked above with the adapter's
/// tiles), and the linear cases (whose pipelines the cases share). The transposed conv runs the
/// same three kernels with the roles swapped, so it adds pipelines but no tile logic.
///
/// `part` of `parts`: the candidates i with i % parts == part, so that the parts can run as
/// separate tests, in parallel on a machine's cores.
pub async fn check_tile_shapes(gpu: &Gpu, part: usize, parts: usize) {
    for (i, tiles) in Tiles::CANDIDATES.into_iter().enumerate().filter(|(i, _)| i % parts == part) {
        let tuning = Tuning::uniform(tiles, if i % 2 == 0 { 16 } else { 256 });
        report(&format!("tiles {tiles}, reduce {}", tuning.reduce_wg));
        check_conv2d_fused(gpu, &tuning, &[CONV2D_CASES[6]], |_| Fused::default()).await;
        super::linear::check_linear_cases(gpu, &tuning, super::linear::LINEAR_CASES).await;
    }
}

/// conv_direct_runs, conv_gather_runs, conv_gather_block and conv_weight_grad_taps, at the
/// square shape the CPU adapters autotune to, where the plans take them (the unit tests in
/// ops::conv show which kernel each plan picks): the layers whose image side has at most 4
/// channels (conv_gather_block), and a conv and a transposed conv with 16 channels there and
/// phase rows of 16 pixels (conv_gather_runs).
pub async fn check_run_and_tap_kernels(gpu: &Gpu) {
    let tuning = Tuning::uniform(Tiles { tm: 16, tn: 16, wg_m: 2, wg_n: 8 }, 16);
    let wide = Conv2d { batch: 2, c_in: 16, c_out: 8, h_in: 32, w_in: 32, kernel: 5, stride: 2, pad: 2 };
    let conv2d: Vec<_> = CONV2D_CASES.iter().copied().filter(|g| g.c_in <= 4).chain([wide]).collect();
    let wide_t =
        ConvTranspose2d { batch: 2, c_in: 8, c_out: 16, h_in: 16, w_in: 16, kernel: 5, stride: 2, pad: 2, out_pad: 1 };
    let transposed: Vec<_> = CONV_TRANSPOSE2D_CASES.iter().copied().filter(|g| g.c_out <= 4).chain([wide_t]).collect();
    check_conv2d_cases(gpu, &tuning, &conv2d).await;
    check_conv_transpose2d_cases(gpu, &tuning, &transposed).await;
}

async fn check_conv2d_cases(gpu: &Gpu, tiles: &Tuning, cases: &[Conv2d]) {
    check_conv2d_fused(gpu, tiles, cases, fused).await;
}

/// conv2d cases with the activations `fused(case index)` in the epilogues.
async fn check_conv2d_fused(gpu: &Gpu, tiles: &Tuning, cases: &[Conv2d], fused: impl Fn(usize) -> Fused) {
    for (i, g) in cases.iter().enumerate() {
        let c = Case::new(100 + i as u64, g.input_len(), g.weight_len(), g.c_out, g.output_len());
        let f = fused(i);
        let [y, dx, dw, db] =
            run_gpu(gpu, &c, g.output_len(), f, |io, gr| ConvOp::conv2d(gpu, g, tiles, io, Some(gr)).unwrap()).await;
        let want_y = f.y(reference::conv2d_forward(g, &c.x, &c.w, Some(&c.b)));
        let want = reference::conv2d_backward(g, &c.x, &c.w, &c.dy);
        report(&format!("conv2d {g:?}, fused {f:?}"));
        report(&compare("conv", "  y", &y, &want_y));
        report(&compare("conv", "  dx", &dx, &f.dx(&c.x, want.dx)));
        report(&compare("conv", "  dw", &dw, &plus(&c.dw0, &want.dw)));
        report(&compare("conv", "  db", &db, &plus(&c.db0, &want.db)));
    }
}

async fn check_conv_transpose2d_cases(gpu: &Gpu, tiles: &Tuning, cases: &[ConvTranspose2d]) {
    for (i, g) in cases.iter().enumerate() {
        let c = Case::new(200 + i as u64, g.input_len(), g.weight_len(), g.c_out, g.output_len());
        let f = fused(i + 1);
        let build =
            |io: &ConvBuffers, gr: &ConvGradBuffers| ConvOp::conv_transpose2d(gpu, g, tiles, io, Some(gr)).unwrap();
        let [y, dx, dw, db] = run_gpu(gpu, &c, g.output_len(), f, build).await;
        let want_y = f.y(reference::conv_transpose2d_forward(g, &c.x, &c.w, Some(&c.b)));
        let want = reference::conv_transpose2d_backward(g, &c.x, &c.w, &c.dy);
        report(&format!("conv_transpose2d {g:?}, fused {f:?}"));
        report(&compare("conv", "  y", &y, &want_y));
        report(&compare("conv", "  dx", &dx, &f.dx(&c.x, want.dx)));
        report(&compare("conv", "  dw", &dw, &plus(&c.dw0, &want.dw)));
        report(&compare("conv", "  db", &db, &plus(&c.db0, &want.db)));
    }
}
