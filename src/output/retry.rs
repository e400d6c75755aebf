//! Retrying a destination that fails, shared by the Elasticsearch and Redis
//! outputs: exponential backoff (optionally with jitter), Beats' `max_retries`,
//! and waits that a stop signal cuts short when retrying has no end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Delivery, DeliveryProgress};
use crate::config::MaxRetries;

/// Exponential backoff: the first wait is `init`, each further failure doubles it,
/// up to `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub init: Duration,
    pub max: Duration,
}

impl Backoff {
    pub fn new(init: Duration, max: Duration) -> Backoff {
        Backoff { init, max }
    }

    /// The wait after `failures` consecutive failures (1: `init`), never above
    /// `max`. Saturates instead of overflowing, whatever the settings.
    pub fn delay(&self, failures: u64) -> Duration {
        let mut d = self.init;
        // At most ~100 doublings before `d` saturates or reaches `max`.
        for _ in 1..failures {
            if d >= self.max || d.is_zero() {
                break;
            }
            d = d.saturating_mul(2);
        }
        d.min(self.max)
    }
}

/// Spreads waits by a random factor in [0.5, 1.0) so that many shippers do not
/// retry in lockstep.
#[derive(Clone, Debug)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    pub fn new(seed: u64) -> Jitter {
        Jitter { state: seed | 1 }
    }

    pub fn apply(&mut self, d: Duration) -> Duration {
        let s = &mut self.state;
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        let frac = 0.5 + (*s % 1000) as f64 / 2000.0;
        d.mul_f64(frac)
    }
}

/// Why a retry loop stops trying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GiveUp {
    /// `max_retries` attempts after the first failed.
    MaxRetries,
    /// The run is stopping and its shutdown grace has run out.
    Stopping,
}

/// How often a wait looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

/// One output's retry policy: backoff, optional jitter, `max_retries`, and the
/// run's give-up flag, set once a stopping run's shutdown grace
/// (`pipeline.shutdown_timeout`) has run out: it ends every retry and every wait.
#[derive(Clone, Debug)]
pub struct Retry {
    pub backoff: Backoff,
    pub max_retries: MaxRetries,
    jitter: Option<Jitter>,
    stop: Arc<AtomicBool>,
    progress: DeliveryProgress,
}

impl Retry {
    pub fn new(backoff: Backoff, max_retries: MaxRetries) -> Retry {
        Retry {
            backoff,
            max_retries,
            jitter: None,
            stop: Arc::new(AtomicBool::new(false)),
            progress: DeliveryProgress::default(),
        }
    }

    /// Waits get a random factor (see [`Jitter`]).
    pub fn with_jitter(mut self, seed: u64) -> Retry {
        self.jitter = Some(Jitter::new(seed));
        self
    }

    pub fn set_stop(&mut self, stop: Arc<AtomicBool>) {
        self.stop = stop;
    }

    pub fn set_progress(&mut self, progress: DeliveryProgress) {
        self.progress = progress;
    }

    /// After a failed attempt, before waiting: counts `so_far` (what the
    /// attempts until now delivered, failed and retried) in the output's stats
    /// right away and empties it, so that an outage shows while it is retried.
    /// The caller keeps counting into `so_far`; what it returns in the end is
    /// only what was not reported here.
    pub fn report(&self, so_far: &mut Delivery) {
        self.progress.report(so_far);
    }

    /// The wait before the next attempt after `failures` consecutive failures.
    pub fn delay(&mut self, failures: u64) -> Duration {
        let d = self.backoff.delay(failures);
        match self.jitter.as_mut() {
            Some(j) => j.apply(d),
            None => d,
        }
    }

    /// After `failures` failed attempts: whether to try again. Bounded retries
    /// allow `max_retries` attempts after the first; endless ones go on until
    /// the run gives up.
    pub fn check(&self, failures: u64) -> Result<(), GiveUp> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(GiveUp::Stopping);
        }
        match self.max_retries {
            MaxRetries::Bounded(n) if failures > n => Err(GiveUp::MaxRetries),
            _ => Ok(()),
        }
    }

    /// Sleeps `d` (see [`Retry::sleep_until`]).
    pub fn sleep(&self, d: Duration) {
        self.sleep_until(deadline(d));
    }

    /// Sleeps until `until`, or until the run gives up.
    pub fn sleep_until(&self, until: Instant) {
        loop {
            let wait = until.saturating_duration_since(Instant::now());
            if wait.is_zero() || self.stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(wait.min(STOP_POLL));
        }
    }
}

/// `now + d`, for any `d`: a deadline beyond the clock's range is "in a century".
pub fn deadline(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let ms: Vec<u128> = (1..=6).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(0), Duration::from_millis(100));
        assert_eq!(b.delay(u64::MAX), Duration::from_secs(1));
        // A max below init caps even the first wait.
        let b = Backoff::new(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(b.delay(1), Duration::from_secs(1));
        // Absurd settings saturate; a zero init stays zero without looping long.
        let b = Backoff::new(Duration::from_secs(u64::MAX / 2), Duration::MAX);
        assert_eq!(b.delay(5), Duration::MAX);
        let b = Backoff::new(Duration::ZERO, Duration::MAX);
        assert_eq!(b.delay(u64::MAX), Duration::ZERO);
        // No cap on how many doublings: a tiny init still reaches max.
        let b = Backoff::new(Duration::from_nanos(1), Duration::from_secs(3600));
        assert_eq!(b.delay(100), Duration::from_secs(3600));
    }

    #[test]
    fn jitter_stays_in_range() {
        let mut j = Jitter::new(42);
        let d = Duration::from_secs(1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let x = j.apply(d);
            assert!(x >= d / 2 && x < d, "{x:?}");
            seen.insert(x);
        }
        assert!(seen.len() > 100, "random enough");
    }

    #[test]
    fn max_retries_from_the_setting() {
        assert_eq!(MaxRetries::from_setting(3), MaxRetries::Bounded(3));
        assert_eq!(MaxRetries::from_setting(0), MaxRetries::Bounded(0));
        assert_eq!(MaxRetries::from_setting(-1), MaxRetries::Forever);
        assert_eq!(MaxRetries::from_setting(-7), MaxRetries::Forever);
        assert_eq!(MaxRetries::Forever.to_string(), "-1");
        assert_eq!(MaxRetries::Bounded(2).to_string(), "2");
    }

    #[test]
    fn bounded_retries_then_give_up() {
        let b = Backoff::new(Duration::from_millis(1), Duration::from_millis(1));
        let r = Retry::new(b, MaxRetries::Bounded(2));
        assert_eq!(r.check(1), Ok(()));
        assert_eq!(r.check(2), Ok(()));
        assert_eq!(r.check(3), Err(GiveUp::MaxRetries));
        let r = Retry::new(b, MaxRetries::Bounded(0));
        assert_eq!(r.check(1), Err(GiveUp::MaxRetries));
    }

    #[test]
    fn giving_up_ends_retries_and_their_waits() {
        for policy in [MaxRetries::Forever, MaxRetries::Bounded(5)] {
            let b = Backoff::new(Duration::from_secs(3600), Duration::from_secs(3600));
            let mut r = Retry::new(b, policy);
            let stop = Arc::new(AtomicBool::new(false));
            r.set_stop(Arc::clone(&stop));
            assert_eq!(r.check(1), Ok(()));
            let setter = {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(100));
                    stop.store(true, Ordering::Relaxed);
                })
            };
            let t = Instant::now();
            r.sleep(r.backoff.delay(1));
            setter.join().unwrap();
            assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
            assert_eq!(r.check(1), Err(GiveUp::Stopping));
        }
        // Until then bounded retries keep their pace.
        let r = Retry::new(
            Backoff::new(Duration::from_millis(60), Duration::MAX),
            MaxRetries::Bounded(1),
        );
        let t = Instant::now();
        r.sleep(Duration::from_millis(60));
        assert!(t.elapsed() >= Duration::from_millis(60));
        assert_eq!(r.check(1), Ok(()));
        assert_eq!(r.check(2), Err(GiveUp::MaxRetries));
    }

    #[test]
    fn jittered_delays() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let mut r = Retry::new(b, MaxRetries::Bounded(3)).with_jitter(7);
        for n in 1..10 {
            let d = r.delay(n);
            assert!(d >= b.delay(n) / 2 && d < b.delay(n), "{d:?}");
        }
        let mut plain = Retry::new(b, MaxRetries::Bounded(3));
        assert_eq!(plain.delay(3), Duration::from_millis(400));
    }

    #[test]
    fn deadlines_never_overflow() {
        assert!(deadline(Duration::MAX) > Instant::now());
        assert!(deadline(Duration::ZERO) <= Instant::now());
    }
}
