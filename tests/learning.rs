//! A short native run that demonstrably learns. The data, made here: 16x16 grey images, each a
//! bright axis-aligned square (side 4 to 8, anywhere) on a dark background. The criterion, on 64
//! samples from fixed z (batchnorm in inference mode): a sample "draws a square" when its bright pixels (value > 0) number
//! 9 to 100 (data: 16 to 64) and fill at least 60% of their bounding box (a square fills 100%;
//! scattered noise fills far less). Before training no sample does; after 700-1000 steps (about
//! 70 s on lavapipe) many do. A GAN's samples swing from checkpoint to checkpoint (here between
//! about 30% and 60% squares from step 500 on), so the bar is on the best of the last four
//! checkpoints, as one would pick a GAN's checkpoint, not on whichever step comes last.
//! Also checked: D(x) and D(G(z)) stay finite and strictly between 0 and 1 (no collapsed D).
#![cfg(not(target_arch = "wasm32"))]

use webgan::data::{ImagePool, Sampler};
use webgan::gpu::Gpu;
use webgan::model::{KernelForm, Kind, ModelConfig};
use webgan::rng::Rng;
use webgan::shape::AdamConfig;
use webgan::train::{MetricsRing, Trainer};

const SIZE: usize = 16;

fn squares(count: usize, rng: &mut Rng) -> ImagePool {
    let mut pool = ImagePool::new(SIZE, 1);
    for _ in 0..count {
        let side = 4 + rng.below(5);
        let (x0, y0) = (rng.below(SIZE - side + 1), rng.below(SIZE - side + 1));
        let img: Vec<u8> = (0..SIZE * SIZE)
            .map(|i| {
                let (x, y) = (i % SIZE, i / SIZE);
                if (x0..x0 + side).contains(&x) && (y0..y0 + side).contains(&y) {
                    255
                } else {
                    0
                }
            })
            .collect();
        pool.push(&img);
    }
    pool
}

/// Share of samples whose bright pixels form one compact, square-sized blob.
fn square_share(images: &[f32]) -> f64 {
    let drawn = images
        .chunks(SIZE * SIZE)
        .filter(|img| {
            let bright: Vec<(usize, usize)> =
                (0..SIZE * SIZE).filter(|&i| img[i] > 0.0).map(|i| (i % SIZE, i / SIZE)).collect();
            if !(9..=100).contains(&bright.len()) {
                return false;
            }
            let (x0, x1) = (bright.iter().map(|p| p.0).min().unwrap(), bright.iter().map(|p| p.0).max().unwrap());
            let (y0, y1) = (bright.iter().map(|p| p.1).min().unwrap(), bright.iter().map(|p| p.1).max().unwrap());
            bright.len() as f64 >= 0.6 * ((x1 - x0 + 1) * (y1 - y0 + 1)) as f64
        })
        .count();
    drawn as f64 / (images.len() / (SIZE * SIZE)) as f64
}

#[test]
fn dcgan_learns_to_draw_squares() {
    let gpu = pollster::block_on(Gpu::new()).expect("a GPU adapter (lavapipe in CI)");
    let cfg = ModelConfig {
        kind: Kind::Dcgan,
        image_size: SIZE,
        channels: 1,
        z_dim: 32,
        kernel: KernelForm::K4S2P1,
        ngf: 16,
        ndf: 16,
        batch: 64,
        // 2.5x DCGAN's 2e-4: at 2e-4 D dominates for the first ~1000 steps (measured) before G
        // catches up; 5e-4 learns the same squares in 800 steps.
        adam: AdamConfig { lr: 5e-4, ..AdamConfig::default() },
        seed: 3,
        ..ModelConfig::mnist()
    };
    let mut rng = Rng::new(11);
    let pool = squares(4096, &mut rng);
    let mut sampler = Sampler::new(pool.len(), 5);
    let mut trainer = Trainer::new(&gpu, &cfg, &gpu.tuning()).unwrap();
    let z_fixed: Vec<f32> = (0..cfg.batch * cfg.z_dim).map(|_| rng.normal()).collect();
    let before = square_share(&pollster::block_on(trainer.sample(&gpu, &z_fixed)).unwrap());

    let (mut real, mut ring, t0) = (Vec::new(), MetricsRing::new(&gpu, 4), std::time::Instant::now());
    let steps = 1000;
    let mut last = [0f32; 6];
    let mut late = Vec::new();
    for _ in 0..steps {
        sampler.next_batch(&pool, cfg.batch, &mut real);
        let z: Vec<f32> = (0..cfg.batch * cfg.z_dim).map(|_| rng.normal()).collect();
        let index = trainer.step(&gpu, &real, &z);
        let _ = gpu.device.poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: None });
        if trainer.step.is_multiple_of(100) {
            ring.record(&gpu, &trainer);
            if trainer.step + 300 >= steps {
                late.push(square_share(&pollster::block_on(trainer.sample(&gpu, &z_fixed)).unwrap()));
            }
        }
        for (step, m) in ring.collect(&gpu).unwrap() {
            println!("step {step}: D loss {:.3} G loss {:.3} D(x) {:.3} D(G(z)) {:.3}", m[0] + m[2], m[4], m[1], m[3]);
            assert!(m.iter().all(|v| v.is_finite()), "non-finite metrics at step {step}: {m:?}");
            last = m;
        }
    }
    let shares: Vec<String> = late.iter().map(|s| format!("{:.0}%", s * 100.0)).collect();
    println!(
        "{steps} steps in {:.1} s; samples drawing a square: {:.0}% before, at steps {}..={steps}: {}",
        t0.elapsed().as_secs_f64(),
        before * 100.0,
        steps - 300,
        shares.join(", ")
    );
    assert!(before <= 0.1, "an untrained G should not draw squares ({before})");
    // Measured here: 42%, 34%, 45%, 62% (lavapipe, Mesa 25). The bar leaves room for another
    // driver's rounding to send the (chaotic) GAN dynamics elsewhere, while 0% before training
    // stays far below it.
    let best = late.iter().cloned().fold(0.0, f64::max);
    assert!(best >= 0.4, "after {steps} steps at most {:.0}% of samples draw a square", best * 100.0);
    assert!(
        last[1] > 0.0 && last[1] < 1.0 && last[3] > 0.0 && last[3] < 1.0,
        "D(x), D(G(z)) = {}, {}",
        last[1],
        last[3]
    );
}
