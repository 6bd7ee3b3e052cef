//! Binary cross-entropy on logits, the GAN loss.

use num_traits::Float;

use super::activation::sigmoid;
use super::count;

/// Result of `bce_with_logits`.
pub struct BceOut<F> {
    /// Mean BCE over the batch.
    pub loss: F,
    /// mean(sigmoid(logit)): D(x) or D(G(z)) for the GAN metrics.
    pub mean_prob: F,
    /// d loss / d logit.
    pub dlogits: Vec<F>,
}

/// BCE with logits, averaged over the batch, one target t (0 or 1) for the whole batch.
/// -[t ln p + (1-t) ln(1-p)] with p = sigmoid(x) is computed in the stable form
///   max(x, 0) - x*t + ln(1 + exp(-|x|)),
/// which never takes the log of a rounded-to-zero probability and never overflows exp.
/// Its gradient is simply (sigmoid(x) - t) / N.
///
/// logits [batch] -> loss, mean_prob, dlogits [batch]
pub fn bce_with_logits<F: Float>(logits: &[F], target: F) -> BceOut<F> {
    let nf = count::<F>(logits.len());
    let (mut loss, mut prob) = (F::zero(), F::zero());
    let mut dlogits = Vec::with_capacity(logits.len());
    for &x in logits {
        let p = sigmoid(x);
        loss = loss + x.max(F::zero()) - x * target + (-x.abs()).exp().ln_1p();
        prob = prob + p;
        dlogits.push((p - target) / nf);
    }
    BceOut { loss: loss / nf, mean_prob: prob / nf, dlogits }
}
