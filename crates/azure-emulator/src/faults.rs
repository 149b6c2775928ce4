//! Fault injection: errors, throttling and latency that the real services show now
//! and then, on demand and reproducibly (a seeded generator, no randomness of the
//! machine).

use std::sync::Mutex;
use std::time::Duration;

/// Which faults the emulator injects. The default injects none.
///
/// Each request draws, in this order: delayed (`latency_rate`, when there is a
/// `latency`), throttled (`throttle_rate`), failed before anything happened
/// (`error_rate`), failed after the operation was carried out (`after_rate`). Rates
/// are fractions between 0 and 1; 1 hits every request.
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// Fraction of requests answered `500 InternalError` or `503 ServerBusy` (drawn
    /// at random between the two) without doing anything.
    pub error_rate: f64,
    /// Fraction of requests answered `503 ServerBusy` with `Retry-After: 1` and the
    /// message "Operations per second is over the account limit.".
    pub throttle_rate: f64,
    /// Fraction of requests that are carried out and then still answered
    /// `500 InternalError`, as when a response is lost: a retry meets the effect of
    /// the first attempt (for example `ShareAlreadyExists`).
    pub after_rate: f64,
    /// Added to requests before they are handled: to every request, or to the
    /// fraction `latency_rate` of them.
    pub latency: Duration,
    /// Fraction of requests that wait `latency` (1, every request, by default).
    pub latency_rate: f64,
    /// For this long after a share is deleted, creating a share of the same name is
    /// answered `409 ShareBeingDeleted`, as Azure does while it removes a deleted
    /// share in the background (zero, the default: a deleted name is free at once).
    pub share_deletion_lag: Duration,
    /// Seed of the generator that draws the faults; the same seed and the same
    /// sequence of requests give the same faults.
    pub seed: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            error_rate: 0.0,
            throttle_rate: 0.0,
            after_rate: 0.0,
            latency: Duration::ZERO,
            latency_rate: 1.0,
            share_deletion_lag: Duration::ZERO,
            seed: 0x5eed,
        }
    }
}

/// A fault to answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// `500 InternalError`.
    InternalError,
    /// `503 ServerBusy`.
    ServerBusy,
    /// `503 ServerBusy` with `Retry-After`.
    Throttled,
}

/// What happens to one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Wait this long first.
    pub(crate) latency: Duration,
    /// Answer with this fault instead of handling the request.
    pub(crate) before: Option<Fault>,
    /// Handle the request, then answer with this fault if it succeeded.
    pub(crate) after: Option<Fault>,
}

/// The faults in force and the generator that draws them, shared by all requests.
#[derive(Debug)]
pub(crate) struct FaultInjector {
    state: Mutex<(Faults, Rng)>,
}

impl FaultInjector {
    pub(crate) fn new(faults: Faults) -> Self {
        let rng = Rng::new(faults.seed);
        FaultInjector { state: Mutex::new((faults, rng)) }
    }

    /// Replaces the faults and restarts the generator from their seed.
    pub(crate) fn set(&self, faults: Faults) {
        let rng = Rng::new(faults.seed);
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = (faults, rng);
    }

    /// How long a deleted share's name stays taken.
    pub(crate) fn share_deletion_lag(&self) -> Duration {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0.share_deletion_lag
    }

    /// Draws the plan for the next request.
    pub(crate) fn plan(&self) -> Plan {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (faults, rng) = &mut *guard;
        let mut plan = Plan::default();
        // A rate of 0 or 1 draws nothing, so the faults of a seed stay the same.
        if !faults.latency.is_zero() && rng.hit(faults.latency_rate) {
            plan.latency = faults.latency;
        }
        if rng.hit(faults.throttle_rate) {
            plan.before = Some(Fault::Throttled);
        } else if rng.hit(faults.error_rate) {
            let busy = rng.next() & 1 == 1;
            plan.before = Some(if busy { Fault::ServerBusy } else { Fault::InternalError });
        } else if rng.hit(faults.after_rate) {
            plan.after = Some(Fault::InternalError);
        }
        plan
    }
}

/// xorshift64* seeded through splitmix64 (so that any seed, 0 included, works).
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 1 } else { z })
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// True with probability `rate` (clamped to 0..=1; NaN is 0).
    fn hit(&mut self, rate: f64) -> bool {
        if rate.is_nan() || rate <= 0.0 {
            return false;
        }
        if rate >= 1.0 {
            return true;
        }
        // 53 random bits as a float in [0, 1).
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        unit < rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans(faults: Faults, n: usize) -> Vec<Plan> {
        let injector = FaultInjector::new(faults);
        (0..n).map(|_| injector.plan()).collect()
    }

    #[test]
    fn no_faults_by_default() {
        assert!(plans(Faults::default(), 1000).iter().all(|p| *p == Plan::default()));
    }

    #[test]
    fn rate_one_hits_every_request_with_both_kinds_of_error() {
        let all = plans(Faults { error_rate: 1.0, ..Faults::default() }, 200);
        assert!(all.iter().all(|p| p.before.is_some() && p.after.is_none()));
        assert!(all.iter().any(|p| p.before == Some(Fault::InternalError)));
        assert!(all.iter().any(|p| p.before == Some(Fault::ServerBusy)));
    }

    #[test]
    fn same_seed_same_faults_and_rates_are_roughly_kept() {
        let faults = Faults { error_rate: 0.25, after_rate: 0.1, seed: 7, ..Faults::default() };
        let first = plans(faults.clone(), 4000);
        assert_eq!(first, plans(faults, 4000));
        let errors = first.iter().filter(|p| p.before.is_some()).count();
        assert!((800..1200).contains(&errors), "{errors}");
        let after = first.iter().filter(|p| p.after.is_some()).count();
        assert!((150..450).contains(&after), "{after}");
    }

    #[test]
    fn latency_for_all_or_some_requests() {
        let latency = Duration::from_millis(7);
        let all = plans(Faults { latency, ..Faults::default() }, 100);
        assert!(all.iter().all(|p| p.latency == latency && p.before.is_none()));
        let faults = Faults { latency, latency_rate: 0.3, seed: 11, ..Faults::default() };
        let some = plans(faults, 1000);
        let slow = some.iter().filter(|p| p.latency == latency).count();
        assert!((200..400).contains(&slow), "{slow}");
        assert!(some.iter().all(|p| p.latency.is_zero() || p.latency == latency));
        // Without latency, the rate changes no other fault.
        let throttled = Faults { throttle_rate: 0.5, seed: 5, ..Faults::default() };
        let with_rate = Faults { latency_rate: 0.3, ..throttled.clone() };
        assert_eq!(plans(throttled, 200), plans(with_rate, 200));
    }

    #[test]
    fn set_restarts_the_sequence() {
        let faults = Faults { throttle_rate: 0.5, seed: 3, ..Faults::default() };
        let injector = FaultInjector::new(faults.clone());
        let first: Vec<Plan> = (0..50).map(|_| injector.plan()).collect();
        injector.set(faults);
        let again: Vec<Plan> = (0..50).map(|_| injector.plan()).collect();
        assert_eq!(first, again);
    }
}
