//! How long each volume waited between its CreateVolume and its object's Ready=True: the
//! volume's CreateTime (from AWS) against the Ready condition's lastTransitionTime.

use serde::{Deserialize, Serialize};

/// Nearest-rank percentiles of a set of durations, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// How many durations they summarise.
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub max: f64,
}

impl Percentiles {
    /// The same durations each shortened by `seconds` (order, and so ranks, unchanged).
    pub fn less(self, seconds: f64) -> Self {
        Self {
            count: self.count,
            p50: self.p50 - seconds,
            p90: self.p90 - seconds,
            max: self.max - seconds,
        }
    }
}

/// The percentiles of `values` (`None` when empty).
pub fn percentiles(values: &[f64]) -> Option<Percentiles> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let max = *sorted.last()?;
    let rank = |p: f64| -> f64 {
        // Nearest rank: the smallest value with at least p of the values at or below it.
        let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[index]
    };
    Some(Percentiles {
        count: sorted.len(),
        p50: rank(0.5),
        p90: rank(0.9),
        max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        assert_eq!(
            percentiles(&values),
            Some(Percentiles {
                count: 10,
                p50: 5.0,
                p90: 9.0,
                max: 10.0
            })
        );
        assert_eq!(
            percentiles(&[2.5]),
            Some(Percentiles {
                count: 1,
                p50: 2.5,
                p90: 2.5,
                max: 2.5
            })
        );
        assert_eq!(percentiles(&[]), None);
    }

    #[test]
    fn shortening_every_duration_shortens_each_percentile_alike() {
        let values = [3.0, 1.5, 8.0, 4.25];
        let shifted: Vec<f64> = values.iter().map(|v| v - 1.0).collect();
        assert_eq!(
            percentiles(&values).map(|p| p.less(1.0)),
            percentiles(&shifted)
        );
    }
}
