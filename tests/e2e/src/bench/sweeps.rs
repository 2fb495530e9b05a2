//! Telling resyncs apart in an idle controller. Where a kind reads its resources in sweeps,
//! each resync is one sweep, a burst of one Describe action's pages (DescribeVolumes,
//! DescribeImages), and between two sweeps nothing is read: counting bursts in the
//! emulator's counter lets the benchmark report calls per resync whatever the controller's
//! jitter (each sweep's interval is drawn within 10% of the resync interval). Where a kind
//! reads nothing at rest (a completed migration), a resync is one pass of every object,
//! counted in the controller's reconciles; and where it sweeps, a burst is only taken for a
//! resync once every object has passed again, since one resync's reads need not come in one
//! burst (an AMI resync's sweep and its per-account launch-permission read are each due on
//! their own clock).

/// One reading of a counter: milliseconds since the window began, and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub at_ms: u64,
    pub value: u64,
}

/// Bursts found in a series of readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bursts {
    /// Bursts that began after the first reading.
    pub started: usize,
    /// Of those, the ones followed by `gap` without an increase (as of the last reading).
    pub completed: usize,
}

/// Bursts of increases in `readings` (oldest first): increases less than `gap_ms` apart
/// belong to one burst.
pub fn bursts(readings: &[Reading], gap_ms: u64) -> Bursts {
    let Some(first) = readings.first() else {
        return Bursts::default();
    };
    let mut value = first.value;
    let mut last_increase: Option<u64> = None;
    let mut started = 0;
    for r in &readings[1..] {
        if r.value > value {
            if last_increase.is_none_or(|t| r.at_ms.saturating_sub(t) >= gap_ms) {
                started += 1;
            }
            last_increase = Some(r.at_ms);
            value = r.value;
        }
    }
    let end = readings.last().map_or(0, |r| r.at_ms);
    let open = last_increase.is_some_and(|t| end.saturating_sub(t) < gap_ms);
    Bursts {
        started,
        completed: started - usize::from(open),
    }
}

/// Resyncs over in `readings` (oldest first) of the reconciles of `objects` objects: each
/// resync passes every object once, so every `objects` passes since the first reading are
/// one (0 without objects).
pub fn passes(readings: &[Reading], objects: usize) -> usize {
    let (Some(first), Some(last)) = (readings.first(), readings.last()) else {
        return 0;
    };
    let passes = usize::try_from(last.value.saturating_sub(first.value)).unwrap_or(usize::MAX);
    passes.checked_div(objects).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(points: &[(u64, u64)]) -> Vec<Reading> {
        points
            .iter()
            .map(|&(at_ms, value)| Reading { at_ms, value })
            .collect()
    }

    #[test]
    fn increases_close_together_are_one_burst_and_a_quiet_gap_completes_it() {
        // Two pages 500 ms apart, quiet, then two pages again, then quiet.
        let readings = series(&[
            (0, 10),
            (500, 11),
            (1000, 12),
            (1500, 12),
            (7000, 12),
            (60_000, 13),
            (60_500, 14),
            (66_000, 14),
        ]);
        assert_eq!(
            bursts(&readings, 5000),
            Bursts {
                started: 2,
                completed: 2
            }
        );
    }

    #[test]
    fn a_burst_still_within_its_gap_is_started_not_completed() {
        let readings = series(&[(0, 4), (1000, 6), (3000, 6)]);
        assert_eq!(
            bursts(&readings, 5000),
            Bursts {
                started: 1,
                completed: 0
            }
        );
    }

    #[test]
    fn no_increase_is_no_burst() {
        assert_eq!(
            bursts(&series(&[(0, 3), (9000, 3)]), 5000),
            Bursts::default()
        );
        assert_eq!(bursts(&[], 5000), Bursts::default());
    }

    #[test]
    fn passes_count_a_resync_per_object_count() {
        // Three objects: three passes, then three more.
        let readings = series(&[(0, 10), (500, 12), (1000, 13), (9000, 15), (9500, 16)]);
        assert_eq!(passes(&readings, 3), 2);
        assert_eq!(passes(&readings[..4], 3), 1);
        assert_eq!(passes(&readings, 0), 0);
        assert_eq!(passes(&[], 3), 0);
    }
}
