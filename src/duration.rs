//! Checked conversions from outside numbers to durations and deadlines.
//!
//! The standard library's `Duration::from_secs_f64`, `mul_f64`, `div_f64`
//! and `Instant + Duration` panic on NaN, negative or huge input, and the
//! numbers here come from servers (`Retry-After`, `expires_in`), the command
//! line and config files. `clippy.toml` bans the panicking float methods;
//! these helpers are what to use instead. Written by hand because they are
//! one-liners over `Duration::try_from_secs_f64`; no crate is needed.

use std::time::Duration;

/// Seconds as a duration; `None` for NaN, negative or too large a value.
pub fn from_secs_f64(secs: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(secs).ok()
}

/// `d` scaled by `factor`, saturating at `Duration::MAX`; a NaN or
/// negative factor gives zero.
pub fn scale(d: Duration, factor: f64) -> Duration {
    if factor.is_nan() || factor <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

/// `d` divided by `divisor`, saturating; a NaN, zero or negative divisor
/// gives `Duration::MAX` (nothing sensible is faster than instant).
pub fn divide(d: Duration, divisor: f64) -> Duration {
    if divisor.is_nan() || divisor <= 0.0 {
        return Duration::MAX;
    }
    scale(d, 1.0 / divisor)
}

/// A deadline `after` from `start`, or about a century away when that
/// cannot be represented (a timer that never fires in practice).
pub fn deadline<I>(start: I, after: Duration) -> I
where
    I: Copy + CheckedAdd,
{
    start
        .checked_add_duration(after)
        .unwrap_or_else(|| start.checked_add_duration(FAR_FUTURE).unwrap_or(start))
}

/// About a hundred years: far enough to never come, near enough to add.
pub const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Time points that can add a duration without panicking.
pub trait CheckedAdd: Sized {
    fn checked_add_duration(self, d: Duration) -> Option<Self>;
}

impl CheckedAdd for std::time::Instant {
    fn checked_add_duration(self, d: Duration) -> Option<Self> {
        self.checked_add(d)
    }
}

impl CheckedAdd for tokio::time::Instant {
    fn checked_add_duration(self, d: Duration) -> Option<Self> {
        self.checked_add(d)
    }
}

impl CheckedAdd for std::time::SystemTime {
    fn checked_add_duration(self, d: Duration) -> Option<Self> {
        self.checked_add(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_numbers_never_panic() {
        assert_eq!(from_secs_f64(1.5), Some(Duration::from_millis(1500)));
        for bad in [f64::NAN, -1.0, 1e20, f64::INFINITY, f64::MAX] {
            assert_eq!(from_secs_f64(bad), None, "{bad}");
        }
        assert_eq!(scale(Duration::from_secs(10), 0.8), Duration::from_secs(8));
        assert_eq!(scale(Duration::MAX, 2.0), Duration::MAX);
        assert_eq!(scale(Duration::from_secs(1), f64::NAN), Duration::ZERO);
        assert_eq!(divide(Duration::from_secs(1), 1e-300), Duration::MAX);
        assert_eq!(divide(Duration::from_secs(4), 2.0), Duration::from_secs(2));
        let now = std::time::Instant::now();
        assert!(deadline(now, Duration::MAX) > now);
        assert_eq!(deadline(now, Duration::from_secs(1)), now + Duration::from_secs(1));
        let wall = std::time::SystemTime::now();
        assert!(deadline(wall, Duration::MAX) > wall);
    }
}
