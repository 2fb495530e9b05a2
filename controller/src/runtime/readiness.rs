//! Readiness of each kind's controller, for `/readyz`.
//!
//! A kind is ready once its CRD is installed and its cache has synced. The process keeps
//! running while a CRD is missing (it is often installed after the controller), reporting
//! not ready instead of exiting.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindState {
    /// The CRD is not installed (yet).
    WaitingForCrd,
    /// The CRD is there; the watch cache is filling.
    Syncing,
    /// The cache is synced and reconciling runs.
    Ready,
}

impl KindState {
    pub fn as_str(self) -> &'static str {
        match self {
            KindState::WaitingForCrd => "waiting for its CRD",
            KindState::Syncing => "syncing its cache",
            KindState::Ready => "ready",
        }
    }
}

/// Shared, cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    kinds: Arc<Mutex<BTreeMap<&'static str, KindState>>>,
    /// Waiting for leadership: healthy, so a rolling update can proceed, but not acting.
    standby: Arc<AtomicBool>,
}

impl Readiness {
    pub fn set(&self, kind: &'static str, state: KindState) {
        if let Ok(mut kinds) = self.kinds.lock() {
            kinds.insert(kind, state);
        }
    }

    /// Every kind and its state.
    pub fn snapshot(&self) -> BTreeMap<&'static str, KindState> {
        self.kinds.lock().map(|k| k.clone()).unwrap_or_default()
    }

    pub fn set_standby(&self, standby: bool) {
        self.standby.store(standby, Ordering::SeqCst);
    }

    pub fn is_standby(&self) -> bool {
        self.standby.load(Ordering::SeqCst)
    }

    /// Ready when standing by for leadership, or when at least one kind is registered and
    /// every one is ready.
    pub fn is_ready(&self) -> bool {
        if self.is_standby() {
            return true;
        }
        let kinds = self.snapshot();
        !kinds.is_empty() && kinds.values().all(|s| *s == KindState::Ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_kind_is_ready() {
        let r = Readiness::default();
        assert!(!r.is_ready());
        r.set("EbsVolume", KindState::Ready);
        r.set("AmiImage", KindState::WaitingForCrd);
        assert!(!r.is_ready());
        r.set("AmiImage", KindState::Ready);
        assert!(r.is_ready());
    }
}
