//! Deferred calls: a reconcile whose mutating call would wait long for its rate token ends
//! instead of waiting, and its object's next pass, timed for the token, makes the call.
//!
//! Why: with thousands of objects asking for the same bucket at once (10,000 CreateVolume
//! at 2.5 per second at the default limits), a pass that sleeps until its token is due
//! keeps its whole reconcile alive (the pipeline's state and the SDK call: about 32 KiB) for
//! up to an hour, 320 MB for 10,000 objects. A deferred pass holds nothing: the token is
//! reserved for the object (first come, first served, as before), the call fails with
//! [`AwsError::Deferred`](crate::aws::errors::AwsError::Deferred) before anything is sent,
//! the pass is requeued for when the token is due (not a failure: no event, no condition),
//! and the object's next pass claims the reserved token.
//!
//! The pipeline asks for the token before an action records its intent
//! ([`RateLimiter::admit`](super::RateLimiter::admit)): a deferred action has recorded and
//! written nothing, and the token it was given is prepaid for the call it then sends. A call
//! that was not admitted first (a second call of one action) is deferred the same way, after
//! whatever its action recorded.
//!
//! Only mutating classes are deferred: reads are merged by the observers (one paced read
//! serves many objects), and a read that fails would fail every object waiting on it.

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::ActionClass;

/// The reconcile running in this task.
struct PassState {
    /// Its object's `object_key`.
    object: String,
    /// A token taken by `admit` for the call the pass is about to send.
    prepaid: Cell<Option<ActionClass>>,
}

tokio::task_local! {
    static PASS: PassState;
}

/// Runs `pass` as a reconcile of the object `key`: its mutating calls may be deferred.
pub async fn for_object<F: Future>(key: String, pass: F) -> F::Output {
    let state = PassState {
        object: key,
        prepaid: Cell::new(None),
    };
    PASS.scope(state, pass).await
}

/// `f` of the object whose reconcile this task runs; `None` outside a reconcile.
pub(super) fn with_object<R>(f: impl FnOnce(&str) -> R) -> Option<R> {
    PASS.try_with(|p| f(&p.object)).ok()
}

/// Marks a token of `class` as taken for this pass's next call of that class.
pub(super) fn prepay(class: ActionClass) {
    let _ = PASS.try_with(|p| p.prepaid.set(Some(class)));
}

/// Whether this pass holds a prepaid token of `class`; it is used up by asking.
pub(super) fn take_prepaid(class: ActionClass) -> bool {
    PASS.try_with(|p| {
        let held = p.prepaid.get() == Some(class);
        if held {
            p.prepaid.set(None);
        }
        held
    })
    .unwrap_or(false)
}

/// The longest wait for a token spent inside the pass; a longer one is deferred. Short
/// enough that few passes wait at once (one second's worth of the bucket's refill), long
/// enough that a call due in a moment is not sent to the scheduler and back.
pub const IN_PLACE: Duration = Duration::from_secs(1);

/// A reservation still unclaimed this long after it was due belongs to an object that no
/// longer needs the call (deleted, or its spec changed): forgotten, its token lost.
const UNCLAIMED: Duration = Duration::from_secs(600);

/// How a pass gets the token for its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Wait this long (at most [`IN_PLACE`]), then send.
    Now(Duration),
    /// The token is reserved for this object and due after this long: end the pass.
    Later(Duration),
}

/// Tokens reserved for objects whose passes were deferred, by object and class.
#[derive(Debug)]
pub struct Reservations {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    due: HashMap<(String, ActionClass), Instant>,
    pruned: Instant,
}

impl Default for Reservations {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                due: HashMap::new(),
                pruned: Instant::now(),
            }),
        }
    }
}

impl Reservations {
    /// The token of `class` for the object `key`: its reservation when it has one, else a
    /// new one from `reserve` (which takes a token from the bucket and answers how long
    /// until it is due).
    pub fn claim(
        &self,
        key: &str,
        class: ActionClass,
        reserve: impl FnOnce() -> Duration,
    ) -> Claim {
        let now = Instant::now();
        let Ok(mut state) = self.state.lock() else {
            return Claim::Now(reserve());
        };
        let entry = (key.to_owned(), class);
        if let Some(due) = state.due.get(&entry).copied() {
            let wait = due.saturating_duration_since(now);
            if wait > IN_PLACE {
                // Woken early (a watch event): the reservation stands.
                return Claim::Later(wait);
            }
            state.due.remove(&entry);
            return Claim::Now(wait);
        }
        let wait = reserve();
        if wait <= IN_PLACE {
            return Claim::Now(wait);
        }
        state.prune(now);
        state.due.insert(entry, now + wait);
        Claim::Later(wait)
    }

    /// Reservations held now.
    pub fn len(&self) -> usize {
        self.state.lock().map_or(0, |s| s.due.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl State {
    /// Drops reservations unclaimed for [`UNCLAIMED`] after they were due; at most once a
    /// minute, so a burst of deferrals does not scan the table per insert.
    fn prune(&mut self, now: Instant) {
        if now.saturating_duration_since(self.pruned) < Duration::from_secs(60) {
            return;
        }
        self.pruned = now;
        self.due.retain(|_, due| *due + UNCLAIMED > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE: ActionClass = ActionClass::CreateDelete;

    #[tokio::test(start_paused = true)]
    async fn a_short_wait_is_spent_in_place_and_reserves_nothing() {
        let r = Reservations::default();
        assert_eq!(
            r.claim("a", CREATE, || Duration::from_millis(400)),
            Claim::Now(Duration::from_millis(400))
        );
        assert!(r.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_wait_is_reserved_and_claimed_by_the_objects_next_pass() {
        let r = Reservations::default();
        let mut reserved = 0;
        let mut reserve = |wait| {
            reserved += 1;
            wait
        };
        assert_eq!(
            r.claim("a", CREATE, || reserve(Duration::from_secs(30))),
            Claim::Later(Duration::from_secs(30))
        );
        // Woken early: the same reservation, no second token taken.
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(
            r.claim("a", CREATE, || reserve(Duration::from_secs(99))),
            Claim::Later(Duration::from_secs(20))
        );
        // At its time: claimed, and gone.
        tokio::time::advance(Duration::from_millis(19_500)).await;
        assert_eq!(
            r.claim("a", CREATE, || reserve(Duration::from_secs(99))),
            Claim::Now(Duration::from_millis(500))
        );
        assert_eq!(reserved, 1);
        assert!(r.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn reservations_are_per_object_and_class() {
        let r = Reservations::default();
        let far = || Duration::from_secs(30);
        assert!(matches!(r.claim("a", CREATE, far), Claim::Later(_)));
        assert!(matches!(r.claim("b", CREATE, far), Claim::Later(_)));
        assert!(matches!(
            r.claim("a", ActionClass::Tags, far),
            Claim::Later(_)
        ));
        assert_eq!(r.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reservation_never_claimed_is_forgotten_long_after_it_was_due() {
        let r = Reservations::default();
        let far = || Duration::from_secs(30);
        assert!(matches!(r.claim("gone", CREATE, far), Claim::Later(_)));
        tokio::time::advance(Duration::from_secs(30) + UNCLAIMED).await;
        assert!(matches!(r.claim("b", CREATE, far), Claim::Later(_)));
        assert_eq!(r.len(), 1, "only b's reservation is left");
    }

    #[tokio::test(start_paused = true)]
    async fn outside_a_pass_there_is_no_object() {
        assert_eq!(with_object(str::to_owned), None);
        let seen = for_object("EbsVolume/ns/a".to_owned(), async {
            with_object(str::to_owned)
        })
        .await;
        assert_eq!(seen.as_deref(), Some("EbsVolume/ns/a"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_prepaid_token_serves_one_call_of_its_class_in_its_pass() {
        prepay(CREATE);
        assert!(!take_prepaid(CREATE), "outside a pass nothing is prepaid");
        let taken = for_object("a".to_owned(), async {
            prepay(CREATE);
            [
                take_prepaid(ActionClass::Tags),
                take_prepaid(CREATE),
                take_prepaid(CREATE),
            ]
        })
        .await;
        assert_eq!(taken, [false, true, false]);
    }
}
