//! Per-object retry delays after failed syncs: quick at first (a write
//! conflict usually clears at once), doubling on each further failure up to a
//! cap, and forgotten on the first success — as upstream's per-item
//! exponential rate limiter, so an object stuck on, say, a quota refusal is
//! not retried in a tight loop.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

const BASE: Duration = Duration::from_millis(200);
const CAP: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, u32>) -> R) -> R {
        let mut guard = match self.failures.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Records a failure of `key`; the delay before its next attempt.
    pub(crate) fn next(&self, key: &str) -> Duration {
        let n = self.with(|m| {
            let n = m.entry(key.to_string()).or_insert(0);
            let current = *n;
            *n = n.saturating_add(1);
            current
        });
        BASE.saturating_mul(1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX))
            .min(CAP)
    }

    /// `key` synced successfully.
    pub(crate) fn reset(&self, key: &str) {
        self.with(|m| {
            m.remove(key);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_resets() {
        let b = Backoff::default();
        let delays: Vec<Duration> = (0..4).map(|_| b.next("a")).collect();
        assert_eq!(
            delays,
            [200, 400, 800, 1600].map(Duration::from_millis).to_vec()
        );
        assert_eq!(b.next("other"), BASE, "keys are independent");
        for _ in 0..40 {
            b.next("a");
        }
        assert_eq!(b.next("a"), CAP);
        b.reset("a");
        assert_eq!(b.next("a"), BASE);
    }
}
