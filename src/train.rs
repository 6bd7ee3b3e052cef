//! The GAN training step, entirely on the GPU, and the same step on the CPU reference.
//!
//! One step (DCGAN-PyTorch's order; nothing is read back inside it):
//! 1. D on the real batch, BCE against 1, backward into D's zeroed gradients;
//! 2. G(z) (training mode), D on it, BCE against 0, backward (D's gradients accumulate); Adam on D;
//! 3. D (updated) on the same G(z), BCE against 1 (G's non-saturating loss), backward through D
//!    into G's output, backward through G; Adam on G;
//! 4. with `ModelConfig::ema`, the moving average of G's parameters takes the new ones in.
//!
//! The losses and mean D outputs stay on the GPU in `metrics`:
//! [D loss real, D(x), D loss fake, D(G(z)), G loss, D(G(z)) after D's update].

use crate::gpu::{Dispatch, Gpu, GpuError, Listing, OpLabel, Sink, Tuning, View};
use crate::model::checkpoint::{self, NetState, TrainState};
use crate::model::network::Flat;
use crate::model::{cpu, discriminator, generator, ModelConfig, NetSpec, Network};
use crate::ops::ema::EmaOp;
use crate::ops::loss::BceOp;
use crate::ops::util::{byte_buffer, unpack_u8};
use crate::reference;
use crate::rng::Rng;

pub const METRICS: usize = 6;

/// FLOPs of one training step, from the layer shapes. Each matrix layer's backward costs its
/// forward twice (input and weight gradients), but a network's first layer skips its input
/// gradient when nothing needs it. D runs forward and backward three times: on the real and the
/// fake batch for its weight gradients, and for G's loss for its input gradient only; G once.
pub fn step_flops(cfg: &ModelConfig) -> f64 {
    let (g, d) = (generator(cfg).layer_flops(cfg.batch), discriminator(cfg).layer_flops(cfg.batch));
    let (fg, fd): (f64, f64) = (g.iter().sum(), d.iter().sum());
    3.0 * fd + 2.0 * (2.0 * fd - d[0]) + fd + 3.0 * fg - g[0]
}

/// Both networks' initial parameters, drawn from the config's seed: G's first, then D's.
pub fn init_params(cfg: &ModelConfig) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut rng = Rng::new(cfg.seed);
    let g = generator(cfg).init(&mut rng);
    let d = discriminator(cfg).init(&mut rng);
    (g, d)
}

/// A DCGAN or BasicGAN with everything its training step needs on the GPU.
pub struct Trainer {
    pub cfg: ModelConfig,
    pub g: Network,
    pub d: Network,
    real_bytes: View,
    unpack_real: Dispatch,
    bce_real: BceOp,
    bce_fake: BceOp,
    bce_gen: BceOp,
    pub metrics: View,
    /// The moving average of G's parameters (in `g.params`' layout) and its update, with
    /// `cfg.ema` > 0.
    pub g_ema: Option<(Flat, EmaOp)>,
    /// Steps taken (Adam's bias correction uses step + 1 for the next).
    pub step: u32,
}

impl Trainer {
    /// Builds both networks with freshly initialised weights.
    pub fn new(gpu: &Gpu, cfg: &ModelConfig, tiles: &Tuning) -> Result<Trainer, GpuError> {
        crate::model::limits::check(cfg, tiles, &gpu.limits)?; // validates; refuses before any allocation
        let batch = cfg.batch;
        let (g_spec, d_spec) = (generator(cfg), discriminator(cfg));
        let d_input = gpu.zeros("D input", batch * d_spec.input_len);
        let d_input_grad = gpu.zeros("D d_input", batch * d_spec.input_len);
        let d = Network::new(gpu, d_spec, batch, tiles, &cfg.adam, &cfg.bn, d_input, Some(d_input_grad.clone()), None)?;
        let z = gpu.zeros("z", batch * cfg.z_dim);
        let g = Network::new(gpu, g_spec, batch, tiles, &cfg.adam, &cfg.bn, z, None, Some(d_input_grad))?;
        let real_bytes = byte_buffer(gpu, "real batch (u8)", batch * cfg.image_len());
        let unpack_real = unpack_u8(gpu, &real_bytes, &d.input)?;
        let metrics = gpu.zeros("metrics", METRICS);
        let (logits, d_logits) = (d.output(), d.output_grad());
        let g_ema = if cfg.ema > 0.0 {
            let ema = Flat::new(gpu, "G params moving average", &g.params.lens());
            let op = EmaOp::new(gpu, cfg.ema, &g.params.whole, &ema.whole)?;
            Some((ema, op))
        } else {
            None
        };
        let trainer = Trainer {
            bce_real: BceOp::new(gpu, logits, 1.0, d_logits, &metrics, 0)?,
            bce_fake: BceOp::new(gpu, logits, 0.0, d_logits, &metrics, 2)?,
            bce_gen: BceOp::new(gpu, logits, 1.0, d_logits, &metrics, 4)?,
            cfg: cfg.clone(),
            g,
            d,
            real_bytes,
            unpack_real,
            metrics,
            g_ema,
            step: 0,
        };
        let (g_params, d_params) = init_params(cfg);
        if let Some((ema, _)) = &trainer.g_ema {
            ema.write(gpu, &g_params); // the average starts at the initial weights
        }
        trainer.g.params.write(gpu, &g_params);
        trainer.d.params.write(gpu, &d_params);
        trainer.g.running.write(gpu, &trainer.g.spec.init_running());
        trainer.d.running.write(gpu, &trainer.d.spec.init_running());
        Ok(trainer)
    }

    /// Queues one training step on `real` (batch images, NCHW u8) and `z` (batch x z_dim);
    /// returns without waiting for the GPU.
    pub fn step(&mut self, gpu: &Gpu, real: &[u8], z: &[f32]) -> wgpu::SubmissionIndex {
        assert_eq!(real.len(), self.cfg.batch * self.cfg.image_len(), "real batch size");
        let mut padded = real.to_vec();
        padded.resize(self.real_bytes.len * 4, 0);
        gpu.queue.write_buffer(&self.real_bytes.buffer, self.real_bytes.offset, &padded);
        gpu.write(&self.g.input, z);
        self.step += 1;
        self.d.adam.set_step(gpu, self.step);
        self.g.adam.set_step(gpu, self.step);

        let (g, d) = (&self.g, &self.d);
        let mut encoder =
            gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("GAN step") });
        d.zero_grads(&mut encoder);
        g.zero_grads(&mut encoder);
        self.record_real_and_g(&mut encoder.begin_compute_pass(&Default::default()));
        let (fake, d_in) = (g.output(), &d.input);
        encoder.copy_buffer_to_buffer(&fake.buffer, fake.offset, &d_in.buffer, d_in.offset, fake.bytes());
        self.record_fake_and_updates(&mut encoder.begin_compute_pass(&Default::default()));
        gpu.queue.submit([encoder.finish()])
    }

    /// Every dispatch of a step, in order, with what it does (for the per-op profile; the step
    /// also clears the gradients and copies G(z) into D's input between the two halves).
    pub fn listing(&self) -> Listing {
        let mut list = Listing::default();
        self.record_real_and_g(&mut list);
        self.record_fake_and_updates(&mut list);
        list
    }

    /// D on the real batch and its backward; G's forward.
    fn record_real_and_g(&self, sink: &mut dyn Sink) {
        let (g, d) = (&self.g, &self.d);
        sink.push(OpLabel::new("unpack"), &self.unpack_real);
        d.forward(sink, true);
        self.bce_real.encode(sink);
        d.backward(sink, false, true);
        g.forward(sink, true);
    }

    /// D on G(z), its backward and update; D again for G's loss, back through D (its own
    /// gradients are not needed) and G; G's update.
    fn record_fake_and_updates(&self, sink: &mut dyn Sink) {
        let (g, d) = (&self.g, &self.d);
        d.forward(sink, true);
        self.bce_fake.encode(sink);
        d.backward(sink, false, true);
        d.adam.encode(sink);
        d.forward(sink, true);
        self.bce_gen.encode(sink);
        d.backward(sink, true, false);
        g.backward(sink, false, true);
        g.adam.encode(sink);
        if let Some((_, op)) = &self.g_ema {
            op.encode(sink);
        }
    }
}

/// Everything the CPU reference step keeps between steps.
#[derive(Clone)]
pub struct CpuGan {
    pub g: NetSpec,
    pub d: NetSpec,
    pub g_params: Vec<Vec<f32>>,
    pub d_params: Vec<Vec<f32>>,
    pub g_running: Vec<Vec<f32>>,
    pub d_running: Vec<Vec<f32>>,
    g_m: Vec<Vec<f32>>,
    g_v: Vec<Vec<f32>>,
    d_m: Vec<Vec<f32>>,
    d_v: Vec<Vec<f32>>,
    /// The moving average of G's parameters; empty without `cfg.ema`.
    pub g_ema: Vec<Vec<f32>>,
    pub step: u32,
}

/// Zeroed tensors of `v`'s lengths (gradients and Adam moments start so).
pub(crate) fn zeros_like(v: &[Vec<f32>]) -> Vec<Vec<f32>> {
    v.iter().map(|t| vec![0.0; t.len()]).collect()
}

impl CpuGan {
    pub fn new(cfg: &ModelConfig) -> CpuGan {
        let (g_spec, d_spec) = (generator(cfg), discriminator(cfg));
        let (g_params, d_params) = init_params(cfg);
        CpuGan {
            g_running: g_spec.init_running(),
            d_running: d_spec.init_running(),
            g_m: zeros_like(&g_params),
            g_v: zeros_like(&g_params),
            d_m: zeros_like(&d_params),
            d_v: zeros_like(&d_params),
            g: g_spec,
            d: d_spec,
            g_ema: if cfg.ema > 0.0 { g_params.clone() } else { Vec::new() },
            g_params,
            d_params,
            step: 0,
        }
    }

    /// The step `Trainer::step` performs, on the CPU reference; returns the metrics.
    pub fn step(&mut self, cfg: &ModelConfig, real: &[u8], z: &[f32]) -> [f32; METRICS] {
        let (n, bn) = (cfg.batch, &cfg.bn);
        let real: Vec<f32> = real.iter().map(|&b| b as f32 / 127.5 - 1.0).collect();
        self.step += 1;
        let mut d_grads = zeros_like(&self.d_params);

        let (logits, tape) = cpu::forward(&self.d, n, &self.d_params, &mut self.d_running, bn, &real, true);
        let real_loss = reference::bce_with_logits(&logits, 1.0);
        cpu::backward(&self.d, n, &self.d_params, &tape, &real_loss.dlogits, &mut d_grads);

        let (fake, g_tape) = cpu::forward(&self.g, n, &self.g_params, &mut self.g_running, bn, z, true);
        let (logits, tape) = cpu::forward(&self.d, n, &self.d_params, &mut self.d_running, bn, &fake, true);
        let fake_loss = reference::bce_with_logits(&logits, 0.0);
        cpu::backward(&self.d, n, &self.d_params, &tape, &fake_loss.dlogits, &mut d_grads);
        for (((p, g), m), v) in self.d_params.iter_mut().zip(&d_grads).zip(&mut self.d_m).zip(&mut self.d_v) {
            reference::adam_update(&cfg.adam, self.step, p, g, m, v);
        }

        let (logits, tape) = cpu::forward(&self.d, n, &self.d_params, &mut self.d_running, bn, &fake, true);
        let gen_loss = reference::bce_with_logits(&logits, 1.0);
        let d_fake = cpu::backward(&self.d, n, &self.d_params, &tape, &gen_loss.dlogits, &mut d_grads);
        let mut g_grads = zeros_like(&self.g_params);
        cpu::backward(&self.g, n, &self.g_params, &g_tape, &d_fake, &mut g_grads);
        for (((p, g), m), v) in self.g_params.iter_mut().zip(&g_grads).zip(&mut self.g_m).zip(&mut self.g_v) {
            reference::adam_update(&cfg.adam, self.step, p, g, m, v);
        }
        for (e, p) in self.g_ema.iter_mut().zip(&self.g_params) {
            reference::ema_update(cfg.ema, e, p);
        }
        [real_loss.loss, real_loss.mean_prob, fake_loss.loss, fake_loss.mean_prob, gen_loss.loss, gen_loss.mean_prob]
    }
}

impl Trainer {
    /// G's images for `z` (batch x z_dim) with batchnorm in inference mode (running statistics),
    /// as NCHW values in [-1, 1].
    pub async fn sample(&self, gpu: &Gpu, z: &[f32]) -> Result<Vec<f32>, GpuError> {
        gpu.write(&self.g.input, z);
        crate::ops::submit(gpu, "sample", |pass| self.g.forward(pass, false));
        gpu.read(self.g.output()).await
    }

    /// G's images for `z` as G makes them in training (batch statistics), leaving the running
    /// statistics as they were: the live grid (see [`crate::model::generate::preview_with`]).
    pub async fn preview(&self, gpu: &Gpu, z: &[f32]) -> Result<Vec<f32>, GpuError> {
        crate::model::generate::preview_with(gpu, &self.g, z).await
    }

    /// [`Trainer::sample`] for any whole number of latent vectors, a batch at a time (the last
    /// batch padded with zeros).
    pub async fn generate(&self, gpu: &Gpu, z: &[f32]) -> Result<Vec<f32>, GpuError> {
        crate::model::generate::generate_with(gpu, &self.g, z).await
    }
}

/// Metrics read back every N steps without stalling: each read copies `metrics` into the next
/// of a few staging buffers and maps it asynchronously; finished maps are collected later, so
/// the queue never waits for the CPU (a ring of staging buffers, as a frame-timing HUD does).
pub struct MetricsRing {
    slots: Vec<Slot>,
    next: usize,
}

struct Slot {
    buffer: wgpu::Buffer,
    step: u32,
    state: std::sync::Arc<std::sync::Mutex<SlotState>>,
}

#[derive(Clone, Copy, PartialEq)]
enum SlotState {
    Free,
    Mapping,
    Mapped,
    Failed,
}

impl MetricsRing {
    pub fn new(gpu: &Gpu, slots: usize) -> MetricsRing {
        let slots = (0..slots)
            .map(|i| Slot {
                buffer: gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("metrics staging {i}")),
                    size: (METRICS * 4) as u64,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                step: 0,
                state: std::sync::Arc::new(std::sync::Mutex::new(SlotState::Free)),
            })
            .collect();
        MetricsRing { slots, next: 0 }
    }

    /// Queues a copy of the trainer's current metrics; false (and nothing queued) when every
    /// slot is still waiting to be collected.
    pub fn record(&mut self, gpu: &Gpu, trainer: &Trainer) -> bool {
        let slot = &mut self.slots[self.next];
        if *slot.state.lock().unwrap() != SlotState::Free {
            return false;
        }
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        let m = &trainer.metrics;
        encoder.copy_buffer_to_buffer(&m.buffer, m.offset, &slot.buffer, 0, m.bytes());
        gpu.queue.submit([encoder.finish()]);
        slot.step = trainer.step;
        *slot.state.lock().unwrap() = SlotState::Mapping;
        let state = slot.state.clone();
        slot.buffer.map_async(wgpu::MapMode::Read, .., move |r| {
            *state.lock().unwrap() = if r.is_ok() { SlotState::Mapped } else { SlotState::Failed };
        });
        self.next = (self.next + 1) % self.slots.len();
        true
    }

    /// The metrics whose copies have arrived, oldest first, as (step, values). Never blocks
    /// (natively it polls the device once; in the browser the event loop delivers the maps).
    #[cfg_attr(target_arch = "wasm32", allow(unused_variables))]
    pub fn collect(&mut self, gpu: &Gpu) -> Result<Vec<(u32, [f32; METRICS])>, GpuError> {
        #[cfg(not(target_arch = "wasm32"))]
        let _ = gpu.device.poll(wgpu::PollType::Poll);
        let mut out = Vec::new();
        for slot in &mut self.slots {
            let state = *slot.state.lock().unwrap();
            match state {
                SlotState::Mapped => {
                    let mut values = [0f32; METRICS];
                    {
                        let view = slot.buffer.get_mapped_range(..).map_err(|e| GpuError::Readback(e.to_string()))?;
                        values.copy_from_slice(bytemuck::cast_slice(&view));
                    }
                    slot.buffer.unmap();
                    *slot.state.lock().unwrap() = SlotState::Free;
                    out.push((slot.step, values));
                }
                SlotState::Failed => return Err(GpuError::Readback("metrics map failed (device lost?)".into())),
                _ => {}
            }
        }
        out.sort_by_key(|m| m.0);
        Ok(out)
    }
}

impl Trainer {
    /// A checkpoint of both networks (parameters, Adam moments, running statistics), the step,
    /// the config, and `run` (the caller's run state: epoch, rng, data order...).
    pub async fn save(&self, gpu: &Gpu, run: Vec<(String, String)>) -> Result<Vec<u8>, GpuError> {
        let state = TrainState {
            config: self.cfg.clone(),
            step: self.step,
            run,
            g: NetState::read(gpu, &self.g).await?,
            d: NetState::read(gpu, &self.d).await?,
            g_ema: match &self.g_ema {
                Some((ema, _)) => ema.read(gpu).await?,
                None => Vec::new(),
            },
        };
        Ok(state.to_bytes())
    }

    /// Checks a checkpoint completely, then writes it into both networks and sets the step;
    /// returns its run pairs (sorted by key). On error nothing is changed. The trainer keeps its
    /// own hyperparameters: see [`checkpoint::read_config`] for the checkpoint's.
    pub fn load(&mut self, gpu: &Gpu, bytes: &[u8]) -> Result<Vec<(String, String)>, checkpoint::CheckpointError> {
        let state = checkpoint::from_bytes(bytes, &self.cfg)?;
        state.g.write(gpu, &self.g);
        state.d.write(gpu, &self.d);
        if let Some((ema, _)) = &self.g_ema {
            ema.write(gpu, state.ema_or_params());
        }
        self.step = state.step;
        Ok(state.run)
    }
}
