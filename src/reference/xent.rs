//! Softmax cross-entropy with integer labels, the digit classifier's loss.

use num_traits::Float;

use super::count;

/// Result of `softmax_cross_entropy`.
pub struct XentOut<F> {
    /// Mean cross-entropy over the batch.
    pub loss: F,
    /// Share of samples whose largest logit (the first, on ties) is their label's.
    pub accuracy: F,
    /// d loss / d logits, [batch, classes].
    pub dlogits: Vec<F>,
}

/// The softmax of each row of `logits` [batch, classes], shifted by the row's maximum so that
/// no exp overflows.
pub fn softmax<F: Float>(logits: &[F], classes: usize) -> Vec<F> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks_exact(classes) {
        let top = row.iter().fold(F::neg_infinity(), |a, &b| a.max(b));
        let total = row.iter().fold(F::zero(), |a, &x| a + (x - top).exp());
        out.extend(row.iter().map(|&x| (x - top).exp() / total));
    }
    out
}

/// Cross-entropy of softmax(logits) against integer labels, averaged over the batch:
///   loss_n = logsumexp(x_n) - x_n[label_n],  computed as ln(sum exp(x - max)) - (x_label - max),
/// with gradient (softmax(x_n) - onehot(label_n)) / N.
///
/// logits [batch, classes], labels [batch] (each < classes) -> loss, accuracy, dlogits
pub fn softmax_cross_entropy<F: Float>(logits: &[F], labels: &[u8], classes: usize) -> XentOut<F> {
    assert_eq!(logits.len(), labels.len() * classes, "one row of {classes} logits per label");
    let nf = count::<F>(labels.len());
    let (mut loss, mut correct) = (F::zero(), 0usize);
    let mut dlogits = Vec::with_capacity(logits.len());
    for (row, &label) in logits.chunks_exact(classes).zip(labels) {
        let label = usize::from(label);
        assert!(label < classes, "label {label} out of {classes} classes");
        let (mut arg, mut top) = (0, row[0]);
        for (c, &x) in row.iter().enumerate().skip(1) {
            if x > top {
                (arg, top) = (c, x);
            }
        }
        let total = row.iter().fold(F::zero(), |a, &x| a + (x - top).exp());
        loss = loss + total.ln() - (row[label] - top);
        correct += usize::from(arg == label);
        for (c, &x) in row.iter().enumerate() {
            let onehot = if c == label { F::one() } else { F::zero() };
            dlogits.push(((x - top).exp() / total - onehot) / nf);
        }
    }
    XentOut { loss: loss / nf, accuracy: count::<F>(correct) / nf, dlogits }
}
