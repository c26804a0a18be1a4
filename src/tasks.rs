//! Background tasks (the poller, notification delivery, schedules) and their orderly stop.
//!
//! Every task gets a [`StopSignal`]. On shutdown the signal fires, each task finishes its
//! current step and persists what it must, and whatever has not stopped within the budget
//! is aborted, so the process always ends before Docker's (and Unraid's) 10 s SIGKILL.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Owns the background tasks of one server instance.
pub struct Tasks {
    stop: watch::Sender<bool>,
    running: Mutex<Vec<(&'static str, JoinHandle<()>)>>,
}

/// Handed to every task: resolves once shutdown starts.
#[derive(Clone)]
pub struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    /// Resolves when shutdown has started (immediately if it already has).
    pub async fn stopped(&mut self) {
        // An error means the sender is gone, which also means: stop.
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Sleeps for `duration` unless shutdown starts first; true if it did.
    pub async fn sleep(&mut self, duration: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(duration) => self.is_stopped(),
            () = self.stopped() => true,
        }
    }
}

impl Default for Tasks {
    fn default() -> Self {
        Self::new()
    }
}

impl Tasks {
    pub fn new() -> Self {
        Self { stop: watch::channel(false).0, running: Mutex::new(Vec::new()) }
    }

    /// A stop signal for work that is not spawned here (e.g. SSE streams).
    pub fn signal(&self) -> StopSignal {
        StopSignal(self.stop.subscribe())
    }

    /// Spawns `task` on the runtime. A panic is logged; it never takes the server down.
    pub fn spawn<F, Fut>(&self, name: &'static str, task: F)
    where
        F: FnOnce(StopSignal) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let future = task(self.signal());
        #[expect(clippy::disallowed_methods, reason = "the registry is the one place that spawns")]
        let handle = tokio::spawn(async move {
            future.await;
            tracing::debug!(task = name, "background task ended");
        });
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((name, handle));
    }

    /// Signals every task to stop and waits for them, at most `budget`; the rest are
    /// aborted. Returns the names of the aborted tasks.
    pub async fn shutdown(&self, budget: Duration) -> Vec<&'static str> {
        self.stop.send_replace(true);
        let running = std::mem::take(
            &mut *self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let deadline = tokio::time::Instant::now() + budget;
        let mut aborted = Vec::new();
        for (name, mut handle) in running {
            match tokio::time::timeout_at(deadline, &mut handle).await {
                Ok(Err(e)) if e.is_panic() => {
                    tracing::error!(task = name, "background task had panicked");
                }
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(
                        task = name,
                        "background task did not stop in time; aborting it"
                    );
                    handle.abort();
                    aborted.push(name);
                }
            }
        }
        aborted
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn cooperative_tasks_stop_and_stubborn_ones_are_aborted() {
        let tasks = Tasks::new();
        let persisted = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&persisted);
        tasks.spawn("poller", |mut stop| async move {
            stop.stopped().await;
            flag.store(true, Ordering::SeqCst); // "persist live state"
        });
        tasks.spawn("stubborn", |_stop| async move {
            tokio::time::sleep(Duration::from_hours(1)).await;
        });
        let started = std::time::Instant::now();
        let aborted = tasks.shutdown(Duration::from_millis(200)).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(persisted.load(Ordering::SeqCst));
        assert_eq!(aborted, ["stubborn"]);
    }

    #[tokio::test]
    async fn sleep_wakes_on_stop() {
        let tasks = Tasks::new();
        let mut signal = tasks.signal();
        #[expect(clippy::disallowed_methods, reason = "a test stands in for a task")]
        let waiter = tokio::spawn(async move { signal.sleep(Duration::from_hours(1)).await });
        tasks.shutdown(Duration::from_secs(1)).await;
        assert!(waiter.await.unwrap(), "sleep reports that shutdown started");
        assert!(tasks.signal().is_stopped());
    }
}
