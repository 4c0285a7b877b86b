//! The wait: feed the pure condition from the watch stream (polling when there is none) until the
//! app runs the merge Healthy, and name the unhealthy resources when it does not.

use super::watch::{Subscription, Watcher};
use super::*;
use crate::base::text::short;
use crate::base::wait::{self, Pending, Wait, HEARTBEAT};
use http::Method;
use std::cell::Cell;
use std::sync::Mutex;
use std::time::{Duration, Instant};

impl ArgoCd {
    /// Waits until `app` runs `target` Synced and Healthy (see [`is_synced_healthy_at`]), watching
    /// the app and polling when the stream fails; prints progress through `progress`.
    ///
    /// # Errors
    /// `SyncFailed` on a Failed/Error operation or a terminal condition; `Unhealthy` (naming the
    /// unhealthy resources) after `degraded_grace` of Degraded; `HealthTimeout` after `health_timeout`.
    pub async fn wait(
        &self,
        app: &str,
        target: &Target,
        opts: &WaitOptions,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<AppStatus, ArgoError> {
        self.wait_on(None, app, target, opts, progress).await
    }

    /// [`ArgoCd::wait`] on `watcher`'s stream, shared with the other apps' waits, instead of a
    /// stream of its own (`None` opens one for `app`).
    ///
    /// # Errors
    /// As [`ArgoCd::wait`].
    pub async fn wait_on(
        &self,
        watcher: Option<&Watcher>,
        app: &str,
        target: &Target,
        opts: &WaitOptions,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<AppStatus, ArgoError> {
        let last = Mutex::new(String::from("nothing seen yet"));
        let started = Instant::now();
        let run = self.wait_loop(watcher, app, target, opts, progress, &last, started);
        match tokio::time::timeout(opts.health_timeout, run).await {
            Ok(r) => r,
            Err(_) => {
                let resources = match self.unhealthy_resources(app, None).await {
                    Ok(s) if !s.is_empty() => format!("; unhealthy: {s}"),
                    _ => String::new(),
                };
                Err(ArgoError::HealthTimeout {
                    app: app.into(),
                    revision: short(&target.merge_sha).into(),
                    after: opts.health_timeout,
                    last: last.lock().unwrap().clone(),
                    resources,
                })
            }
        }
    }

    /// The loop behind [`ArgoCd::wait`]: [`wait::until`] over what the watch stream (or a GET)
    /// shows, judged by [`is_synced_healthy_at`]. It has no timeout of its own.
    // The wait's parts, passed through from `wait_on`: a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn wait_loop(
        &self,
        watcher: Option<&Watcher>,
        app: &str,
        target: &Target,
        opts: &WaitOptions,
        progress: &(dyn Fn(&str) + Send + Sync),
        last: &Mutex<String>,
        started: Instant,
    ) -> Result<AppStatus, ArgoError> {
        // Our own stream when none is shared; it lives as long as this wait.
        let own = match watcher {
            Some(_) => None,
            None => Some(self.watch(app).await),
        };
        let shared = match (watcher, &own) {
            (Some(w), _) => Ok(w),
            (None, Some(Ok(w))) => Ok(w),
            (None, Some(Err(e))) => Err(e.to_string()),
            (None, None) => unreachable!("a stream of its own is opened without a shared one"),
        };
        let watch = match shared {
            Ok(w) => Some(w.subscribe(app)),
            Err(e) => {
                progress(&format!(
                    "{app}: watch unavailable ({e}); polling every {}s",
                    opts.poll.as_secs_f32()
                ));
                None
            }
        };
        let mut feed = Feed {
            watch,
            unreconciled_since: None,
            refreshed: false,
            first: true,
            last_state: String::new(),
            resources: String::from("resources ?"),
        };
        // Set by the condition while a Degraded grace period runs: the period may end without
        // another event, so the next look is a GET after this pause.
        let recheck: Cell<Option<Duration>> = Cell::new(None);
        let observe = async || -> Result<(Application, String), ArgoError> {
            let mut current = feed.next(self, app, opts, recheck.take(), progress).await?;
            if feed.stalled(&current) {
                progress(&format!(
                    "{app}: reconciledAt has not moved for {}s since the operation finished; asking for one more refresh (hard), as Kargo's argocd waiter does",
                    STALE_RECONCILE.as_secs()
                ));
                // One try: a refresh that fails or is slow leaves the wait as it was.
                if let Ok(a) = self.refresh(app, true).await {
                    current = a;
                }
            }
            let state = state_line(app, &current);
            if state != feed.last_state {
                if let Ok(health) = self.resource_health(app, Some(&current)).await {
                    let ok = health.iter().filter(|(_, h)| h.status == "Healthy").count();
                    feed.resources = format!("resources {ok}/{} healthy", health.len());
                }
                feed.last_state = state;
            }
            Ok((current, feed.resources.clone()))
        };
        let mut degraded_since: Option<Instant> = None;
        let judge = |(current, resources): (Application, String), _: Duration| {
            let cond = is_synced_healthy_at(Some(&current), target);
            let state = state_line(app, &current);
            *last.lock().unwrap() = format!("{state}, {resources}");
            let elapsed = started.elapsed();
            let why = match &cond {
                Condition::Done(_) => "done".to_string(),
                Condition::Pending(r)
                | Condition::Degraded(r)
                | Condition::Failed(r)
                | Condition::Aborted(r) => r.clone(),
            };
            let pending = Pending::new(state).with_tail(format!(
                ", {resources}, waiting for {} ({why}), elapsed {}s, remaining {}s",
                short(&target.merge_sha),
                elapsed.as_secs(),
                opts.health_timeout.saturating_sub(elapsed).as_secs()
            ));
            match cond {
                Condition::Done(revision) => Ok(Wait::Done(Ended::Ran(AppStatus {
                    name: app.into(),
                    revision,
                    health: current.status.health.status.clone(),
                    sync: current.status.sync.status.clone(),
                }))),
                Condition::Failed(reason) => Err(ArgoError::SyncFailed {
                    app: app.into(),
                    reason,
                }),
                Condition::Aborted(reason) => {
                    Ok(Wait::Done(Ended::Degraded(Box::new(current), reason)))
                }
                Condition::Degraded(reason) => {
                    let since = *degraded_since.get_or_insert_with(Instant::now);
                    let left = opts.degraded_grace.saturating_sub(since.elapsed());
                    if left.is_zero() {
                        return Ok(Wait::Done(Ended::Degraded(Box::new(current), reason)));
                    }
                    recheck.set(Some(left.min(opts.poll)));
                    Ok(Wait::Pending(pending))
                }
                Condition::Pending(_) => {
                    degraded_since = None;
                    Ok(Wait::Pending(pending))
                }
            }
        };
        // The feed paces itself (the stream blocks; polling sleeps), so no pause between looks.
        let report = |l: &str| progress(l);
        match wait::until(Duration::ZERO, observe, judge, &report).await? {
            Ended::Ran(status) => {
                progress(&format!(
                    "{app}: Synced at {} and {}",
                    short(&status.revision),
                    status.health
                ));
                Ok(status)
            }
            Ended::Degraded(current, reason) => {
                let res = self
                    .unhealthy_resources(app, Some(&current))
                    .await
                    .unwrap_or_default();
                Err(ArgoError::Unhealthy {
                    app: app.into(),
                    health: "Degraded".into(),
                    revision: short(&target.merge_sha).into(),
                    resources: if res.is_empty() { reason } else { res },
                })
            }
        }
    }

    /// `Kind/name health: message` for every resource that is not Healthy.
    pub(super) async fn unhealthy_resources(
        &self,
        app: &str,
        current: Option<&Application>,
    ) -> Result<String, ArgoError> {
        let bad: Vec<String> = self
            .resource_health(app, current)
            .await?
            .into_iter()
            .filter(|(_, h)| h.status != "Healthy")
            .map(
                |(name, h)| match h.message.as_deref().filter(|m| !m.is_empty()) {
                    Some(m) => format!("{name} {}: {m}", h.status),
                    None => format!("{name} {}", h.status),
                },
            )
            .collect();
        Ok(bad.join("; "))
    }

    /// `(Kind/name, health)` of the app's resources that have a health: from `status.resources`
    /// when the server stores it there (Argo CD before 3.0, or with
    /// `controller.resource.health.persist`), else from one resource-tree call. One attempt only:
    /// this decorates progress lines and errors, and must not hold up a wait with retries.
    pub(super) async fn resource_health(
        &self,
        app: &str,
        current: Option<&Application>,
    ) -> Result<Vec<(String, HealthStatus)>, ArgoError> {
        let stored: Vec<(String, HealthStatus)> = current
            .map(|a| {
                a.status
                    .resources
                    .iter()
                    .filter_map(|r| Some((format!("{}/{}", r.kind, r.name), r.health.clone()?)))
                    .collect()
            })
            .unwrap_or_default();
        if !stored.is_empty() {
            return Ok(stored);
        }
        let tree: ApplicationTree = self
            .call_json(
                Method::GET,
                &self.app_path(app, "/resource-tree", ""),
                None,
                &format!("resource tree of {app}"),
            )
            .await?;
        Ok(tree
            .nodes
            .into_iter()
            .filter_map(|n| Some((format!("{}/{}", n.kind, n.name), n.health?)))
            .collect())
    }
}

/// How a wait ended, short of an error.
enum Ended {
    /// Synced and Healthy at the target.
    Ran(AppStatus),
    /// Degraded past `degraded-grace`: the resources are named before it is an error.
    Degraded(Box<Application>, String),
}

/// `app: operation Running, sync Synced, health Progressing`: what is seen, without the details
/// that change on every look.
fn state_line(app: &str, current: &Application) -> String {
    let st = &current.status;
    let phase = st
        .operation_state
        .as_ref()
        .map_or("none", |o| o.phase.as_str());
    format!(
        "{app}: operation {phase}, sync {}, health {}",
        or_unknown(&st.sync.status),
        or_unknown(&st.health.status)
    )
}

/// How long `reconciledAt` may stay before the operation's `finishedAt` until the wait asks for
/// one more refresh: the controller reconciles right after an operation, so this long means it
/// missed that requeue.
const STALE_RECONCILE: Duration = Duration::from_secs(5);

/// Where the wait's looks at the app come from: the watch stream while it lasts, else GETs.
struct Feed {
    watch: Option<Subscription>,
    /// Since when the app shows an ended operation not reconciled after it.
    unreconciled_since: Option<Instant>,
    /// Whether the one extra refresh was asked for.
    refreshed: bool,
    /// The first look is a GET: the stream only sends changes.
    first: bool,
    last_state: String,
    resources: String,
}

impl Feed {
    /// Whether `current` shows an ended operation with `reconciledAt` still before its
    /// `finishedAt` for [`STALE_RECONCILE`], and the one extra refresh is not spent: Kargo's
    /// argocd waiter asks for a hard refresh then (pkg/argocd/refresh.go `RequestAppRefresh`: it
    /// makes Argo CD persist `reconciledAt` even when health and sync are unchanged).
    fn stalled(&mut self, current: &Application) -> bool {
        let st = &current.status;
        let unreconciled = st.operation_state.as_ref().is_some_and(|op| {
            current.operation.is_none()
                && op
                    .finished_at
                    .is_some_and(|f| st.reconciled_at.is_none_or(|r| r < f))
        });
        if !unreconciled {
            self.unreconciled_since = None;
            return false;
        }
        let since = *self.unreconciled_since.get_or_insert_with(Instant::now);
        if self.refreshed || since.elapsed() < STALE_RECONCILE {
            return false;
        }
        self.refreshed = true;
        true
    }

    /// The app's next state: a GET at first and after `recheck`, else the next watch event (or a
    /// GET when the stream is quiet for a while, so a missed event cannot stall the wait).
    async fn next(
        &mut self,
        argo: &ArgoCd,
        app: &str,
        opts: &WaitOptions,
        recheck: Option<Duration>,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Application, ArgoError> {
        if std::mem::take(&mut self.first) {
            return argo.get(app).await;
        }
        if let Some(pause) = recheck.filter(|_| self.watch.is_some()) {
            tokio::time::sleep(pause).await;
            return argo.get(app).await;
        }
        let Some(w) = self.watch.as_mut() else {
            tokio::time::sleep(opts.poll).await;
            return argo.get(app).await;
        };
        let quiet = opts.poll.max(Duration::from_secs(5)).min(HEARTBEAT);
        match tokio::time::timeout(quiet, w.next()).await {
            Ok(Ok(Some(a))) => Ok(a),
            Ok(Ok(None)) | Ok(Err(_)) => {
                progress(&format!(
                    "{app}: watch stream ended; polling every {}s",
                    opts.poll.as_secs_f32()
                ));
                self.watch = None;
                argo.get(app).await
            }
            Err(_) => argo.get(app).await,
        }
    }
}
