//! One backoff for every Slack call: [`Paced`] wraps any [`SlackApi`] and
//! refuses, without a network call, what Slack has asked us not to send yet.
//!
//! - HTTP 429 (`Retry-After: N`) blocks that method for N s plus up to 1 s of
//!   jitter (spec §4: `int(Retry-After) + random()`);
//! - server-side trouble (5xx, `internal_error`, a dead connection) blocks
//!   the method's group with capped exponential backoff plus jitter, so an
//!   outage costs one probe per interval, not one call per message;
//! - a call while blocked fails at once with [`ApiError::RateLimited`]
//!   carrying the time left, and is counted (it never reaches Slack).
//!
//! Times are tokio's, so tests on a paused clock see exact intervals.

use super::api::{ApiError, Handling, SlackApi, methods};
use futures_util::future::BoxFuture;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Longest wait between probes of a failing method group. Short enough that
/// the progress message is fresh again within ~10 s of an outage's end.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Jitter added to every wait, at most.
const JITTER_MILLIS: u64 = 1000;

#[derive(Debug, Default)]
struct Gate {
    until: Option<Instant>,
    failures: u32,
}

#[derive(Debug)]
struct Inner {
    gates: HashMap<String, Gate>,
    rng: u64,
    refused: u64,
}

/// The paced API (see the module doc).
pub struct Paced<A: ?Sized> {
    api: std::sync::Arc<A>,
    inner: Mutex<Inner>,
}

/// Which backoff a method shares: the two message writes share one (an
/// outage of one is an outage of both), every other method has its own.
fn group(method: &str) -> &str {
    match method {
        methods::POST_MESSAGE | methods::UPDATE => "chat.write",
        m => m,
    }
}

impl<A: SlackApi + ?Sized> Paced<A> {
    /// Wraps `api`.
    pub fn new(api: std::sync::Arc<A>) -> Paced<A> {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        Paced {
            api,
            inner: Mutex::new(Inner {
                gates: HashMap::new(),
                rng: seed | 1,
                refused: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Until when `method` may not be called (`None`: now).
    pub fn blocked_until(&self, method: &str) -> Option<Instant> {
        let now = Instant::now();
        let g = self.lock();
        [method, group(method)]
            .iter()
            .filter_map(|k| g.gates.get(*k).and_then(|x| x.until))
            .filter(|t| *t > now)
            .max()
    }

    /// Calls refused locally because Slack had asked us to wait.
    pub fn refused(&self) -> u64 {
        self.lock().refused
    }

    fn jitter(inner: &mut Inner) -> Duration {
        // xorshift64: enough to spread retries of several relays apart.
        let mut x = inner.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        inner.rng = x;
        Duration::from_millis(x % JITTER_MILLIS)
    }

    fn learn(&self, method: &str, result: &Result<Value, ApiError>) {
        let now = Instant::now();
        let mut inner = self.lock();
        match result {
            Ok(_) => {
                if let Some(g) = inner.gates.get_mut(group(method)) {
                    g.failures = 0;
                }
            }
            Err(e) => match e.handling() {
                Handling::RateLimited => {
                    let wait = match e {
                        ApiError::RateLimited { retry_after, .. } => *retry_after,
                        _ => Duration::from_secs(1),
                    };
                    let until = now + wait + Self::jitter(&mut inner);
                    let g = inner.gates.entry(method.to_string()).or_default();
                    g.until = Some(g.until.map_or(until, |u| u.max(until)));
                }
                Handling::Retry => {
                    let j = Self::jitter(&mut inner);
                    let g = inner.gates.entry(group(method).to_string()).or_default();
                    g.failures = g.failures.saturating_add(1);
                    let backoff =
                        Duration::from_secs(1u64 << g.failures.min(6)).min(MAX_BACKOFF) + j;
                    let until = now + backoff;
                    g.until = Some(g.until.map_or(until, |u| u.max(until)));
                }
                _ => {}
            },
        }
    }

    async fn paced(&self, method: &str, args: Value) -> Result<Value, ApiError> {
        if let Some(until) = self.blocked_until(method) {
            self.lock().refused += 1;
            return Err(ApiError::RateLimited {
                method: method.to_string(),
                retry_after: until - Instant::now(),
            });
        }
        let r = self.api.call(method, args).await;
        self.learn(method, &r);
        r
    }
}

impl<A: SlackApi + ?Sized> SlackApi for Paced<A> {
    fn call<'a>(&'a self, method: &'a str, args: Value) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(self.paced(method, args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Answers 429 (Retry-After 10) to the first call, 503 to calls of
    /// `users.info`, and counts what reaches it.
    #[derive(Default)]
    struct Flaky {
        calls: AtomicU64,
    }

    impl SlackApi for Flaky {
        fn call<'a>(
            &'a self,
            method: &'a str,
            _args: Value,
        ) -> BoxFuture<'a, Result<Value, ApiError>> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst);
                if method == methods::USERS_INFO {
                    return Err(ApiError::Status {
                        method: method.into(),
                        status: 503,
                    });
                }
                if n == 0 {
                    return Err(ApiError::RateLimited {
                        method: method.into(),
                        retry_after: Duration::from_secs(10),
                    });
                }
                Ok(json!({"ok": true}))
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_reaches_slack_while_retry_after_runs() {
        let inner = Arc::new(Flaky::default());
        let p = Paced::new(inner.clone());
        assert!(p.call(methods::UPDATE, json!({})).await.is_err());
        let until = p.blocked_until(methods::UPDATE).expect("blocked");
        let wait = until - Instant::now();
        assert!(wait >= Duration::from_secs(10) && wait < Duration::from_secs(11));
        for _ in 0..5 {
            assert!(matches!(
                p.call(methods::UPDATE, json!({})).await,
                Err(ApiError::RateLimited { .. })
            ));
        }
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
        assert_eq!(p.refused(), 5);
        // Another method is not held up by chat.update's limit.
        assert!(p.call(methods::POST_EPHEMERAL, json!({})).await.is_ok());
        tokio::time::sleep_until(until).await;
        assert!(p.call(methods::UPDATE, json!({})).await.is_ok());
        assert_eq!(inner.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn server_errors_back_off_exponentially_up_to_the_cap() {
        let inner = Arc::new(Flaky::default());
        let p = Paced::new(inner.clone());
        let mut waits = Vec::new();
        for _ in 0..6 {
            let _ = p.call(methods::USERS_INFO, json!({})).await;
            let until = p.blocked_until(methods::USERS_INFO).expect("blocked");
            waits.push((until - Instant::now()).as_secs());
            tokio::time::sleep_until(until).await;
        }
        assert_eq!(waits, vec![2, 4, 8, 8, 8, 8]);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 6);
    }
}
