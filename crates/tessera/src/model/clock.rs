//! Time, as the server reads it: one injectable [`Clock`] in the node's state, so that what
//! depends on time (token lifetimes, secret expiry, back-off windows, sign-in lifetimes,
//! schedules) can be tested by moving a [`ManualClock`] instead of waiting.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of time: wall-clock seconds for what is compared with timestamps others see
/// (token `iat`/`exp`, stored expiries) and a monotonic instant for intervals kept in memory.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
    /// A monotonic reading.
    fn instant(&self) -> Instant;
}

/// The operating system's clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        unix_now()
    }

    fn instant(&self) -> Instant {
        Instant::now()
    }
}

/// Seconds since the Unix epoch, from the operating system.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A Unix time as people read it: RFC 3339 in UTC, to the second (the CLI's tables, the
/// console's pages).
pub fn rfc3339(at: i64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(at.max(0) as u64)).to_string()
}

/// A clock that runs with the system's and can be moved forward at will: tests advance it
/// instead of sleeping (a token "expires" when the clock is moved past its `exp`).
#[derive(Debug, Default)]
pub struct ManualClock {
    ahead: Mutex<Duration>,
}

impl ManualClock {
    /// A clock at the system's time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut ahead = self.ahead.lock().unwrap_or_else(|e| e.into_inner());
        *ahead += by;
    }

    fn ahead(&self) -> Duration {
        *self.ahead.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        let ahead = self.ahead();
        SystemTime::now()
            .checked_add(ahead)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default()
    }

    fn instant(&self) -> Instant {
        let now = Instant::now();
        now.checked_add(self.ahead()).unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_both_readings_forward() {
        let c = ManualClock::new();
        let (s, i) = (c.now(), c.instant());
        c.advance(Duration::from_secs(90));
        assert!(c.now() - s >= 90 && c.now() - s <= 91);
        assert!(c.instant().duration_since(i) >= Duration::from_secs(90));
        assert!((SystemClock.now() - unix_now()).abs() <= 1);
    }
}
