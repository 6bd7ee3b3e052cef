//! The latent space: drawing z and walking between two draws.

use crate::rng::Rng;

/// `count` latent vectors of `dim` standard normals.
pub fn normal_z(rng: &mut Rng, count: usize, dim: usize) -> Vec<f32> {
    (0..count * dim).map(|_| rng.normal()).collect()
}

/// Spherical interpolation from `a` (t = 0) to `b` (t = 1). A straight line between two
/// Gaussian draws passes near the origin, where z is atypically short and G draws washed-out
/// images; the great circle keeps |z| typical all the way.
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let omega = (dot / (norm(a) * norm(b)).max(1e-12)).clamp(-1.0, 1.0).acos();
    let t = t as f64;
    let (wa, wb) = if omega.sin().abs() < 1e-6 {
        (1.0 - t, t) // (anti)parallel: nothing to bend around
    } else {
        (((1.0 - t) * omega).sin() / omega.sin(), (t * omega).sin() / omega.sin())
    };
    a.iter().zip(b).map(|(x, y)| (wa * *x as f64 + wb * *y as f64) as f32).collect()
}

/// `z` in runs of `batch` vectors of `dim`, each with how many of its vectors are `z`'s own. A
/// short last run is filled up with its own vectors again, not zeros: drawn with batch
/// statistics, zeros would skew them.
pub fn batches(z: &[f32], dim: usize, batch: usize) -> impl Iterator<Item = (Vec<f32>, usize)> + '_ {
    z.chunks(batch * dim).map(move |chunk| {
        let run: Vec<f32> = chunk.iter().copied().cycle().take(batch * dim).collect();
        (run, chunk.len() / dim)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_fill_a_short_run_with_its_own_vectors() {
        let z: Vec<f32> = (0..5 * 2).map(|i| i as f32).collect(); // 5 vectors of 2
        let runs: Vec<_> = batches(&z, 2, 3).collect();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0], (z[..6].to_vec(), 3));
        assert_eq!(runs[1], (vec![6.0, 7.0, 8.0, 9.0, 6.0, 7.0], 2));
    }

    #[test]
    fn slerp_hits_its_ends_and_keeps_the_norm() {
        let mut rng = Rng::new(1);
        let (a, b) = (normal_z(&mut rng, 1, 100), normal_z(&mut rng, 1, 100));
        let close = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-5);
        assert!(close(&slerp(&a, &b, 0.0), &a) && close(&slerp(&a, &b, 1.0), &b));
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let (na, nb, nm) = (norm(&a), norm(&b), norm(&slerp(&a, &b, 0.5)));
        // Halfway along the great circle the length stays between the ends' (a line would dip ~30%).
        assert!(nm > 0.95 * na.min(nb) && nm < 1.05 * na.max(nb), "{na} {nb} {nm}");
    }
}
