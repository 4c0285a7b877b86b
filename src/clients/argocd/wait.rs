//! The wait: feed the pure condition from the watch stream (polling when there is none) until the
//! app runs the merge Healthy, and name the unhealthy resources when it does not.

use super::*;
use crate::base::text::short;
use http::Method;
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
        let last = Mutex::new(String::from("nothing seen yet"));
        let started = Instant::now();
        let run = self.wait_loop(app, target, opts, progress, &last, started);
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

    /// The loop behind [`ArgoCd::wait`]; it has no timeout of its own.
    pub(super) async fn wait_loop(
        &self,
        app: &str,
        target: &Target,
        opts: &WaitOptions,
        progress: &(dyn Fn(&str) + Send + Sync),
        last: &Mutex<String>,
        started: Instant,
    ) -> Result<AppStatus, ArgoError> {
        let mut watch = match self.watch(app).await {
            Ok(w) => Some(w),
            Err(e) => {
                progress(&format!(
                    "{app}: watch unavailable ({e}); polling every {}s",
                    opts.poll.as_secs_f32()
                ));
                None
            }
        };
        let mut degraded_since: Option<Instant> = None;
        let mut last_line = String::new();
        let mut last_print = Instant::now();
        let mut resources = String::from("resources ?");
        // GET next instead of reading the stream: at the start, and while a grace period runs out.
        let mut get_next = true;
        loop {
            let current = if std::mem::take(&mut get_next) {
                self.get(app).await?
            } else if let Some(w) = watch.as_mut() {
                match tokio::time::timeout(
                    opts.poll.max(Duration::from_secs(5)).min(HEARTBEAT),
                    w.next(),
                )
                .await
                {
                    Ok(Ok(Some(a))) => a,
                    Ok(Ok(None)) | Ok(Err(_)) => {
                        progress(&format!(
                            "{app}: watch stream ended; polling every {}s",
                            opts.poll.as_secs_f32()
                        ));
                        watch = None;
                        self.get(app).await?
                    }
                    // Quiet stream: look anyway, so a missed event cannot stall the wait.
                    Err(_) => self.get(app).await?,
                }
            } else {
                tokio::time::sleep(opts.poll).await;
                self.get(app).await?
            };
            let cond = is_synced_healthy_at(Some(&current), target);
            let st = &current.status;
            let phase = st
                .operation_state
                .as_ref()
                .map_or("none", |o| o.phase.as_str())
                .to_string();
            let state = format!(
                "{app}: operation {phase}, sync {}, health {}",
                or_unknown(&st.sync.status),
                or_unknown(&st.health.status)
            );
            if state != last_line {
                if let Ok(health) = self.resource_health(app, Some(&current)).await {
                    let ok = health.iter().filter(|(_, h)| h.status == "Healthy").count();
                    resources = format!("resources {ok}/{} healthy", health.len());
                }
            }
            *last.lock().unwrap() = format!("{state}, {resources}");
            if state != last_line || last_print.elapsed() >= HEARTBEAT {
                let elapsed = started.elapsed();
                let remaining = opts.health_timeout.saturating_sub(elapsed);
                progress(&format!(
                    "{state}, {resources}, waiting for {} ({}), elapsed {}s, remaining {}s",
                    short(&target.merge_sha),
                    match &cond {
                        Condition::Done => "done".to_string(),
                        Condition::Pending(r) | Condition::Degraded(r) | Condition::Failed(r) =>
                            r.clone(),
                    },
                    elapsed.as_secs(),
                    remaining.as_secs()
                ));
                last_line = state;
                last_print = Instant::now();
            }
            match cond {
                Condition::Done => {
                    let synced = st
                        .operation_state
                        .as_ref()
                        .and_then(|o| o.sync_result.as_ref())
                        .and_then(|r| r.revision.clone().or_else(|| r.revisions.first().cloned()));
                    // An app the merge left unchanged ran no operation: its compared revision.
                    let compared = st
                        .sync
                        .revision
                        .clone()
                        .or_else(|| st.sync.revisions.first().cloned());
                    let rev = if unchanged_at(&current, target) {
                        compared
                    } else {
                        synced
                    }
                    .unwrap_or_default();
                    return Ok(AppStatus {
                        name: app.into(),
                        revision: rev,
                        health: st.health.status.clone(),
                        sync: st.sync.status.clone(),
                    });
                }
                Condition::Failed(reason) => {
                    return Err(ArgoError::SyncFailed {
                        app: app.into(),
                        reason,
                    })
                }
                Condition::Degraded(reason) => {
                    let since = *degraded_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= opts.degraded_grace {
                        let res = self
                            .unhealthy_resources(app, Some(&current))
                            .await
                            .unwrap_or_default();
                        return Err(ArgoError::Unhealthy {
                            app: app.into(),
                            health: "Degraded".into(),
                            revision: short(&target.merge_sha).into(),
                            resources: if res.is_empty() { reason } else { res },
                        });
                    }
                    if watch.is_some() {
                        // The grace period may end without another event: poll until it does.
                        let left = opts.degraded_grace.saturating_sub(since.elapsed());
                        tokio::time::sleep(left.min(opts.poll)).await;
                        get_next = true;
                    }
                }
                Condition::Pending(_) => degraded_since = None,
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
