//! A minimal ordered parallel map for CPU-bound planning work (parsing, loading).
//!
//! Work items are claimed one at a time from a shared counter, so a few large
//! items do not leave cores idle; results come back in input order.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Worker threads to use: the machine's parallelism, read once (it reads cgroup
/// files on every call).
pub fn threads() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// Maps `f` over `items` on up to [`threads`] threads, keeping the order. A panic
/// in `f` becomes `on_panic(item)` for the items that worker had not returned.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
    on_panic: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let n = threads().min(items.len());
    if n < 2 {
        return items.iter().map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut parts: Vec<Vec<(usize, R)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    let mut got = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= items.len() {
                            break;
                        }
                        got.push((i, f(&items[i])));
                    }
                    got
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut out: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    for part in parts.drain(..) {
        for (i, r) in part {
            out[i] = Some(r);
        }
    }
    out.into_iter()
        .zip(items)
        .map(|(r, item)| r.unwrap_or_else(|| on_panic(item)))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_and_survives_a_panic() {
        let items: Vec<u32> = (0..1000).collect();
        let out = super::map(&items, |x| x * 2, |_| 0);
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        let out = super::map(
            &items,
            |x| if *x == 7 { panic!("boom") } else { *x },
            |_| u32::MAX,
        );
        assert_eq!(out.len(), 1000);
        assert_eq!(out[7], u32::MAX);
    }
}
