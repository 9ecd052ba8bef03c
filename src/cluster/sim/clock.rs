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

    /// The time `seconds` from now, as a timestamp.
    pub fn timestamp_after(&self, seconds: i64) -> String {
        let now = self.now_secs() + seconds;
        Timestamp::from_second(now).map(|t| t.to_string()).unwrap_or_default()
    }
}
