//! Exponential backoff with jitter, written once for every client of aci-worker that
//! retries: the broker connection, publishing, and later the cloud APIs.
//!
//! [`Backoff::next_delay`] gives the pause before the next attempt: it doubles from
//! an initial delay up to a maximum, and each pause is drawn between half and all of
//! the current step so that many workers retrying at once spread out.
//! [`Backoff::reset`] after a success starts over from the initial delay.
//!
//! [`retry_after`] reads a server's `Retry-After` answer, for the clients that wait
//! at least that long.
//!
//! The type does no waiting itself; callers sleep on their own runtime:
//!
//! ```
//! use std::time::Duration;
//! use backoff::Backoff;
//!
//! let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
//! let first = backoff.next_delay();
//! assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
//! let second = backoff.next_delay();
//! assert!(second >= Duration::from_millis(100) && second <= Duration::from_millis(200));
//! backoff.reset();
//! assert!(backoff.next_delay() <= Duration::from_millis(100));
//! ```

use std::time::{Duration, SystemTime};

/// A `Retry-After` value: whole seconds, or an HTTP date in any of the three forms
/// HTTP allows (as of `now`; one gone by is no wait); at most `cap`. `None` for
/// anything else.
pub fn retry_after(value: &str, now: SystemTime, cap: Duration) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value).ok()?.duration_since(now).unwrap_or_default(),
    };
    Some(wait.min(cap))
}

/// Exponential backoff with jitter; see the crate documentation.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    step: Duration,
    attempts: u32,
    rng: u64,
}

impl Backoff {
    /// Starts at `initial` and never waits longer than `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64);
        Backoff { initial, max: max.max(initial), step: initial, attempts: 0, rng: seed | 1 }
    }

    /// The pause before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.max);
        self.attempts = self.attempts.saturating_add(1);
        let half = step / 2;
        let spread = (step - half).as_nanos() as u64;
        let jitter = if spread == 0 { 0 } else { self.random() % (spread + 1) };
        half + Duration::from_nanos(jitter)
    }

    /// How many delays were handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.step = self.initial;
        self.attempts = 0;
    }

    /// xorshift64: plenty for spreading retries, and no dependency.
    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_maximum_within_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let steps = [100, 200, 400, 800, 1000, 1000, 1000];
        for step in steps {
            let d = b.next_delay();
            let step = Duration::from_millis(step);
            assert!(d >= step / 2 && d <= step, "{d:?} outside [{:?}, {step:?}]", step / 2);
        }
        assert_eq!(b.attempts(), steps.len() as u32);
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_secs(60));
        for _ in 0..20 {
            b.next_delay();
        }
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert!(b.next_delay() <= Duration::from_millis(10));
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let cap = Duration::from_secs(300);
        let after = |value: &str| retry_after(value, now, cap);
        assert_eq!(after("120"), Some(Duration::from_secs(120)));
        assert_eq!(after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(after("Wed, 21 Oct 2015 07:30:00 GMT"), Some(Duration::from_secs(120)));
        // The other two forms HTTP allows.
        assert_eq!(after("Wednesday, 21-Oct-15 07:28:30 GMT"), Some(Duration::from_secs(30)));
        assert_eq!(after("Wed Oct 21 07:28:45 2015"), Some(Duration::from_secs(45)));
        // A date gone by: no wait. Far ahead, or many seconds: the cap.
        assert_eq!(after("Wed, 21 Oct 2015 07:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(after("Thu, 22 Oct 2015 07:28:00 GMT"), Some(cap));
        assert_eq!(after("86400"), Some(cap));
        for nonsense in ["", "soon", "-5", "1.5", "Wed, 32 Oct 2015 07:28:00 GMT"] {
            assert_eq!(after(nonsense), None, "{nonsense:?}");
        }
    }

    #[test]
    fn a_zero_delay_stays_zero() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(b.next_delay(), Duration::ZERO);
    }
}
