//! Generated digits as a classifier reads them (`crate::model::classifier`): what share it
//! reads with confidence, and how those digits spread over the ten classes.
//!
//! A generator that draws crisp digits of only a few kinds (mode collapse) scores a high
//! confident share but few classes present and a low entropy; one that covers every class with
//! smudges scores a low confident share. The class distribution counts only confident digits,
//! because a blob the classifier cannot read does not cover a mode just because its argmax
//! lands somewhere. Entropy is in bits: log2(10) = 3.32 for a uniform spread, 0 for one class.

use std::fmt;

/// Probability at or above which a prediction counts as confident.
pub const CONFIDENT: f32 = 0.9;

/// The classifier's view of a set of images.
#[derive(Clone, Debug, PartialEq)]
pub struct DigitReport {
    /// Images scored.
    pub count: usize,
    /// Images whose largest class probability is at least the threshold.
    pub confident: usize,
    pub threshold: f32,
    /// Confident images per predicted class.
    pub histogram: Vec<usize>,
    /// Classes with at least one confident image.
    pub classes_present: usize,
    /// Entropy of `histogram` as a distribution, in bits (0 when nothing is confident).
    pub entropy_bits: f64,
    /// Unconfident images whose two likeliest classes together reach the threshold: drawn
    /// between two digits (a 7 half turned into a 9) rather than as no digit at all.
    pub between_two: usize,
    /// Unconfident images per pair of likeliest classes (smaller class first), most frequent first.
    pub unsure_pairs: Vec<((usize, usize), usize)>,
}

impl DigitReport {
    pub fn confident_share(&self) -> f64 {
        self.confident as f64 / self.count.max(1) as f64
    }

    /// What the unconfident images are, in words: how many sit between two digits, and the
    /// `pairs` most frequent pairs of classes they hesitate between.
    pub fn doubts(&self, pairs: usize) -> String {
        let unsure = self.count - self.confident;
        if unsure == 0 {
            return "none unconfident".into();
        }
        let top: Vec<String> = self.unsure_pairs.iter().take(pairs).map(|((a, b), n)| format!("{a}/{b} {n}")).collect();
        format!(
            "{unsure} unconfident, {} of them between two classes (their two likeliest sum to p >= {}); most often {}",
            self.between_two,
            self.threshold,
            top.join(", ")
        )
    }

    /// The largest entropy `histogram` could have: log2 of the number of classes.
    pub fn max_entropy_bits(&self) -> f64 {
        (self.histogram.len() as f64).log2()
    }
}

/// Scores `probs` [count, classes] (rows of class probabilities, e.g. a softmax).
pub fn digit_report(probs: &[f32], classes: usize, threshold: f32) -> Result<DigitReport, String> {
    if classes == 0 || !probs.len().is_multiple_of(classes) {
        return Err(format!("{} probabilities are not rows of {classes} classes", probs.len()));
    }
    if let Some(i) = probs.iter().position(|p| !p.is_finite()) {
        return Err(format!("probability {i} is {}", probs[i]));
    }
    let mut histogram = vec![0; classes];
    let (mut confident, mut between_two) = (0, 0);
    let mut pairs = std::collections::BTreeMap::new();
    for row in probs.chunks_exact(classes) {
        let (arg, top) = row.iter().enumerate().fold((0, row[0]), |b, (i, &p)| if p > b.1 { (i, p) } else { b });
        if top >= threshold {
            confident += 1;
            histogram[arg] += 1;
            continue;
        }
        if classes < 2 {
            continue;
        }
        let (second, p2) = row
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != arg)
            .fold((usize::MAX, f32::NEG_INFINITY), |b, (i, &p)| if p > b.1 { (i, p) } else { b });
        between_two += usize::from(top + p2 >= threshold);
        *pairs.entry((arg.min(second), arg.max(second))).or_insert(0) += 1;
    }
    let mut unsure_pairs: Vec<_> = pairs.into_iter().collect();
    unsure_pairs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(DigitReport {
        count: probs.len() / classes,
        confident,
        threshold,
        classes_present: histogram.iter().filter(|&&n| n > 0).count(),
        entropy_bits: entropy_bits(&histogram),
        histogram,
        between_two,
        unsure_pairs,
    })
}

/// Shannon entropy in bits of the distribution `counts / sum(counts)`; 0 for no counts.
pub fn entropy_bits(counts: &[usize]) -> f64 {
    let total: usize = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let h: f64 = counts
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = n as f64 / total as f64;
            -p * p.log2()
        })
        .sum();
    h + 0.0 // one class gives -0.0, printed "-0.000"
}

impl fmt::Display for DigitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "confident (p >= {}) {:.1}% of {}; classes present {}/{}; entropy {:.3} bits (max {:.3}); per class",
            self.threshold,
            100.0 * self.confident_share(),
            self.count,
            self.classes_present,
            self.histogram.len(),
            self.entropy_bits,
            self.max_entropy_bits()
        )?;
        for (c, n) in self.histogram.iter().enumerate() {
            write!(f, " {c}:{n}")?;
        }
        Ok(())
    }
}
