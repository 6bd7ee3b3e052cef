//! The native command line: `cargo run --release -- train|bench ...`. On wasm32 the page is the
//! front end, so this compiles to nothing there.
#![cfg_attr(target_arch = "wasm32", allow(unused))]

#[cfg(not(target_arch = "wasm32"))]
mod classifier;
#[cfg(not(target_arch = "wasm32"))]
mod export;
#[cfg(not(target_arch = "wasm32"))]
mod grid;
#[cfg(not(target_arch = "wasm32"))]
mod sample;
#[cfg(not(target_arch = "wasm32"))]
mod score;
#[cfg(not(target_arch = "wasm32"))]
mod train;

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    match cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use clap::{Args, Parser, Subcommand, ValueEnum};
    use std::path::PathBuf;
    use webgan::autotune::{tune, FileCache};
    use webgan::gpu::{Gpu, Tuning};
    use webgan::model::{KernelForm, Kind, ModelConfig};

    /// The default adapter with its kernels tuned: from the cache, or measured once (seconds).
    pub fn open_tuned_gpu() -> Result<Gpu, String> {
        let gpu = pollster::block_on(Gpu::new()).map_err(|e| e.to_string())?;
        pollster::block_on(tune(&gpu, &mut FileCache::user(), &Tuning::candidates(&gpu.info), &mut |line| {
            eprintln!("{line}")
        }))
        .map_err(|e| e.to_string())?;
        Ok(gpu)
    }

    #[derive(Parser)]
    #[command(name = "webgan-cli", about = "A DCGAN on WebGPU, natively through wgpu")]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Train a DCGAN or BasicGAN on an MNIST IDX file or a folder of images.
        Train(TrainArgs),
        /// Draw an 8x8 grid and an interpolation strip (spherical, between two z) from a
        /// generator, on the CPU.
        Sample {
            /// A training checkpoint or a generator weights file (as in www/weights/).
            #[arg(long, alias = "weights")]
            checkpoint: PathBuf,
            #[arg(long, default_value = "samples.png")]
            out: PathBuf,
            #[arg(long, default_value = "interpolation.png")]
            strip: PathBuf,
            #[arg(long, default_value_t = 1)]
            seed: u64,
        },
        /// The sliced Wasserstein distance (x1e3 per pyramid level, Karras et al. 2018) between a
        /// generator's images and real images, on the CPU.
        Score {
            /// A training checkpoint or a generator weights file (as in www/weights/).
            #[arg(long, alias = "weights")]
            checkpoint: PathBuf,
            /// An MNIST IDX file or a folder of images, read at the checkpoint's size and channels.
            #[arg(long)]
            data: PathBuf,
            /// Images per set (real and generated).
            #[arg(long, default_value_t = 2000)]
            count: usize,
            #[arg(long, default_value_t = 1)]
            seed: u64,
            /// Also score two disjoint real sets of --count images against each other: the floor.
            #[arg(long)]
            baseline: bool,
            /// Take the floor's second set from these real images (an IDX file or a folder, e.g. the
            /// training identities when --data holds held-out ones) rather than from --data.
            #[arg(long)]
            baseline_data: Option<PathBuf>,
            /// An MNIST classifier's weights (www/weights/mnist-classifier.safetensors): also report
            /// the share of confidently classified digits, the class histogram and its entropy.
            #[arg(long)]
            classifier: Option<PathBuf>,
            /// With --classifier: write the first 64 generated digits it reads without confidence
            /// to this PNG (8 per row, in the order drawn), to see what they are.
            #[arg(long, requires = "classifier")]
            unsure_grid: Option<PathBuf>,
            /// A pixel box x,y,w,h cut from every image of a folder first (the training run's --crop).
            #[arg(long, value_parser = parse_crop)]
            crop: Option<webgan::data::Crop>,
        },
        /// Train the MNIST digit classifier (the score's judge of generated digits) on the GPU kernels.
        TrainClassifier {
            /// MNIST training images (IDX, .gz or raw).
            #[arg(long)]
            data: PathBuf,
            /// Their labels (IDX).
            #[arg(long)]
            labels: PathBuf,
            /// Test images and labels, evaluated after every epoch.
            #[arg(long)]
            test_data: Option<PathBuf>,
            #[arg(long)]
            test_labels: Option<PathBuf>,
            #[arg(long, default_value_t = 3)]
            epochs: usize,
            #[arg(long, default_value_t = 64)]
            batch: usize,
            #[arg(long, default_value_t = 1e-3)]
            lr: f32,
            /// The learning rate is multiplied by this after every epoch.
            #[arg(long, default_value_t = 0.3)]
            lr_decay: f32,
            /// Channels of the first conv (then 2x and 4x).
            #[arg(long, default_value_t = webgan::model::classifier::WIDTH)]
            width: usize,
            #[arg(long, default_value_t = 1)]
            seed: u64,
            #[arg(long, default_value = "runs/classifier/mnist-classifier.safetensors")]
            out: PathBuf,
            #[arg(long, default_value_t = 100)]
            log_every: u32,
            /// Start from these classifier weights instead of fresh ones (--epochs 0: only
            /// re-estimate the batchnorm statistics, evaluate and write).
            #[arg(long)]
            init: Option<PathBuf>,
        },
        /// The accuracy of classifier weights on a labelled MNIST set.
        EvalClassifier {
            #[arg(long, default_value = "www/weights/mnist-classifier.safetensors")]
            weights: PathBuf,
            #[arg(long, default_value = "www/data/mnist/t10k-images-idx3-ubyte.gz")]
            data: PathBuf,
            #[arg(long, default_value = "www/data/mnist/t10k-labels-idx1-ubyte.gz")]
            labels: PathBuf,
            #[arg(long, default_value_t = 500)]
            batch: usize,
        },
        /// Write a checkpoint's generator as the page's compact weights file (F16, G only); from a
        /// weights file, rewrite it with more --info lines.
        Export {
            /// A training checkpoint or a generator weights file.
            #[arg(long, alias = "weights")]
            checkpoint: PathBuf,
            #[arg(long)]
            out: PathBuf,
            /// A model-card line, key=value (repeatable): data, command, wall time, device...
            #[arg(long)]
            info: Vec<String>,
        },
        /// Time training steps of the standard models, then every op and pass at the seed's layer
        /// shapes, and print ms, images/s and GFLOP/s.
        Bench {
            #[arg(long, default_value_t = 64)]
            batch: usize,
            /// Timed repetitions per pass (after one warm-up).
            #[arg(long, default_value_t = 2)]
            reps: u32,
            /// Only layers whose name contains this text (e.g. "convT", "D conv").
            #[arg(long, default_value = "")]
            only: String,
            /// Register tiles "TMxTN/WG_MxWG_N" for every kernel, a comma-separated list of them,
            /// "all" (the candidates), or a whole tuning as the cache keeps it ("linear=16x16/2x8
            /// direct=... reduce=16"); default: the adapter's tuning (autotuned once, cached).
            #[arg(long)]
            tiles: Option<String>,
            /// After each training step's per-op profile, time every dispatch of the step alone.
            #[arg(long)]
            detail: bool,
        },
    }

    #[derive(Clone, Copy, ValueEnum)]
    enum KindArg {
        Dcgan,
        Basic,
    }

    #[derive(Clone, Copy, ValueEnum)]
    enum KernelArg {
        /// 5x5, stride 2, pad 2 (output_padding 1 in G): the seed's.
        Seed5x5,
        /// 4x4, stride 2, pad 1.
        K4s2p1,
    }

    #[derive(Args)]
    struct TrainArgs {
        /// An MNIST IDX image file (.gz or raw) or a folder of JPEG/PNG images (searched recursively).
        #[arg(long)]
        data: PathBuf,
        #[arg(long, value_enum, default_value = "dcgan")]
        kind: KindArg,
        /// Image side: 32 or 64 (G doubles from 4x4 up to it).
        #[arg(long, default_value_t = 32)]
        size: usize,
        /// 1 (grey) or 3 (RGB); default: 1 for an IDX file, 3 for a folder.
        #[arg(long)]
        channels: Option<usize>,
        #[arg(long, default_value_t = 100)]
        z: usize,
        #[arg(long, default_value_t = 32)]
        ngf: usize,
        #[arg(long, default_value_t = 32)]
        ndf: usize,
        #[arg(long, value_enum, default_value = "seed5x5")]
        kernel: KernelArg,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        #[arg(long, default_value_t = 2e-4)]
        lr: f32,
        #[arg(long, default_value_t = 0.5)]
        beta1: f32,
        /// Keep a moving average of G's parameters with this decay (e.g. 0.999; 0: none):
        /// checkpoints hold it, and sample, score and export draw from it. On --resume from a
        /// checkpoint without one, it starts at G's parameters there.
        #[arg(long, default_value_t = 0.0)]
        ema: f32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Train until this step (counted from the start of the run, also when resuming).
        #[arg(long)]
        steps: Option<u32>,
        /// Train for this many passes over the data (instead of --steps).
        #[arg(long)]
        epochs: Option<f64>,
        /// Where sample grids and the checkpoint go.
        #[arg(long, default_value = "runs/latest")]
        out: PathBuf,
        #[arg(long, default_value_t = 200)]
        sample_every: u32,
        #[arg(long, default_value_t = 1000)]
        checkpoint_every: u32,
        /// Continue from a checkpoint (same model options).
        #[arg(long)]
        resume: Option<PathBuf>,
        /// Use at most this many images of a folder.
        #[arg(long)]
        max_images: Option<usize>,
        /// Where the step runs: the WGSL kernels through wgpu, or the fast CPU path (sgemm on all
        /// cores). Checkpoints are the same either way, so --resume may switch.
        #[arg(long, value_enum, default_value = "gpu")]
        backend: BackendArg,
        /// A pixel box x,y,w,h cut from every image of a folder before the square centre crop and
        /// resize (aligned CelebA faces: 25,45,128,128).
        #[arg(long, value_parser = parse_crop)]
        crop: Option<webgan::data::Crop>,
    }

    #[derive(Clone, Copy, ValueEnum)]
    enum BackendArg {
        Gpu,
        Cpu,
    }

    fn parse_crop(s: &str) -> Result<webgan::data::Crop, String> {
        let v: Vec<u32> =
            s.split(',').map(|p| p.trim().parse::<u32>()).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
        match v[..] {
            [x, y, width, height] if width > 0 && height > 0 => Ok(webgan::data::Crop { x, y, width, height }),
            _ => Err(format!("{s:?}: expected x,y,w,h with w and h positive")),
        }
    }

    impl TrainArgs {
        fn config(&self) -> ModelConfig {
            let base = ModelConfig::mnist();
            ModelConfig {
                kind: match self.kind {
                    KindArg::Dcgan => Kind::Dcgan,
                    KindArg::Basic => Kind::Basic,
                },
                image_size: self.size,
                channels: self.channels.unwrap_or(if self.data.is_dir() { 3 } else { 1 }),
                z_dim: self.z,
                ngf: self.ngf,
                ndf: self.ndf,
                kernel: match self.kernel {
                    KernelArg::Seed5x5 => KernelForm::Seed5x5,
                    KernelArg::K4s2p1 => KernelForm::K4S2P1,
                },
                batch: self.batch,
                adam: webgan::shape::AdamConfig { lr: self.lr, beta1: self.beta1, ..base.adam },
                ema: self.ema,
                seed: self.seed,
                ..base
            }
        }
    }

    pub fn run() -> Result<(), String> {
        match Cli::parse().command {
            Command::Train(args) => crate::train::run(crate::train::Options {
                cfg: args.config(),
                data: args.data,
                steps: args.steps,
                epochs: args.epochs,
                out: args.out,
                sample_every: args.sample_every.max(1),
                checkpoint_every: args.checkpoint_every.max(1),
                resume: args.resume,
                max_images: args.max_images,
                backend: match args.backend {
                    BackendArg::Gpu => crate::train::Backend::Gpu,
                    BackendArg::Cpu => crate::train::Backend::Cpu,
                },
                crop: args.crop,
            }),
            Command::Sample { checkpoint, out, strip, seed } => crate::sample::run(&checkpoint, &out, &strip, seed),
            Command::Export { checkpoint, out, info } => crate::export::run(&checkpoint, &out, &info),
            Command::Score {
                checkpoint,
                data,
                count,
                seed,
                baseline,
                baseline_data,
                classifier,
                unsure_grid,
                crop,
            } => crate::score::run(&crate::score::Options {
                checkpoint,
                data,
                count,
                seed,
                baseline,
                baseline_data,
                classifier,
                unsure_grid,
                crop,
            }),
            Command::TrainClassifier {
                data,
                labels,
                test_data,
                test_labels,
                epochs,
                batch,
                lr,
                lr_decay,
                width,
                seed,
                out,
                log_every,
                init,
            } => {
                let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
                let opts = crate::classifier::Options {
                    data,
                    labels,
                    test_data,
                    test_labels,
                    epochs,
                    batch,
                    lr,
                    lr_decay,
                    width,
                    seed,
                    out,
                    log_every: log_every.max(1),
                    init,
                };
                crate::classifier::train(&opts, &format!("webgan-cli {command}"))
            }
            Command::EvalClassifier { weights, data, labels, batch } => {
                crate::classifier::eval(&weights, &data, &labels, batch)
            }
            Command::Bench { batch, reps, only, tiles, detail } => {
                let (gpu, candidates) = match tiles.as_deref() {
                    None => {
                        let gpu = open_tuned_gpu()?;
                        let tuned = vec![gpu.tuning()];
                        (gpu, tuned)
                    }
                    Some(s) => {
                        let gpu = pollster::block_on(Gpu::new()).map_err(|e| e.to_string())?;
                        let list = Tuning::parse_list(s, gpu.tuning().reduce_wg)?;
                        (gpu, list)
                    }
                };
                println!("adapter: {}", gpu.adapter_summary());
                for tiles in candidates {
                    println!(
                        "tiles {tiles}, mean of {reps} after a warm-up; steps at batch 64, layers at batch {batch}"
                    );
                    let mut print = |row: webgan::bench::Row| println!("{row}");
                    pollster::block_on(webgan::bench::run_steps(&gpu, &tiles, reps, &only, detail, &mut print))
                        .map_err(|e| e.to_string())?;
                    pollster::block_on(webgan::bench::run(&gpu, batch, &tiles, reps, &only, &mut print))
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            }
        }
    }
}
