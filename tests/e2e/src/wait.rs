//! Waiting for a condition in tests: poll until it holds or a deadline passes, then fail
//! with the last thing seen.

use std::future::Future;
use std::time::Duration;

use anyhow::{Result, bail};

/// Polls `check` every 100 ms until it returns `Ok(Some(value))`, failing after `timeout`
/// with what `describe` says about the last state.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        if tokio::time::Instant::now() >= deadline {
            match last_error {
                Some(e) => {
                    bail!("timed out after {timeout:?} waiting for {what}; last error: {e:#}")
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `f` up to 5 times, 500 ms apart, until it succeeds (for requests a busy emulator or
/// apiserver may drop); fails with the last error.
pub async fn retry<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut last = None;
    for _ in 0..5 {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    match last {
        Some(e) => Err(e.context(format!("{what} failed 5 times"))),
        None => bail!("{what}: no attempt"),
    }
}
