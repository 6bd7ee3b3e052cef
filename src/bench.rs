//! Kernel benchmark: every op and pass at the seed's layer shapes (DCGAN 64x64, generator
//! 1024-512-256-128, discriminator 64-128-256-512), time per pass and GFLOP/s. The same code
//! runs natively (`webgan bench`) and in the browser (the page's benchmark).

use crate::gpu::Dispatch;
use crate::gpu::{Gpu, GpuError, Tuning, View};
use crate::model::latent::normal_z;
use crate::model::{KernelForm, ModelConfig};
use crate::ops::conv::{ConvBuffers, ConvGradBuffers, ConvOp};
use crate::ops::linear::{LinearBuffers, LinearGradBuffers, LinearOp};
use crate::rng::Rng;
use crate::shape::{Conv2d, ConvTranspose2d, Linear};
use crate::step::step_flops;
use crate::train::Trainer;

/// One layer of the seed's model, as the benchmark sees it.
#[derive(Clone, Debug)]
pub enum Layer {
    Conv(Conv2d),
    ConvTranspose(ConvTranspose2d),
    Linear(Linear),
}

impl Layer {
    pub fn flops(&self) -> f64 {
        match self {
            Layer::Conv(g) => g.flops(),
            Layer::ConvTranspose(g) => g.flops(),
            Layer::Linear(g) => g.flops(),
        }
    }
}

/// The seed's DCGAN at 64x64 RGB: G's linear and four 5x5/stride-2 transposed convs, D's four
/// 5x5/stride-2 convs and its final linear.
pub fn seed_layers(batch: usize) -> Vec<(String, Layer)> {
    let mut layers =
        vec![("G linear z->4x4x1024".to_string(), Layer::Linear(Linear { batch, d_in: 100, d_out: 4 * 4 * 1024 }))];
    let (mut c, mut hw) = (1024, 4);
    for c_out in [512, 256, 128, 3] {
        let g = ConvTranspose2d { batch, c_in: c, c_out, h_in: hw, w_in: hw, kernel: 5, stride: 2, pad: 2, out_pad: 1 };
        layers.push((format!("G convT {c}->{c_out} {hw}->{}", hw * 2), Layer::ConvTranspose(g)));
        (c, hw) = (c_out, hw * 2);
    }
    let (mut c, mut hw) = (3, 64);
    for c_out in [64, 128, 256, 512] {
        let g = Conv2d { batch, c_in: c, c_out, h_in: hw, w_in: hw, kernel: 5, stride: 2, pad: 2 };
        layers.push((format!("D conv {c}->{c_out} {hw}->{}", hw / 2), Layer::Conv(g)));
        (c, hw) = (c_out, hw / 2);
    }
    layers.push(("D linear 4x4x512->1".to_string(), Layer::Linear(Linear { batch, d_in: 4 * 4 * 512, d_out: 1 })));
    layers
}

/// A plain 1024^3 matrix product through the linear kernel: this adapter's practical ceiling
/// for the register-tiled GEMM that every conv pass is a variant of.
pub fn ceiling_layer() -> (String, Layer) {
    ("sgemm 1024^3 (ceiling)".to_string(), Layer::Linear(Linear { batch: 1024, d_in: 1024, d_out: 1024 }))
}

/// The models timed per training step: the two standard configurations (issue 6's mnist32 with
/// 4x4 stride-2 kernels, dcgan64 with the seed's 5x5) and the seed's 1024-wide generator.
pub fn step_configs() -> Vec<(&'static str, ModelConfig)> {
    vec![
        ("mnist32 (ngf=ndf=32, 4x4)", ModelConfig { kernel: KernelForm::K4S2P1, ..ModelConfig::mnist() }),
        ("dcgan64 (ngf=ndf=64)", ModelConfig::faces()),
        ("seed64 (G 1024-wide)", ModelConfig { ngf: 128, ..ModelConfig::faces() }),
    ]
}

/// Mean time of `reps` whole training steps of `trainer` (after a warm-up step), as a row whose
/// pass is "train step".
pub async fn bench_step(gpu: &Gpu, name: &str, trainer: &mut Trainer, reps: u32) -> Result<Row, GpuError> {
    let cfg = trainer.cfg.clone();
    let mut rng = Rng::new(1);
    let real: Vec<u8> = (0..cfg.batch * cfg.image_len()).map(|_| rng.below(256) as u8).collect();
    let z = normal_z(&mut rng, cfg.batch, cfg.z_dim);
    trainer.step(gpu, &real, &z);
    gpu.finish().await?;
    let t0 = now_ms();
    for _ in 0..reps {
        trainer.step(gpu, &real, &z);
    }
    gpu.finish().await?;
    let ms = (now_ms() - t0) / reps as f64;
    Ok(Row {
        layer: name.to_string(),
        pass: "train step",
        ms,
        gflops: step_flops(&cfg) / ms / 1e6,
        images: cfg.batch,
        best: None,
    })
}

/// Where a step of `trainer` (one that has stepped, so every buffer holds real values) spends
/// its time, op by op: each op's dispatches (all layers, all three passes of D) timed together
/// as one submission. Rows in the order the ops first appear in the step, then the sum and the
/// number of dispatches per step.
pub async fn profile_step(
    gpu: &Gpu,
    name: &str,
    trainer: &Trainer,
    reps: u32,
    out: &mut dyn FnMut(Row),
) -> Result<(), GpuError> {
    let listing = trainer.listing();
    let mut ops: Vec<(&'static str, f64, Vec<&Dispatch>)> = Vec::new();
    for (label, d) in &listing.0 {
        match ops.iter_mut().find(|(op, ..)| *op == label.op) {
            Some((_, flops, ds)) => {
                *flops += label.flops;
                ds.push(d);
            }
            None => ops.push((label.op, label.flops, vec![d])),
        }
    }
    let (mut total_ms, mut total_flops) = (0.0, 0.0);
    for (op, flops, dispatches) in &ops {
        let ms = time(gpu, dispatches, reps).await?;
        (total_ms, total_flops) = (total_ms + ms, total_flops + flops);
        out(Row { layer: format!("  {name}"), pass: op, ms, gflops: flops / ms / 1e6, images: 0, best: None });
    }
    let layer = format!("  {} dispatches/step", listing.0.len());
    out(Row {
        layer,
        pass: "sum of the ops",
        ms: total_ms,
        gflops: total_flops / total_ms / 1e6,
        images: 0,
        best: None,
    });
    Ok(())
}

/// Every dispatch of a step of `trainer`, in order, timed alone: `reps` copies of it in one
/// submission (a submission of its own per copy would add the submission's cost to each),
/// as rows "#index entry [grid]" under the dispatch's op. Then their sum. A copy repeats what
/// the dispatch does, accumulations and Adam's update included: run it after the step's timing.
pub async fn profile_dispatches(
    gpu: &Gpu,
    trainer: &Trainer,
    reps: u32,
    out: &mut dyn FnMut(Row),
) -> Result<(), GpuError> {
    let (mut total_ms, mut total_flops) = (0.0, 0.0);
    for (i, (label, d)) in trainer.listing().0.iter().enumerate() {
        let copies = vec![d; reps as usize];
        let ms = time(gpu, &copies, 1).await? / reps as f64;
        (total_ms, total_flops) = (total_ms + ms, total_flops + label.flops);
        let layer = format!("    #{i} {} {:?}", d.entry, d.grid);
        out(Row { layer, pass: label.op, ms, gflops: label.flops / ms / 1e6, images: 0, best: None });
    }
    out(Row {
        layer: "    dispatches".into(),
        pass: "sum",
        ms: total_ms,
        gflops: total_flops / total_ms / 1e6,
        images: 0,
        best: None,
    });
    Ok(())
}

/// One measured pass of one layer.
#[derive(Clone, Debug)]
pub struct Row {
    pub layer: String,
    pub pass: &'static str,
    pub ms: f64,
    pub gflops: f64,
    /// Images per timed run (a training step's batch; 0 for a layer's pass).
    pub images: usize,
    /// A layer's pass: the GFLOP/s of its fastest run, and that as a share of the ceiling's
    /// fastest run, timed alternately with it (the sgemm's own rows have none).
    pub best: Option<(f64, Option<f64>)>,
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<26} {:<20} {:>10.2} ms {:>8.2} GFLOP/s", self.layer, self.pass, self.ms, self.gflops)?;
        if self.images > 0 {
            write!(f, " {:>8.1} images/s", self.images as f64 * 1e3 / self.ms)?;
        }
        if let Some((best, share)) = self.best {
            write!(f, "   best {best:>6.2}")?;
            if let Some(share) = share {
                write!(f, " = {:>3.0}% of sgemm", share * 100.0)?;
            }
        }
        Ok(())
    }
}

/// Milliseconds since some fixed point, on either target.
pub fn now_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        let global = js_sys::global();
        let perf = js_sys::Reflect::get(&global, &"performance".into()).expect("performance");
        let now = js_sys::Reflect::get(&perf, &"now".into()).expect("performance.now");
        js_sys::Function::from(now).call0(&perf).expect("performance.now()").as_f64().unwrap_or(0.0)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64() * 1e3
    }
}

/// Mean wall time of `reps` runs of `dispatches`, after one warm-up run (which also compiles).
pub async fn time(gpu: &Gpu, dispatches: &[&Dispatch], reps: u32) -> Result<f64, GpuError> {
    let run = || {
        crate::ops::submit(gpu, "bench", |pass| dispatches.iter().for_each(|d| d.encode(pass)));
    };
    run();
    gpu.finish().await?;
    let t0 = now_ms();
    for _ in 0..reps {
        run();
    }
    gpu.finish().await?;
    Ok((now_ms() - t0) / reps as f64)
}

/// Mean and least wall time of `reps` runs of `dispatches`, each submitted and awaited alone,
/// after one warm-up run; with `beside`, that too is run after each of them, and its least time
/// comes third. The least is the run least disturbed by whatever else the machine does: on this
/// project's shared 2-core machine the same code drifts by up to 2x within minutes, so a ratio
/// is only fair between runs seconds apart.
pub async fn time_each(
    gpu: &Gpu,
    dispatches: &[&Dispatch],
    beside: Option<&[&Dispatch]>,
    reps: u32,
) -> Result<(f64, f64, f64), GpuError> {
    async fn once(gpu: &Gpu, dispatches: &[&Dispatch]) -> Result<f64, GpuError> {
        let t0 = now_ms();
        crate::ops::submit(gpu, "bench", |pass| dispatches.iter().for_each(|d| d.encode(pass)));
        gpu.finish().await?;
        Ok(now_ms() - t0)
    }
    once(gpu, dispatches).await?;
    let (mut sum, mut least, mut least_beside) = (0.0, f64::INFINITY, f64::INFINITY);
    for _ in 0..reps {
        let ms = once(gpu, dispatches).await?;
        (sum, least) = (sum + ms, least.min(ms));
        if let Some(b) = beside {
            least_beside = least_beside.min(once(gpu, b).await?);
        }
    }
    Ok((sum / reps as f64, least, least_beside))
}

/// Deterministic values in [-1, 1).
fn filled(gpu: &Gpu, label: &str, len: usize, seed: u32) -> View {
    let mut s = seed.wrapping_mul(2654435761).max(1);
    let data: Vec<f32> = (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect();
    gpu.upload(label, &data)
}

/// A layer's dispatches over buffers of its own (inputs filled with values in [-1, 1)). A
/// conv's padding passes go with the forward and d_input that feed d_weight too, as in a step.
pub struct Passes {
    pub forward: Vec<Dispatch>,
    /// Empty when the layer has no input gradient.
    pub backward_input: Vec<Dispatch>,
    pub backward_params: Vec<Dispatch>,
}

/// Allocates `layer`'s buffers and builds its forward and backward dispatches.
pub fn build(gpu: &Gpu, layer: &Layer, tiles: &Tuning) -> Result<Passes, GpuError> {
    let (x_len, w_len, y_len, c_out) = match layer {
        Layer::Conv(g) => (g.input_len(), g.weight_len(), g.output_len(), g.c_out),
        Layer::ConvTranspose(g) => (g.input_len(), g.weight_len(), g.output_len(), g.c_out),
        Layer::Linear(g) => (g.batch * g.d_in, g.d_in * g.d_out, g.batch * g.d_out, g.d_out),
    };
    let io = ConvBuffers {
        x: filled(gpu, "x", x_len, 1),
        w: filled(gpu, "w", w_len, 2),
        bias: Some(filled(gpu, "b", c_out, 3)),
        y: gpu.zeros("y", y_len),
        act: None,
    };
    let grads = ConvGradBuffers {
        dy: filled(gpu, "dy", y_len, 4),
        dx: Some(gpu.zeros("dx", x_len)),
        dw: gpu.zeros("dw", w_len),
        db: Some(gpu.zeros("db", c_out)),
        dx_act: None,
    };
    let conv = |op: ConvOp| Passes {
        forward: op.pad_forward.into_iter().chain(op.forward).collect(),
        backward_input: match op.backward_input.is_empty() {
            true => Vec::new(),
            false => op.pad_backward.into_iter().chain(op.backward_input).collect(),
        },
        backward_params: op.backward_params,
    };
    Ok(match layer {
        Layer::Conv(g) => conv(ConvOp::conv2d(gpu, g, tiles, &io, Some(&grads))?),
        Layer::ConvTranspose(g) => conv(ConvOp::conv_transpose2d(gpu, g, tiles, &io, Some(&grads))?),
        Layer::Linear(g) => {
            let lio = LinearBuffers { x: io.x, w: io.w, bias: io.bias, y: io.y };
            let lgr = LinearGradBuffers { dy: grads.dy, dx: grads.dx, dw: grads.dw, db: grads.db };
            let op = LinearOp::new(gpu, g, tiles, &lio, Some(&lgr))?;
            Passes {
                forward: vec![op.forward],
                backward_input: op.backward_input.into_iter().collect(),
                backward_params: op.backward_params,
            }
        }
    })
}

/// The pass a layer's passes are measured against: its dispatches and FLOPs.
pub struct Ceiling<'a> {
    pub dispatches: Vec<&'a Dispatch>,
    pub flops: f64,
}

/// Times forward, d_input and d_params of `layer`; rows go to `out` as they are measured. With
/// a `ceiling`, each row carries its fastest run's share of the ceiling's fastest, timed
/// alternately with it. Returns the passes built and the GFLOP/s of each one's fastest run.
pub async fn bench_layer(
    gpu: &Gpu,
    name: &str,
    layer: &Layer,
    tiles: &Tuning,
    reps: u32,
    ceiling: Option<&Ceiling<'_>>,
    out: &mut dyn FnMut(Row),
) -> Result<(Passes, [f64; 3]), GpuError> {
    let passes = build(gpu, layer, tiles)?;
    let flops = layer.flops();
    let mut bests = [0.0; 3];
    let named =
        [("forward", &passes.forward), ("d_input", &passes.backward_input), ("d_weight+bias", &passes.backward_params)];
    for (k, (pass, dispatches)) in named.into_iter().enumerate().filter(|(_, (_, d))| !d.is_empty()) {
        let beside = ceiling.map(|c| c.dispatches.as_slice());
        let (ms, least, least_ceiling) = time_each(gpu, &dispatches.iter().collect::<Vec<_>>(), beside, reps).await?;
        bests[k] = flops / least / 1e6;
        let share = ceiling.map(|c| bests[k] / (c.flops / least_ceiling / 1e6));
        let row = Row {
            layer: name.to_string(),
            pass,
            ms,
            gflops: flops / ms / 1e6,
            images: 0,
            best: Some((bests[k], share)),
        };
        out(row);
    }
    Ok((passes, bests))
}

/// Times training steps of every standard model whose name contains `filter`, then each op of
/// the step, and with `detail` each dispatch.
pub async fn run_steps(
    gpu: &Gpu,
    tiles: &Tuning,
    reps: u32,
    filter: &str,
    detail: bool,
    out: &mut dyn FnMut(Row),
) -> Result<(), GpuError> {
    for (name, cfg) in step_configs() {
        if name.contains(filter) {
            let mut trainer = Trainer::new(gpu, &cfg, tiles)?;
            out(bench_step(gpu, name, &mut trainer, reps).await?);
            profile_step(gpu, name, &trainer, reps, out).await?;
            if detail {
                profile_dispatches(gpu, &trainer, reps, out).await?;
            }
        }
    }
    Ok(())
}

/// Benchmarks the sgemm ceiling, then every seed layer whose name contains `filter`, each pass
/// against the ceiling's fastest pass, timed alternately with it (the 50% bar is a
/// ratio on one machine at one time).
pub async fn run(
    gpu: &Gpu,
    batch: usize,
    tiles: &Tuning,
    reps: u32,
    filter: &str,
    out: &mut dyn FnMut(Row),
) -> Result<(), GpuError> {
    let (name, layer) = ceiling_layer();
    let (sgemm, bests) = bench_layer(gpu, &name, &layer, tiles, reps, None, out).await?;
    let fastest = (0..3).max_by(|&a, &b| bests[a].total_cmp(&bests[b])).unwrap_or(0);
    let passes = [&sgemm.forward, &sgemm.backward_input, &sgemm.backward_params];
    let ceiling = Ceiling { dispatches: passes[fastest].iter().collect(), flops: layer.flops() };
    for (name, layer) in seed_layers(batch) {
        if name.contains(filter) {
            bench_layer(gpu, &name, &layer, tiles, reps, Some(&ceiling), out).await?;
        }
    }
    Ok(())
}
