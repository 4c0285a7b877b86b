//! Cancellation as the Actions runner delivers it. The runner stops a step with SIGINT, then
//! SIGTERM 7.5 s later, then kills the `docker` CLI 2.5 s after that
//! (actions/runner `src/Runner.Sdk/ProcessInvoker.cs:32-33`, `:443-465`); docker forwards the
//! signals to the container's PID 1, and the kernel drops every signal a PID 1 has no handler for.
//! Killing the CLI does not stop the container, so the binary must stop itself: [`run`] installs the
//! handlers and ends the flow at a safe point, within [`GRACE`] of the first signal.
//!
//! A safe point is any await outside a [`Critical`] section. Writes whose result the post step must
//! know (a push, a PR, a merge, each with the state that records it) hold one; everything else, the
//! waits above all, is dropped where it stands, since the state written after each step already
//! says what the post step has to undo.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How long a write in flight may still finish after the first signal: well inside the runner's
/// 7.5 s before SIGTERM, so that the report is printed before anything is killed.
pub const GRACE: Duration = Duration::from_secs(5);

/// Critical sections now open.
static CRITICAL: AtomicUsize = AtomicUsize::new(0);

/// Held while a write and the state recording it are in flight; a cancellation waits for it.
#[must_use = "the section ends when the guard is dropped"]
pub struct Critical(());

/// Opens a critical section that lasts until the guard is dropped.
pub fn critical() -> Critical {
    CRITICAL.fetch_add(1, Ordering::SeqCst);
    Critical(())
}

impl Drop for Critical {
    fn drop(&mut self) {
        CRITICAL.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How a flow run under [`run`] ended.
#[derive(Debug)]
pub enum Outcome<T> {
    /// It ran to its end (perhaps after a signal, when it finished within the grace).
    Finished(T),
    /// A signal stopped it at a safe point, or when the grace ran out.
    Cancelled(Cancelled),
}

/// What stopped a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled {
    /// The first signal: `SIGINT` or `SIGTERM`.
    pub signal: &'static str,
    /// A critical write was still in flight when the grace ran out (or a second signal came).
    pub write_in_flight: bool,
}

/// Runs `flow` until it ends or a SIGINT or SIGTERM stops it at the next safe point.
///
/// # Panics
/// When the signal handlers cannot be installed (no tokio runtime with signals enabled).
pub async fn run<T>(flow: impl Future<Output = T>) -> Outcome<T> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler");
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let mut flow = std::pin::pin!(flow);
    let first = tokio::select! {
        r = &mut flow => return Outcome::Finished(r),
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    };
    let deadline = tokio::time::sleep(GRACE);
    let mut deadline = std::pin::pin!(deadline);
    // Polled rather than notified: a section ends within a request, and 20 ms is nothing to that.
    while CRITICAL.load(Ordering::SeqCst) > 0 {
        tokio::select! {
            r = &mut flow => return Outcome::Finished(r),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = &mut deadline => break,
            _ = int.recv() => break,
            _ = term.recv() => break,
        }
    }
    Outcome::Cancelled(Cancelled {
        signal: first,
        write_in_flight: CRITICAL.load(Ordering::SeqCst) > 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raise(sig: i32) {
        // SAFETY: kill(2) with our own pid and a signal whose handler tokio installed.
        unsafe {
            kill(std::process::id() as i32, sig);
        }
    }

    extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }

    const SIGINT: i32 = 2;

    /// One test for both cases: signals go to the whole process, so two tests in parallel would
    /// see each other's.
    #[test]
    fn a_signal_stops_a_wait_at_once_but_lets_a_write_finish() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let waiting = run(async {
                tokio::time::sleep(Duration::from_secs(600)).await;
                "waited"
            });
            let (outcome, ()) = tokio::join!(waiting, async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                raise(SIGINT);
            });
            assert!(
                matches!(
                    outcome,
                    Outcome::Cancelled(Cancelled {
                        signal: "SIGINT",
                        write_in_flight: false
                    })
                ),
                "{outcome:?}"
            );

            let writing = run(async {
                let _section = critical();
                tokio::time::sleep(Duration::from_millis(400)).await;
                "written"
            });
            let (outcome, ()) = tokio::join!(writing, async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                raise(SIGINT);
            });
            assert!(
                matches!(outcome, Outcome::Finished("written")),
                "{outcome:?}"
            );
        });
    }
}
