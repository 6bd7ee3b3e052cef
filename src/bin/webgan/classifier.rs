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
}

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
    let init = ClassifierWeights::init(opts.width, opts.seed);
    let mut c = Classifier::new(&gpu, &init, opts.batch, &gpu.tiles, &adam).map_err(|e| e.to_string())?;
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
    let mut test_accuracy = None;
    for epoch in 0..opts.epochs {
        let lr = opts.lr * opts.lr_decay.powi(epoch as i32);
        c.set_lr(&gpu, lr).map_err(|e| e.to_string())?;
        let mut order: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut order);
        let (mut loss_sum, mut acc_sum, mut logged) = (0.0, 0.0, 0);
        let mut window = Instant::now();
        for (s, idx) in order.chunks_exact(batch).enumerate() {
            images.clear();
            labels.clear();
            for &i in idx {
                images.extend_from_slice(train.0.image(i));
                labels.push(train.1[i]);
            }
            c.train_step(&gpu, &images, &labels);
            // Reading every few steps both samples the metrics and keeps the queue short.
            if (s + 1) % 10 == 0 {
                let [loss, acc] = pollster::block_on(c.read_metrics(&gpu)).map_err(|e| e.to_string())?;
                if !loss.is_finite() {
                    return Err(format!("loss is {loss} at step {}", c.step));
                }
                (loss_sum, acc_sum, logged) = (loss_sum + loss, acc_sum + acc, logged + 1);
            }
            if (s + 1) % opts.log_every as usize == 0 || s + 1 == steps_per_epoch {
                let rate = (opts.log_every as usize * batch) as f64 / window.elapsed().as_secs_f64();
                println!(
                    "epoch {} step {}/{steps_per_epoch} lr {lr:.1e}: loss {:.4} train acc {:.4} ({:.0} img/s, {:.0} s)",
                    epoch + 1,
                    s + 1,
                    loss_sum / logged.max(1) as f32,
                    acc_sum / logged.max(1) as f32,
                    rate,
                    started.elapsed().as_secs_f64()
                );
                (loss_sum, acc_sum, logged, window) = (0.0, 0.0, 0, Instant::now());
            }
        }
        if let Some(test) = &test {
            let acc = evaluate(&gpu, &c, test)?;
            println!("epoch {}: test accuracy {:.4} ({} images)", epoch + 1, acc, thousands(test.1.len()));
            test_accuracy = Some(acc);
        }
        let mut weights = pollster::block_on(c.weights(&gpu)).map_err(|e| e.to_string())?;
        weights.info = vec![
            ("command".into(), command.to_string()),
            ("data".into(), format!("MNIST training set, {} images", n)),
            ("device".into(), device.clone()),
            ("epochs".into(), format!("{}", epoch + 1)),
            ("wall_time_s".into(), format!("{:.0}", started.elapsed().as_secs_f64())),
        ];
        if let Some(acc) = test_accuracy {
            weights.info.push(("test_accuracy".into(), format!("{acc:.4}")));
        }
        std::fs::write(&opts.out, weights.to_bytes()).map_err(|e| format!("{}: {e}", opts.out.display()))?;
        println!("wrote {} (step {})", opts.out.display(), weights.step);
    }
    Ok(())
}

pub fn eval(weights: &Path, data: &Path, labels: &Path, batch: usize) -> Result<(), String> {
    let bytes = std::fs::read(weights).map_err(|e| format!("{}: {e}", weights.display()))?;
    let w = ClassifierWeights::from_bytes(&bytes).map_err(|e| format!("{}: {e}", weights.display()))?;
    let test = load_labelled(data, labels)?;
    let gpu = pollster::block_on(Gpu::new()).map_err(|e| e.to_string())?;
    let c = Classifier::new(&gpu, &w, batch, &gpu.tiles, &AdamConfig::default()).map_err(|e| e.to_string())?;
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
