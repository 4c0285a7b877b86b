//! The deploy: sync every app, wait until each is Synced at a revision containing the merge and
//! Healthy, and write the app outputs.

use crate::base::text::short;
use crate::base::wait::{self, Pending, Wait};
use crate::base::{Classify, ErrorKind, StepError};
use crate::clients::argocd::{self, AppRef, AppStatus, ArgoCd, Target, WaitOptions, Watcher};
use crate::clients::runtime::Runtime;
use crate::config::{Config, SyncMode};
use std::time::{Duration, Instant};

/// Syncs every app concurrently (DESIGN.md §2.9): auto-sync apps get a hard refresh (and with
/// `sync: always` a sync without revision, as Argo CD refuses another one); the others a sync to
/// `revision`, named only when the app does not track `base` (the merge is then its head, and
/// since Argo CD 3.3 a sync naming a revision may need the `override` right). A sync a deny window
/// blocks is tried again until `health-timeout`.
pub async fn sync_apps(
    cfg: &Config,
    rt: &Runtime,
    argo: &ArgoCd,
    apps: &[AppRef],
    revision: &str,
    base: &str,
) -> Result<(), StepError> {
    if cfg.sync == SyncMode::Never {
        rt.info("sync: never, so only waiting");
        return Ok(());
    }
    let syncs = apps.iter().map(|app| async move {
        if app.auto_sync && cfg.sync == SyncMode::Auto {
            rt.info(&format!(
                "{}: auto-sync is on; refreshing so it picks up {}",
                app.name,
                short(revision)
            ));
            // A normal refresh re-reads the revision, which is all a new commit needs; a hard one
            // also drops the repo server's manifest cache, costly on a large repo.
            match argo.refresh(&app.name, false).await {
                Ok(_) => Ok(()),
                // The refresh was asked for; the wait that follows has its own limit.
                Err(e) if e.kind() == ErrorKind::Timeout => {
                    rt.info(&format!(
                        "{}: the refresh is slow (a busy controller answers it once it has reconciled): waiting for the app anyway",
                        app.name
                    ));
                    Ok(())
                }
                Err(e) => Err(StepError::new("sync", &e)),
            }
        } else {
            let tracks_base = app.target_revision == base
                || (cfg.base.is_none() && matches!(app.target_revision.as_str(), "" | "HEAD"));
            let req = argocd::SyncRequest {
                revision: (!app.auto_sync && !tracks_base).then(|| revision.to_string()),
                prune: cfg.prune,
                sync_options: cfg.sync_options.clone(),
            };
            rt.info(&format!("{}: syncing to {}", app.name, short(revision)));
            sync_past_windows(cfg, rt, argo, app, &req).await
        }
    });
    futures_util::future::try_join_all(syncs).await.map(|_| ())
}

/// How often a sync a deny window blocks is tried again.
const WINDOW_RETRY: Duration = Duration::from_secs(10);

/// Syncs `app`, waiting out a deny sync window that ends within `health-timeout`.
async fn sync_past_windows(
    cfg: &Config,
    rt: &Runtime,
    argo: &ArgoCd,
    app: &AppRef,
    req: &argocd::SyncRequest,
) -> Result<(), StepError> {
    let observe = async || Ok::<_, StepError>(argo.sync(app, req).await);
    let judge = |sent: Result<(), argocd::ArgoError>, elapsed: Duration| match sent {
        Ok(()) => Ok(Wait::Done(())),
        Err(e) if e.is_sync_window() && elapsed < cfg.health_timeout => Ok(Wait::Pending(
            Pending::new(format!(
                "{}: a sync window blocks syncs; trying again every {}s",
                app.name,
                WINDOW_RETRY.as_secs()
            ))
            .with_tail(format!(
                ", {}s of health-timeout left",
                cfg.health_timeout.saturating_sub(elapsed).as_secs()
            )),
        )),
        Err(e) => Err(StepError::new("sync", &e)),
    };
    wait::until(WINDOW_RETRY, observe, judge, &|l: &str| rt.info(l)).await
}

/// Waits for every app concurrently until it is Synced at a revision containing `sha`, and Healthy.
pub async fn wait_apps(
    cfg: &Config,
    rt: &Runtime,
    argo: &ArgoCd,
    apps: &[AppRef],
    target: impl Fn(&AppRef) -> Target,
) -> Result<Vec<AppStatus>, StepError> {
    let opts = WaitOptions {
        health_timeout: cfg.health_timeout,
        degraded_grace: cfg.degraded_grace,
        poll: Duration::from_secs(2),
    };
    let progress = |line: &str| rt.info(line);
    let started = Instant::now();
    let names: Vec<String> = apps.iter().map(|a| a.name.clone()).collect();
    let settings = cfg.argocd.as_ref();
    let selector = settings.and_then(|s| s.selector.as_deref());
    let by_selector = settings.is_some_and(|s| s.apps.is_empty());
    let watcher = shared_watcher(rt, argo, &names, selector, by_selector).await;
    let waits = apps.iter().map(|app| {
        let (target, opts, progress, watcher) = (target(app), &opts, &progress, watcher.as_ref());
        async move {
            let status = argo
                .wait_on(watcher, &app.name, &target, opts, progress)
                .await
                .map_err(|e| StepError::new("wait", &e))?;
            // A rollback through history returns the parent alone; its children still track git.
            if !target.from_history {
                wait_children(cfg, rt, argo, &app.name, &target, started).await?;
            }
            Ok(status)
        }
    });
    futures_util::future::try_join_all(waits).await
}

/// One watch stream for the waits of `names` (50 apps, one connection); `None` when it cannot be
/// opened, and each wait then polls.
async fn shared_watcher(
    rt: &Runtime,
    argo: &ArgoCd,
    names: &[String],
    selector: Option<&str>,
    by_selector: bool,
) -> Option<Watcher> {
    match argo.watcher(names, selector, by_selector).await {
        Ok(w) => Some(w),
        Err(e) => {
            rt.info(&format!(
                "the shared watch stream is unavailable ({e}); each app watches on its own"
            ));
            None
        }
    }
}

/// How deep an app of apps is followed: the app, its children, and theirs.
const APP_LEVELS: usize = 3;

/// Waits for the child Applications among `parent`'s resources, and theirs, to [`APP_LEVELS`]:
/// Argo CD has no health check for Application CRs since 1.8 (docs operator-manual/health.md),
/// so a parent is Healthy whatever its children do. A child tracking the release repo is
/// refreshed or synced as the apps are, then waited for at the merge; another is waited for
/// Synced and Healthy. The limit is what is left of `health-timeout`.
///
/// # Errors
/// The child's wait error, naming the child and its parent.
async fn wait_children(
    cfg: &Config,
    rt: &Runtime,
    argo: &ArgoCd,
    parent: &str,
    target: &Target,
    started: Instant,
) -> Result<(), StepError> {
    let mut seen = vec![parent.to_string()];
    let mut parents = vec![parent.to_string()];
    for _ in 1..APP_LEVELS {
        let mut level: Vec<(String, String)> = Vec::new();
        for p in &parents {
            let a = argo.get(p).await.map_err(|e| StepError::new("wait", &e))?;
            for c in a.child_apps() {
                if !seen.contains(&c) {
                    seen.push(c.clone());
                    level.push((p.clone(), c));
                }
            }
        }
        if level.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = level.iter().map(|(_, c)| c.as_str()).collect();
        rt.info(&format!(
            "{parent}: an app of apps; waiting for its child apps too, as their health does not reach it: {}",
            names.join(", ")
        ));
        let opts = WaitOptions {
            health_timeout: cfg.health_timeout.saturating_sub(started.elapsed()),
            degraded_grace: cfg.degraded_grace,
            poll: Duration::from_secs(2),
        };
        let progress = |line: &str| rt.info(line);
        let children: Vec<String> = level.iter().map(|(_, c)| c.clone()).collect();
        let watcher = shared_watcher(rt, argo, &children, None, false).await;
        let waits = level.iter().map(|(p, c)| {
            let (opts, progress, watcher) = (&opts, &progress, watcher.as_ref());
            let named = move |mut e: StepError| {
                e.message = format!("child app {c} of {p}: {}", e.message);
                e
            };
            async move {
                let child = argo
                    .get(c)
                    .await
                    .map_err(|e| named(StepError::new("wait", &e)))?;
                let goal = if argo.tracks_release_repo(&child) {
                    let r = argo.app_ref(&child);
                    let tracked = r.target_revision.clone();
                    sync_apps(cfg, rt, argo, &[r], &target.merge_sha, &tracked)
                        .await
                        .map_err(named)?;
                    target.clone()
                } else {
                    Target::any(&target.merge_sha)
                };
                argo.wait_on(watcher, c, &goal, opts, progress)
                    .await
                    .map_err(|e| named(StepError::new("wait", &e)))
            }
        });
        futures_util::future::try_join_all(waits).await?;
        parents = level.into_iter().map(|(_, c)| c).collect();
    }
    Ok(())
}

/// Writes `apps` (JSON), `synced-revision` (the first app's) and `health`.
pub fn app_outputs(rt: &mut Runtime, statuses: &[AppStatus]) -> Result<(), StepError> {
    let apps: Vec<_> = statuses
        .iter()
        .map(|s| serde_json::json!({"name": s.name, "revision": s.revision, "health": s.health, "sync": s.sync}))
        .collect();
    rt.output(
        "apps",
        &serde_json::to_string(&apps).expect("JSON of strings"),
    )?;
    if let Some(first) = statuses.first() {
        rt.output("synced-revision", &first.revision)?;
    }
    // Healthy, or the first other health seen: a summary a workflow can branch on.
    let health = statuses
        .iter()
        .map(|s| s.health.as_str())
        .find(|h| *h != "Healthy")
        .unwrap_or("Healthy");
    rt.output("health", health)
}
