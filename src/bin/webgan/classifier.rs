//! `webgan-cli train-classifier`: trains the MNIST digit classifier (`webgan::model::classifier`)
//! on the GPU kernels, evaluates it on a test set after every epoch and writes its weights (F16),
//! and `webgan-cli eval-classifier`: the accuracy of a weights file on a labelled IDX set.

use std::path::{Path, PathBuf};
use std::time::Instant;
use webgan::data::idx::{load_mnist, read_idx_labels};
use webgan::data::{thousands, ImagePool};
use webgan::gpu::Gpu;
use webgan::model::classifier::{accuracy, Classifier, ClassifierWeights, SIZE};
use webgan::rng::Rng;
use webgan::shape::AdamConfig;

pub struct Options {
    pub data: PathBuf,
    pub labels: PathBuf,
    pub test_data: Option<PathBuf>,
    pub test_labels: Option<PathBuf>,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    /// The learning rate is multiplied by this after every epoch.
    pub lr_decay: f32,
    pub width: usize,
    pub seed: u64,
    pub out: PathBuf,
    /// Steps between progress lines.
    pub log_every: u32,
    /// Start from these weights (their step count carries on) instead of fresh ones.
    pub init: Option<PathBuf>,
}

/// Training images the batchnorm statistics are re-estimated on before weights are saved.
const CALIBRATION_IMAGES: usize = 10_000;
/// Batch of the calibration and evaluation passes.
const EVAL_BATCH: usize = 250;

/// MNIST images (padded to 32x32) and their labels, checked to match.
pub fn load_labelled(images: &Path, labels: &Path) -> Result<(ImagePool, Vec<u8>), String> {
    let pool = load_mnist(images, SIZE).map_err(|e| e.to_string())?;
    let bytes = std::fs::read(labels).map_err(|e| format!("{}: {e}", labels.display()))?;
    let labels_v = read_idx_labels(&bytes).map_err(|e| format!("{}: {e}", labels.display()))?;
    if labels_v.len() != pool.len() {
        return Err(format!("{} images but {} labels", pool.len(), labels_v.len()));
    }
    if let Some(l) = labels_v.iter().find(|&&l| l > 9) {
        return Err(format!("{}: label {l} is not a digit", labels.display()));
    }
    Ok((pool, labels_v))
}

fn evaluate(gpu: &Gpu, c: &Classifier, test: &(ImagePool, Vec<u8>)) -> Result<f64, String> {
    let logits = pollster::block_on(c.logits_u8(gpu, test.0.pixels())).map_err(|e| e.to_string())?;
    Ok(accuracy(&logits, &test.1))
}

pub fn train(opts: &Options, command: &str) -> Result<(), String> {
    let train = load_labelled(&opts.data, &opts.labels)?;
    let test = match (&opts.test_data, &opts.test_labels) {
        (Some(d), Some(l)) => Some(load_labelled(d, l)?),
        (None, None) => None,
        _ => return Err("--test-data and --test-labels go together".into()),
    };
    let gpu = pollster::block_on(Gpu::new()).map_err(|e| e.to_string())?;
    let device = gpu.adapter_summary();
    println!("adapter: {device}");
    let adam = AdamConfig { lr: opts.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let mut init = match &opts.init {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            ClassifierWeights::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => ClassifierWeights::init(opts.width, opts.seed),
    };
    // A run from --init continues the model card of the weights it starts from.
    let prior = std::mem::take(&mut init.info);
    let mut c = Classifier::new(&gpu, &init, opts.batch, &gpu.tuning(), &adam).map_err(|e| e.to_string())?;
    let (n, batch) = (train.0.len(), opts.batch);
    let steps_per_epoch = n / batch;
    println!(
        "training on {} images, {} per batch, {steps_per_epoch} steps per epoch, {} epochs",
        thousands(n),
        batch,
        opts.epochs
    );
    std::fs::create_dir_all(opts.out.parent().unwrap_or(Path::new("."))).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut rng = Rng::new(opts.seed ^ 0xc1a5);
    let (mut images, mut labels) = (Vec::with_capacity(batch * SIZE * SIZE), Vec::with_capacity(batch));
    for epoch in 0..opts.epochs {
        let lr = opts.lr * opts.lr_decay.powi(epoch as i32);
        c.set_lr(&gpu, lr).map_err(|e| e.to_string())?;
        let mut order: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut order);
        let (mut loss_sum, mut acc_sum, mut logged) = (0.0, 0.0, 0);
        let (mut window, mut window_steps) = (Instant::now(), 0);
        for (s, idx) in order.chunks_exact(batch).enumerate() {
            images.clear();
            labels.clear();
            for &i in idx {
                images.extend_from_slice(train.0.image(i));
                labels.push(train.1[i]);
            }
            c.train_step(&gpu, &images, &labels);
            window_steps += 1;
            // Reading every few steps both samples the metrics and keeps the queue short.
            if (s + 1) % 10 == 0 {
                let [loss, acc] = pollster::block_on(c.read_metrics(&gpu)).map_err(|e| e.to_string())?;
                if !loss.is_finite() {
                    return Err(format!("loss is {loss} at step {}", c.step));
                }
                (loss_sum, acc_sum, logged) = (loss_sum + loss, acc_sum + acc, logged + 1);
            }
            if (s + 1) % opts.log_every as usize == 0 || s + 1 == steps_per_epoch {
                let rate = (window_steps * batch) as f64 / window.elapsed().as_secs_f64();
                println!(
                    "epoch {} step {}/{steps_per_epoch} lr {lr:.1e}: loss {:.4} train acc {:.4} ({:.0} img/s, {:.0} s)",
                    epoch + 1,
                    s + 1,
                    loss_sum / logged.max(1) as f32,
                    acc_sum / logged.max(1) as f32,
                    rate,
                    started.elapsed().as_secs_f64()
                );
                (loss_sum, acc_sum, logged, window, window_steps) = (0.0, 0.0, 0, Instant::now(), 0);
            }
        }
        finish(
            &gpu,
            &c,
            &train,
            test.as_ref(),
            epoch + 1,
            &Info { command, device: &device, started, opts, prior: &prior },
        )?;
    }
    if opts.epochs == 0 {
        finish(&gpu, &c, &train, test.as_ref(), 0, &Info { command, device: &device, started, opts, prior: &prior })?;
    }
    Ok(())
}

/// What the model card records.
struct Info<'a> {
    command: &'a str,
    device: &'a str,
    started: Instant,
    opts: &'a Options,
    /// The model card of the weights the run started from.
    prior: &'a [(String, String)],
}

impl Info<'_> {
    fn prior(&self, key: &str) -> Option<&str> {
        self.prior.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// The end of an epoch: the current weights with batchnorm statistics re-estimated on a seeded
/// sample of the training images (see `Classifier::calibrate_batchnorm`), evaluated on the test
/// set when there is one, and written with their model card.
fn finish(
    gpu: &Gpu,
    c: &Classifier,
    train: &(ImagePool, Vec<u8>),
    test: Option<&(ImagePool, Vec<u8>)>,
    epoch: usize,
    info: &Info<'_>,
) -> Result<(), String> {
    let mut weights = pollster::block_on(c.weights(gpu)).map_err(|e| e.to_string())?;
    let eval =
        Classifier::new(gpu, &weights, EVAL_BATCH, &gpu.tuning(), &AdamConfig::default()).map_err(|e| e.to_string())?;
    let mut order: Vec<usize> = (0..train.0.len()).collect();
    Rng::new(info.opts.seed ^ 0xca1b ^ epoch as u64).shuffle(&mut order);
    let sample: Vec<u8> =
        order[..CALIBRATION_IMAGES.min(order.len())].iter().flat_map(|&i| train.0.image(i)).copied().collect();
    eval.calibrate_batchnorm(gpu, &sample);
    weights.running = pollster::block_on(eval.net.running.read(gpu)).map_err(|e| e.to_string())?;
    let number = |key: &str| info.prior(key).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let command = match info.prior("command") {
        Some(before) => format!("{before}, then {}", info.command),
        None => info.command.to_string(),
    };
    weights.info = vec![
        ("command".into(), command),
        ("data".into(), format!("MNIST training set, {} images", train.0.len())),
        ("device".into(), info.device.to_string()),
        ("epochs".into(), (number("epochs") as usize + epoch).to_string()),
        ("wall_time_s".into(), format!("{:.0}", number("wall_time_s") + info.started.elapsed().as_secs_f64())),
        ("batchnorm".into(), format!("running statistics re-estimated on {CALIBRATION_IMAGES} training images")),
    ];
    if let Some(test) = test {
        let acc = evaluate(gpu, &eval, test)?;
        let total = number("epochs") as usize + epoch;
        println!("after {total} epochs: test accuracy {acc:.4} ({} images)", thousands(test.1.len()));
        weights.info.push(("test_accuracy".into(), format!("{acc:.4}")));
    }
    let out = &info.opts.out;
    std::fs::write(out, weights.to_bytes()).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("wrote {} (step {})", out.display(), weights.step);
    Ok(())
}

pub fn eval(weights: &Path, data: &Path, labels: &Path, batch: usize) -> Result<(), String> {
    let bytes = std::fs::read(weights).map_err(|e| format!("{}: {e}", weights.display()))?;
    let w = ClassifierWeights::from_bytes(&bytes).map_err(|e| format!("{}: {e}", weights.display()))?;
    let test = load_labelled(data, labels)?;
    let gpu = pollster::block_on(Gpu::new()).map_err(|e| e.to_string())?;
    let c = Classifier::new(&gpu, &w, batch, &gpu.tuning(), &AdamConfig::default()).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let acc = evaluate(&gpu, &c, &test)?;
    println!(
        "{}: accuracy {acc:.4} on {} images ({:.1} s)",
        weights.display(),
        thousands(test.1.len()),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
