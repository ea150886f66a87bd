//! The need classifier's model: one hidden layer of rectified units over
//! the features, then a logistic output, fitted by full-batch Adam on the
//! class-balanced, L2-regularised log-loss (both classes weigh the same
//! whatever their counts, so the threshold, not the class mix, sets the
//! trade-off).
//!
//! Why a hidden layer: an utterance read inside its window is coloured by
//! the speech before it, and a linear model over the utterance and that
//! speech side by side cannot take the colour back out (held-out needless
//! utterances caught 0.89 against 0.94 with 64 hidden units at about the same
//! recall; BENCHMARKS.md, "One model run per utterance"). Written here, as
//! about a hundred lines, rather than taken from a training framework
//! (`candle`, `burn`): those bring tensors, devices and autograd for one
//! small matrix product per utterance.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// One hidden unit: `max(0, weights · x + bias)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub weights: Vec<f32>,
    pub bias: f32,
}

/// A fitted network.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub hidden: Vec<Unit>,
    /// Output weights over the hidden units' values.
    pub weights: Vec<f32>,
    pub bias: f32,
}

/// How to fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Training {
    pub units: usize,
    pub epochs: usize,
    pub l2: f32,
    pub learning_rate: f32,
    /// Seeds the initial weights: the same data fits the same network.
    pub seed: u64,
}

/// The output's logit for features `x`.
pub fn logit(hidden: &[Unit], weights: &[f32], bias: f32, x: &[f32]) -> f32 {
    if hidden.is_empty() {
        return dot(weights, x) + bias;
    }
    hidden.iter().zip(weights).map(|(u, w)| w * (dot(&u.weights, x) + u.bias).max(0.0)).sum::<f32>() + bias
}

/// Dot product with eight running sums, so the compiler can keep them in
/// vector registers (a single running sum must be added in order).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The logistic function, logit to probability.
pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// Fits a network to labelled features (all of one length).
pub fn fit(examples: &[(Vec<f32>, bool)], t: Training) -> Fitted {
    let dim = examples.first().map_or(0, |(v, _)| v.len());
    let units = t.units.max(1);
    let positives = examples.iter().filter(|(_, y)| *y).count().max(1) as f32;
    let negatives = examples.iter().filter(|(_, y)| !*y).count().max(1) as f32;
    let (wp, wn) = (0.5 / positives, 0.5 / negatives);
    // Parameters, flat: hidden weights (units × dim), hidden biases, output
    // weights, output bias.
    let (hw, hb, ow) = (0, units * dim, units * dim + units);
    let ob = ow + units;
    let n = ob + 1;
    let mut rng = StdRng::seed_from_u64(t.seed);
    let mut p = vec![0f32; n];
    // Uniform with variance 1/fan-in keeps the first layer's outputs near
    // unit scale for unit-length inputs.
    let (a1, a2) = ((3.0 / dim.max(1) as f32).sqrt(), (3.0 / units as f32).sqrt());
    p[hw..hb].iter_mut().for_each(|w| *w = rng.random_range(-a1..a1));
    p[ow..ob].iter_mut().for_each(|w| *w = rng.random_range(-a2..a2));
    let (mut m, mut s) = (vec![0f32; n], vec![0f32; n]);
    let (b1, b2) = (0.9f32, 0.999f32);
    let threads = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, 8);
    let per = examples.len().div_ceil(threads).max(1);
    for epoch in 1..=t.epochs {
        let params = &p;
        let grads: Vec<Vec<f32>> = std::thread::scope(|scope| {
            let handles: Vec<_> = examples
                .chunks(per)
                .map(|chunk| {
                    scope.spawn(move || {
                        let mut g = vec![0f32; n];
                        let mut act = vec![0f32; units];
                        for (x, y) in chunk {
                            for (j, a) in act.iter_mut().enumerate() {
                                *a = dot(&params[hw + j * dim..hw + (j + 1) * dim], x) + params[hb + j];
                            }
                            let z = act.iter().zip(&params[ow..ob]).map(|(a, w)| a.max(0.0) * w).sum::<f32>()
                                + params[ob];
                            let (target, weight) = if *y { (1.0, wp) } else { (0.0, wn) };
                            let e = (sigmoid(z) - target) * weight;
                            g[ob] += e;
                            for (j, &a) in act.iter().enumerate() {
                                if a <= 0.0 {
                                    continue;
                                }
                                g[ow + j] += e * a;
                                let d = e * params[ow + j];
                                g[hb + j] += d;
                                for (gi, xi) in g[hw + j * dim..hw + (j + 1) * dim].iter_mut().zip(x) {
                                    *gi += d * xi;
                                }
                            }
                        }
                        g
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut g = vec![0f32; n];
        for part in grads {
            g.iter_mut().zip(part).for_each(|(a, b)| *a += b);
        }
        // Weights are regularised, biases not.
        for i in (hw..hb).chain(ow..ob) {
            g[i] += t.l2 * p[i];
        }
        let (c1, c2) = (1.0 - b1.powi(epoch as i32), 1.0 - b2.powi(epoch as i32));
        for i in 0..n {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            s[i] = b2 * s[i] + (1.0 - b2) * g[i] * g[i];
            p[i] -= t.learning_rate * (m[i] / c1) / ((s[i] / c2).sqrt() + 1e-8);
        }
    }
    let hidden = (0..units)
        .map(|j| Unit { weights: p[hw + j * dim..hw + (j + 1) * dim].to_vec(), bias: p[hb + j] })
        .collect();
    Fitted { hidden, weights: p[ow..ob].to_vec(), bias: p[ob] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dot_product_matches_the_plain_sum() {
        let a: Vec<f32> = (0..21).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..21).map(|i| 1.0 - i as f32 * 0.1).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
    }

    #[test]
    fn a_hidden_layer_learns_what_no_line_separates() {
        // Exclusive or: a need when exactly one of two signals is on.
        let examples: Vec<(Vec<f32>, bool)> = (0..400)
            .map(|i| {
                let (a, b) = (i % 2, (i / 2) % 2);
                let jitter = (i % 7) as f32 * 0.02;
                (vec![a as f32 + jitter, b as f32 - jitter], a != b)
            })
            .collect();
        let t = Training { units: 8, epochs: 600, l2: 0.0, learning_rate: 0.05, seed: 1 };
        let f = fit(&examples, t);
        assert_eq!(f, fit(&examples, t), "the same seed fits the same network");
        let right = examples
            .iter()
            .filter(|(x, y)| (sigmoid(logit(&f.hidden, &f.weights, f.bias, x)) >= 0.5) == *y)
            .count();
        assert!(right >= 396, "{right} of 400 right");
    }
}
