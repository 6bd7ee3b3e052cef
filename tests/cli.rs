//! The command line as a user runs it, on the shipped MNIST generator: `sample`, `score` and
//! `export` read the page's F16 weights file and a training checkpoint holding the same weights,
//! and draw the same images from both; `sample`'s grid matches the CPU reference's images.
//! No GPU: these commands draw on the fast CPU path.

#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use std::process::Command;
use webgan::fast::FastGan;
use webgan::model::classifier::{ClassifierWeights, CLASSES};
use webgan::model::generate::{generate_cpu, grid_rgba};
use webgan::model::latent::normal_z;
use webgan::model::weights::GeneratorWeights;
use webgan::model::ModelConfig;
use webgan::reference::softmax;
use webgan::rng::Rng;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn shipped(name: &str) -> PathBuf {
    Path::new(ROOT).join("www").join(name)
}

/// Runs webgan-cli with `args`; panics with its output unless it succeeds. Returns stdout.
fn cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_webgan-cli")).args(args).output().expect("webgan-cli runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "webgan-cli {args:?} failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(ROOT).join("target/test-scratch/cli").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The shipped generator, and a training checkpoint with the same G (fresh D and Adam state; no
/// moving average, so that its G is the one drawn from).
fn generator_and_checkpoint(dir: &Path) -> (GeneratorWeights, PathBuf, PathBuf) {
    let file = shipped("weights/mnist-dcgan.safetensors");
    let weights = GeneratorWeights::from_bytes(&std::fs::read(&file).unwrap()).unwrap();
    let cfg = ModelConfig { ema: 0.0, ..weights.config.clone() };
    let mut gan = FastGan::new(&cfg);
    gan.g_params = weights.params.clone();
    gan.g_running = weights.running.clone();
    gan.step = weights.step;
    let checkpoint = dir.join("checkpoint.safetensors");
    std::fs::write(&checkpoint, gan.save(&cfg, Vec::new())).unwrap();
    (weights, file, checkpoint)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn png_rgb(p: &Path) -> (u32, u32, Vec<u8>) {
    let img = image::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).to_rgb8();
    (img.width(), img.height(), img.into_raw())
}

#[test]
fn sample_draws_the_same_grid_from_a_weights_file_and_a_checkpoint_and_the_reference_agrees() {
    let dir = scratch("sample");
    let (weights, file, checkpoint) = generator_and_checkpoint(&dir);
    let seed = 7u64;
    for (name, input) in [("file", &file), ("checkpoint", &checkpoint)] {
        let (grid, strip) = (dir.join(format!("{name}.png")), dir.join(format!("{name}-strip.png")));
        let out =
            cli(&["sample", "--checkpoint", path(input), "--out", path(&grid), "--strip", path(&strip), "--seed", "7"]);
        assert!(out.contains(&format!("step {}", weights.step)), "{out}");
    }
    let (file_grid, ckpt_grid) = (png_rgb(&dir.join("file.png")), png_rgb(&dir.join("checkpoint.png")));
    assert!(file_grid == ckpt_grid, "the weights file and the checkpoint drew different grids");
    assert!(png_rgb(&dir.join("file-strip.png")) == png_rgb(&dir.join("checkpoint-strip.png")), "strips differ");

    // The grid is G(z) for sample's z (the first 64 normals of the seed), here drawn by the
    // CPU reference: every pixel within one grey level (rounding) of it.
    let cfg = &weights.config;
    let z = normal_z(&mut Rng::new(seed), 64, cfg.z_dim);
    let (w, h, rgba) = grid_rgba(&generate_cpu(&weights, &z), cfg.channels, cfg.image_size, 8, 2);
    let (gw, gh, rgb) = file_grid;
    assert_eq!((gw as usize, gh as usize), (w, h), "grid size");
    let worst = rgba.chunks_exact(4).zip(rgb.chunks_exact(3)).map(|(a, b)| a[0].abs_diff(b[0])).max().unwrap();
    assert!(worst <= 1, "the grid is {worst} grey levels from the reference's G(z)");
    // And it is a picture, not a blank: digits are mostly black with white strokes.
    let white = rgb.chunks_exact(3).filter(|p| p[0] > 200).count() as f64 / (rgb.len() / 3) as f64;
    assert!((0.03..0.5).contains(&white), "{white:.3} of the grid is white");
}

/// `score`'s figures without the lines that name the input file or time a phase.
fn figures(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| !l.contains(".safetensors") && !l.starts_with("generated "))
        .map(|l| l.split("  [").next().unwrap().to_string())
        .collect()
}

#[test]
fn score_reads_a_weights_file_and_a_checkpoint_to_the_same_figures() {
    let dir = scratch("score");
    let (_, file, checkpoint) = generator_and_checkpoint(&dir);
    let data = shipped("data/mnist/t10k-images-idx3-ubyte.gz");
    let classifier = shipped("weights/mnist-classifier.safetensors");
    let score = |input: &Path| {
        cli(&[
            "score",
            "--checkpoint",
            path(input),
            "--data",
            path(&data),
            "--count",
            "300",
            "--classifier",
            path(&classifier),
        ])
    };
    let (from_file, from_checkpoint) = (score(&file), score(&checkpoint));
    println!("{from_file}");
    assert_eq!(figures(&from_file), figures(&from_checkpoint));
    // The shipped generator draws digits the shipped classifier reads (its card: 82% confident).
    let line = from_file.lines().find(|l| l.starts_with("generated digits")).expect("a digits line");
    let confident: f64 = line.split(") ").nth(1).and_then(|r| r.split('%').next()).unwrap().trim().parse().unwrap();
    assert!(confident > 50.0, "{line}");
}

#[test]
fn score_draws_the_digits_the_classifier_doubts() {
    let dir = scratch("score-unsure");
    let grid = dir.join("unsure.png");
    let classifier = shipped("weights/mnist-classifier.safetensors");
    let out = cli(&[
        "score",
        "--weights",
        path(&shipped("weights/mnist-dcgan.safetensors")),
        "--data",
        path(&shipped("data/mnist/t10k-images-idx3-ubyte.gz")),
        "--count",
        "400",
        "--classifier",
        path(&classifier),
        "--unsure-grid",
        path(&grid),
    ]);
    println!("{out}");
    // "N unconfident, M of them between two classes (...); most often a/b n, ..."
    let doubts = out.lines().map(str::trim).find(|l| l.contains(" unconfident, ")).expect("a line on the doubts");
    let number = |s: &str| -> usize { s.split_whitespace().next().unwrap().parse().unwrap() };
    let unsure = number(doubts);
    let between = number(doubts.split(", ").nth(1).unwrap());
    let pairs: usize = doubts
        .rsplit("most often ")
        .next()
        .unwrap()
        .split(", ")
        .map(|p| p.rsplit(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert!(unsure > 0 && between <= unsure && pairs <= unsure, "{doubts}");

    // The grid holds min(64, N) digits, 8 to a row, each one the classifier still doubts when
    // read back from the PNG (a few may cross p = 0.9 through the 8-bit rounding).
    let (w, h, rgb) = png_rgb(&grid);
    let (side, cell, pad) = (32usize, 34usize, 2usize);
    let shown = unsure.min(64);
    assert_eq!((w as usize, h as usize), (8 * cell + pad, shown.div_ceil(8) * cell + pad), "grid size");
    let mut pixels = Vec::new();
    for i in 0..shown {
        let (x0, y0) = (pad + (i % 8) * cell, pad + (i / 8) * cell);
        for y in 0..side {
            for x in 0..side {
                pixels.push(rgb[((y0 + y) * w as usize + x0 + x) * 3] as f32 / 127.5 - 1.0);
            }
        }
    }
    let weights = ClassifierWeights::from_bytes(&std::fs::read(&classifier).unwrap()).unwrap();
    let probs = softmax(&webgan::fast::classify(&weights, &pixels), CLASSES);
    let doubted = probs.chunks_exact(CLASSES).filter(|row| row.iter().all(|&p| p < 0.9)).count();
    assert!(doubted * 10 >= shown * 9, "only {doubted} of the {shown} digits drawn are unconfident");
}

/// `name` `side`px `value`, for every level of a `score` line.
fn levels(line: &str) -> Vec<f64> {
    let body = line.rsplit(": ").next().unwrap().split("  [").next().unwrap();
    body.split(", ").map(|part| part.rsplit(' ').next().unwrap().parse().unwrap()).collect()
}

#[test]
fn score_against_other_real_images_prints_the_floor_and_the_ratio_per_level() {
    let dir = scratch("score-floor");
    let (_, file, _) = generator_and_checkpoint(&dir);
    let (test, train) =
        (shipped("data/mnist/t10k-images-idx3-ubyte.gz"), shipped("data/mnist/train-images-idx3-ubyte.gz"));
    let out = cli(&[
        "score",
        "--weights",
        path(&file),
        "--data",
        path(&test),
        "--baseline-data",
        path(&train),
        "--count",
        "200",
    ]);
    println!("{out}");
    let line =
        |start: &str| out.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no {start:?} in {out}"));
    let (generated, floor, ratio) =
        (levels(line("generated vs real")), levels(line("real vs real")), levels(line("generated / floor")));
    assert_eq!((generated.len(), floor.len(), ratio.len()), (3, 3, 3), "32px, 16px and the mean");
    for i in 0..3 {
        assert!(floor[i] > 0.0, "two different real sets are some distance apart: {out}");
        // The printed figures are rounded to 0.01: the ratio of the rounded ones is that close.
        let expected = generated[i] / floor[i];
        assert!((ratio[i] - expected).abs() <= 0.01 + 0.01 * expected, "ratio {} vs {expected}: {out}", ratio[i]);
    }
}

#[test]
fn export_rewrites_a_weights_file_keeping_its_weights_and_card() {
    let dir = scratch("export");
    let (weights, file, checkpoint) = generator_and_checkpoint(&dir);
    let (again, from_checkpoint) = (dir.join("again.safetensors"), dir.join("from-checkpoint.safetensors"));
    cli(&["export", "--checkpoint", path(&file), "--out", path(&again), "--info", "note=re-exported"]);
    cli(&["export", "--checkpoint", path(&checkpoint), "--out", path(&from_checkpoint)]);
    let read = |p: &Path| GeneratorWeights::from_bytes(&std::fs::read(p).unwrap()).unwrap();
    let (again, from_checkpoint) = (read(&again), read(&from_checkpoint));
    // F16 values survive F16 -> F32 -> F16 exactly.
    assert!(again.params == weights.params && again.running == weights.running);
    assert!(from_checkpoint.params == weights.params && from_checkpoint.running == weights.running);
    assert_eq!(again.step, weights.step);
    assert!(again.info.contains(&("note".to_string(), "re-exported".to_string())), "{:?}", again.info);
    assert_eq!(again.info.len(), weights.info.len() + 1, "the card's own lines are kept");
}
