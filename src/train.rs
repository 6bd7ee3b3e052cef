//! The GAN training step ([`crate::step`]'s order) entirely on the GPU, and the same step on the
//! CPU reference. On the GPU nothing is read back inside a step: the losses and mean D outputs
//! stay in `Trainer::metrics`, in [`METRICS`] order.

use crate::gpu::{Dispatch, Gpu, GpuError, Listing, OpLabel, Sink, Tuning, View};
use crate::model::checkpoint::{self, NetState, TrainState};
use crate::model::cpu::Reference;
use crate::model::network::Flat;
use crate::model::{discriminator, generator, ModelConfig, Network};
use crate::ops::ema::EmaOp;
use crate::ops::loss::BceOp;
use crate::ops::util::{byte_buffer, unpack_u8};
use crate::step::host::HostGan;
use crate::step::{gan_step, init_params, GanPasses, Judgement, METRICS};

/// A DCGAN or BasicGAN with everything its training step needs on the GPU.
pub struct Trainer {
    pub cfg: ModelConfig,
    pub g: Network,
    pub d: Network,
    real_bytes: View,
    unpack_real: Dispatch,
    /// The loss of each judgement, indexed by `Judgement as usize`.
    bce: [BceOp; 3],
    pub metrics: View,
    /// The moving average of G's parameters (in `g.params`' layout) and its update, with
    /// `cfg.ema` > 0.
    pub g_ema: Option<(Flat, EmaOp)>,
    /// Steps taken (Adam's bias correction uses step + 1 for the next).
    pub step: u32,
    /// The kernels' tile shapes its dispatches were built with.
    pub tiles: Tuning,
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
            bce: [
                BceOp::new(gpu, logits, Judgement::Real.label(), d_logits, &metrics, Judgement::Real.slot())?,
                BceOp::new(gpu, logits, Judgement::Fake.label(), d_logits, &metrics, Judgement::Fake.slot())?,
                BceOp::new(gpu, logits, Judgement::Gen.label(), d_logits, &metrics, Judgement::Gen.slot())?,
            ],
            cfg: cfg.clone(),
            g,
            d,
            real_bytes,
            unpack_real,
            metrics,
            g_ema,
            step: 0,
            tiles: *tiles,
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

    /// The same model, at the same step, with its dispatches built for `tiles`: a new trainer
    /// whose state (parameters, Adam moments, running statistics, G's average) is copied from
    /// this one on the GPU, queued before anything the caller queues next; nothing is read back.
    /// So a run takes better tiles between two steps, and goes on exactly as it would have.
    pub fn retiled(&self, gpu: &Gpu, tiles: &Tuning) -> Result<Trainer, GpuError> {
        let mut t = Trainer::new(gpu, &self.cfg, tiles)?;
        t.step = self.step;
        let mut encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("retile") });
        let mut copy = |from: &Flat, to: &Flat| {
            let (a, b) = (&from.whole, &to.whole);
            if a.bytes() > 0 {
                encoder.copy_buffer_to_buffer(&a.buffer, a.offset, &b.buffer, b.offset, a.bytes());
            }
        };
        for (old, new) in [(&self.g, &t.g), (&self.d, &t.d)] {
            copy(&old.params, &new.params);
            copy(&old.adam_m, &new.adam_m);
            copy(&old.adam_v, &new.adam_v);
            copy(&old.running, &new.running);
        }
        if let (Some((from, _)), Some((to, _))) = (&self.g_ema, &t.g_ema) {
            copy(from, to);
        }
        gpu.queue.submit([encoder.finish()]);
        Ok(t)
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

        let mut encoder =
            gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("GAN step") });
        self.d.zero_grads(&mut encoder);
        self.g.zero_grads(&mut encoder);
        gan_step(&mut GpuPasses { t: self, to: Recorder::Encoder { encoder: &mut encoder, pass: None } });
        gpu.queue.submit([encoder.finish()])
    }

    /// Every dispatch of a step, in order, with what it does (for the per-op profile; the step
    /// also clears the gradients first and copies G(z) into D's input before the Fake judgement).
    pub fn listing(&self) -> Listing {
        let mut list = Listing::default();
        gan_step(&mut GpuPasses { t: self, to: Recorder::Listing(&mut list) });
        list
    }
}

/// Where the GPU step's dispatches go: a command encoder (one compute pass, ended for the one
/// buffer copy), or a listing for the per-op profile.
#[allow(clippy::large_enum_variant)] // one lives on the stack for a step's recording
enum Recorder<'a> {
    Encoder { encoder: &'a mut wgpu::CommandEncoder, pass: Option<wgpu::ComputePass<'static>> },
    Listing(&'a mut Listing),
}

impl Recorder<'_> {
    fn sink(&mut self) -> &mut dyn Sink {
        match self {
            Recorder::Encoder { encoder, pass } => {
                pass.get_or_insert_with(|| encoder.begin_compute_pass(&Default::default()).forget_lifetime())
            }
            Recorder::Listing(list) => *list,
        }
    }

    fn copy(&mut self, from: &View, to: &View) {
        if let Recorder::Encoder { encoder, pass } = self {
            *pass = None; // ends the compute pass: copies are recorded outside one
            encoder.copy_buffer_to_buffer(&from.buffer, from.offset, &to.buffer, to.offset, from.bytes());
        }
    }
}

/// The step's passes as dispatches recorded once over the trainer's fixed buffers.
struct GpuPasses<'a> {
    t: &'a Trainer,
    to: Recorder<'a>,
}

impl GanPasses for GpuPasses<'_> {
    fn judge(&mut self, j: Judgement) {
        let d = &self.t.d;
        match j {
            Judgement::Real => self.to.sink().push(OpLabel::new("unpack"), &self.t.unpack_real),
            Judgement::Fake => self.to.copy(self.t.g.output(), &d.input),
            Judgement::Gen => {} // D's input still holds G(z)
        }
        let sink = self.to.sink();
        d.forward(sink, true);
        self.t.bce[j as usize].encode(sink);
        d.backward(sink, !j.trains_d(), j.trains_d());
    }

    fn g_forward(&mut self) {
        self.t.g.forward(self.to.sink(), true);
    }

    fn g_backward(&mut self) {
        self.t.g.backward(self.to.sink(), false, true);
    }

    fn adam_d(&mut self) {
        self.t.d.adam.encode(self.to.sink());
    }

    fn adam_g(&mut self) {
        self.t.g.adam.encode(self.to.sink());
    }

    fn ema_g(&mut self) {
        if let Some((_, op)) = &self.t.g_ema {
            op.encode(self.to.sink());
        }
    }
}

/// The training step on the CPU reference (`model::cpu::Reference`: the plain code the tests
/// trust, as a backend of the host step).
pub type CpuGan = HostGan<Reference>;

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
    /// With `cfg.ema` they are the moving average's images: what the run's samples are.
    pub async fn preview(&self, gpu: &Gpu, z: &[f32]) -> Result<Vec<f32>, GpuError> {
        let average = self.g_ema.as_ref().map(|(ema, _)| &ema.whole);
        crate::model::generate::preview_with(gpu, &self.g, average, z).await
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
