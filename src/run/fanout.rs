//! Fan-out to subscribers (console, Slack relay, headless printer, socket
//! clients) after an event is durable.
//!
//! Each subscriber has its own bounded queue, so a slow one never blocks the
//! run or the others. When a queue is full, samples go first, then the oldest
//! non-final events (the subscriber is told how many it missed and can
//! re-read the trail); final events are never dropped.

use super::backlog::Backlog;
use super::events::{EventRecord, Sample};
use crate::audit::Anchor;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// What subscribers receive.
// Events dominate the stream; boxing them would only add an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Published {
    /// A durable event and the trail head after it.
    Event {
        /// The record.
        record: EventRecord,
        /// The trail head after writing it (publish it in summaries).
        anchor: Anchor,
    },
    /// A sample (not recorded unless the gate said so).
    Sample(Sample),
    /// This many items were dropped before the next one because the subscriber was slow.
    Gap {
        /// Dropped items that were events.
        missed_events: u64,
    },
}

impl Published {
    fn is_final(&self) -> bool {
        matches!(self, Published::Event { record, .. } if record.event.is_terminal())
    }
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Published>,
    missed_events: u64,
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    notify: Notify,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The publishing side, owned by the run core. It keeps a bounded
/// [`Backlog`] of what it published, for subscribers that attach late.
#[derive(Debug, Default)]
pub struct Fanout {
    subs: Vec<Arc<Shared>>,
    backlog: Backlog,
}

/// A subscriber's receiving side.
#[derive(Debug)]
pub struct Subscription {
    shared: Arc<Shared>,
}

impl Fanout {
    /// A new subscriber whose queue holds `capacity` items (at least 2).
    pub fn subscribe(&mut self, capacity: usize) -> Subscription {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            notify: Notify::new(),
            capacity: capacity.max(2),
        });
        self.subs.push(shared.clone());
        Subscription { shared }
    }

    /// A new subscriber, with what was published before it (see [`Backlog`]).
    pub fn attach(&mut self, capacity: usize) -> (Backlog, Subscription) {
        (self.backlog.clone(), self.subscribe(capacity))
    }

    /// Seeds the backlog from a run's records (a supervisor restart).
    pub fn seed(&mut self, records: &[EventRecord]) {
        self.backlog = Backlog::from_records(records);
    }

    /// Publishes to every live subscriber without waiting for any of them.
    pub fn publish(&mut self, item: Published) {
        match &item {
            Published::Event { record, .. } => self.backlog.event(record),
            Published::Sample(s) => self.backlog.sample(s),
            Published::Gap { .. } => {}
        }
        // A subscriber whose receiver is gone is forgotten.
        self.subs.retain(|s| Arc::strong_count(s) > 1);
        for s in &self.subs {
            {
                let mut q = s.lock();
                push(&mut q, item.clone(), s.capacity);
            }
            s.notify.notify_one();
        }
    }

    /// Ends every subscription once its queue is drained.
    pub fn close(&mut self) {
        for s in &self.subs {
            s.lock().closed = true;
            s.notify.notify_one();
        }
        self.subs.clear();
    }
}

fn push(q: &mut Queue, item: Published, capacity: usize) {
    q.items.push_back(item);
    while q.items.len() > capacity {
        let victim = q
            .items
            .iter()
            .position(|i| matches!(i, Published::Sample(_)))
            .or_else(|| q.items.iter().position(|i| !i.is_final()));
        match victim.and_then(|v| q.items.remove(v)) {
            Some(Published::Event { .. }) => q.missed_events += 1,
            Some(_) => {}
            // Only final events left: keep them all.
            None => break,
        }
    }
}

impl Subscription {
    /// The next item; `None` once the run has ended and everything was delivered.
    pub async fn recv(&mut self) -> Option<Published> {
        loop {
            {
                let mut q = self.shared.lock();
                if q.missed_events > 0 {
                    let missed_events = std::mem::take(&mut q.missed_events);
                    return Some(Published::Gap { missed_events });
                }
                if let Some(i) = q.items.pop_front() {
                    return Some(i);
                }
                if q.closed {
                    return None;
                }
            }
            self.shared.notify.notified().await;
        }
    }
}
