//! The built-in cluster's clock. It reads tokio's clock, which the built-in cluster's runtime
//! starts paused: time moves only when every task waits, straight to the next timer. A pod's 30 s
//! grace period and a step's 30 s timeout cost no wall time, and they come in the order the real
//! durations give.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

/// Wall-clock seconds at the cluster's start (2026-01-01T00:00:00Z): timestamps are stable.
const EPOCH: i64 = 1_767_225_600;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    started: Instant,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock { started: Instant::now() }
    }
}

impl Clock {
    pub fn now(&self) -> Instant {
        Instant::now()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The cluster's current time.
    pub fn now_timestamp(&self) -> Timestamp {
        let elapsed = self.elapsed();
        Timestamp::new(EPOCH + elapsed.as_secs() as i64, elapsed.subsec_nanos() as i32).unwrap_or_default()
    }

    /// The cluster's current time in whole seconds since the Unix epoch (as a timestamp shows it).
    pub fn now_secs(&self) -> i64 {
        EPOCH + self.elapsed().as_secs() as i64
    }

    /// The current time as the API writes timestamps (RFC 3339, whole seconds).
    pub fn timestamp(&self) -> String {
        self.timestamp_after(0)
    }

    /// The time `seconds` from now, to the whole second, as the API server writes a deletion
    /// timestamp: `seconds` as a Go duration, which wraps beyond about 292 years
    /// ([`go_seconds`]), so even an int64's largest grace period gives a time near now.
    pub fn timestamp_after(&self, seconds: i64) -> String {
        let elapsed = self.elapsed();
        let now = i128::from(self.now_secs()) * NANOS + i128::from(elapsed.subsec_nanos());
        let at = (now + i128::from(go_seconds(seconds))).div_euclid(NANOS);
        let at = i64::try_from(at).ok().and_then(|at| Timestamp::from_second(at).ok());
        at.unwrap_or(Timestamp::MAX).to_string()
    }
}

const NANOS: i128 = 1_000_000_000;

/// Go's `time.Second * time.Duration(seconds)`, as the API server turns a grace period into the
/// time to add: nanoseconds in an int64, wrapping on overflow.
pub fn go_seconds(seconds: i64) -> i64 {
    seconds.wrapping_mul(1_000_000_000)
}

/// `at` (seconds since the Unix epoch) moved by `by` seconds as a Go duration (see
/// [`go_seconds`]), to the whole second.
pub fn moved_by(at: i64, by: i64) -> i64 {
    let moved = (i128::from(at) * NANOS + i128::from(go_seconds(by))).div_euclid(NANOS);
    i64::try_from(moved).unwrap_or(if moved < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grace_period_turns_into_time_as_a_go_duration_does() {
        assert_eq!(moved_by(100, 30), 130);
        assert_eq!(moved_by(100, -30), 70);
        // int64's largest number of seconds, as nanoseconds, wraps to -1,000,000,000 ns.
        assert_eq!(go_seconds(i64::MAX), -1_000_000_000);
        assert_eq!(moved_by(100, i64::MAX), 99);
        // 300,000,000,000 s wraps to about 139 years back.
        assert_eq!(go_seconds(300_000_000_000), 300_000_000_000i64.wrapping_mul(1_000_000_000));
        assert!((moved_by(EPOCH, 300_000_000_000) - EPOCH).abs() < 300 * 366 * 86_400);
    }
}
