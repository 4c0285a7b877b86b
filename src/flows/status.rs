//! The `status` command (DESIGN.md §1): a drift check. Each app must be Synced at the base branch's
//! head commit and Healthy; an app that is not is polled until `grace` has passed, then the step
//! fails naming every drifting app with its revision, sync status and health.
//!
//! "At the head" means equal: an app synced to an older commit lags, whatever it contains. The
//! head is read again on every poll, so a push during the check moves the goal instead of
//! failing on a stale one. It only reads: it never syncs or refreshes.

use crate::base::text::short;
use crate::base::wait::{self, Pending, Wait};
use crate::base::{humantime, md_cell};
use crate::base::{ErrorKind, StepError};
use crate::clients::argocd::{AppRef, AppStatus, ArgoCd};
use crate::clients::git;
use crate::clients::runtime::Runtime;
use crate::config::Config;
use crate::steps;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Time between polls while an app drifts.
const POLL: Duration = Duration::from_secs(2);

/// Runs the check.
///
/// # Errors
/// `sync` (or `health` when every drifting app is only unhealthy) naming each drifting app once
/// `grace` has passed; connection and lookup errors as they are classified.
pub async fn run(cfg: &Config, rt: &mut Runtime) -> Result<(), StepError> {
    let settings = cfg.argocd.as_ref().ok_or_else(|| {
        StepError::msg(
            "status",
            ErrorKind::Config,
            "input 'argocd-server': required for status",
        )
    })?;
    let gh = steps::connect_github(cfg)?;
    let base = steps::resolve_base(&gh, cfg).await?;
    let argo = steps::connect_argocd(settings).await?;
    let apps = steps::find_apps(&argo, settings).await?;
    let remote = steps::remote(cfg, &cfg.repository.to_string());
    let checkout = {
        let base = base.clone();
        tokio::task::spawn_blocking(move || git::clone_base(&remote, &base, 1))
            .await
            .expect("clone task")
            .map_err(|e| StepError::new("read the base head", &e))?
    };
    let checkout = Arc::new(Mutex::new(checkout));
    let observe = async || -> Result<(String, Vec<AppStatus>), StepError> {
        let c = checkout.clone();
        let head = tokio::task::spawn_blocking(move || c.lock().unwrap().fetch_base())
            .await
            .expect("fetch task")
            .map_err(|e| StepError::new("read the base head", &e))?
            .to_string();
        Ok((head, look(&argo, &apps).await?))
    };
    let grace = cfg.grace;
    let judge = |(head, seen): (String, Vec<AppStatus>), elapsed: Duration| {
        let drifting: Vec<String> = seen.iter().filter_map(|s| s.drift(&head)).collect();
        if drifting.is_empty() || elapsed >= grace {
            return Ok::<_, StepError>(Wait::Done((head, seen, drifting)));
        }
        Ok(Wait::Pending(
            Pending::new(format!(
                "waiting for {}: {}",
                short(&head),
                drifting.join("; ")
            ))
            .with_tail(format!(
                " ({} elapsed, {} of grace left)",
                humantime(elapsed),
                humantime(grace - elapsed)
            )),
        ))
    };
    let (head, seen, drifting) = wait::until(POLL, observe, judge, &|l: &str| rt.info(l)).await?;
    if !drifting.is_empty() {
        steps::app_outputs(rt, &seen)?;
        rt.summary(&table(&base, &head, &seen, false));
        let only_health = seen
            .iter()
            .filter(|s| s.drift(&head).is_some())
            .all(|s| s.sync == "Synced" && s.revision == head);
        let mut e = StepError::msg(
            "status",
            if only_health {
                ErrorKind::Health
            } else {
                ErrorKind::Sync
            },
            format!(
                "after grace {}, {} of {} app(s) drift from {base} at {}: {}",
                humantime(cfg.grace),
                drifting.len(),
                seen.len(),
                short(&head),
                drifting.join("; ")
            ),
        );
        e.hint =
            Some("sync the apps (or promote again), or look in Argo CD for why they lag".into());
        return Err(e);
    }
    rt.info(&format!(
        "every app is Synced at {base} head {} and Healthy: {}",
        short(&head),
        seen.iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    steps::app_outputs(rt, &seen)?;
    rt.summary(&table(&base, &head, &seen, true));
    Ok(())
}

/// Reads every app once, concurrently.
async fn look(argo: &ArgoCd, apps: &[AppRef]) -> Result<Vec<AppStatus>, StepError> {
    let reads = apps.iter().map(|a| async move {
        argo.get(&a.name)
            .await
            .map(|app| AppStatus::of(&app, argo.release_repo()))
            .map_err(|e| StepError::new("status", &e))
    });
    futures_util::future::try_join_all(reads).await
}

/// The summary: a verdict line and one table row per app.
fn table(base: &str, head: &str, seen: &[AppStatus], ok: bool) -> String {
    let verdict = if ok {
        "**In sync**: every app is Synced at the head and Healthy."
    } else {
        "**Drift**: some apps are not Synced at the head, or not Healthy."
    };
    let mut s = format!(
        "## gitops-promote status\n\n{verdict}\n\n`{base}` head: `{}`\n\n| app | sync | revision | health | |\n|---|---|---|---|---|\n",
        short(head)
    );
    for a in seen {
        let mark = if a.drift(head).is_none() {
            "✅"
        } else {
            "❌"
        };
        s.push_str(&format!(
            "| {} | {} | `{}` | {} | {mark} |\n",
            md_cell(&a.name),
            md_cell(&a.sync),
            md_cell(short(&a.revision)),
            md_cell(&a.health)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(json: serde_json::Value) -> AppStatus {
        AppStatus::of(&serde_json::from_value(json).unwrap(), None)
    }

    const HEAD: &str = "1111111111111111111111111111111111111111";
    const OLD: &str = "2222222222222222222222222222222222222222";

    #[test]
    fn synced_at_the_head_and_healthy_is_no_drift() {
        let a = app(serde_json::json!({"metadata": {"name": "web"},
            "status": {"sync": {"status": "Synced", "revision": HEAD}, "health": {"status": "Healthy"}}}));
        assert_eq!(a.drift(HEAD), None);
    }

    #[test]
    fn an_app_behind_the_head_drifts_with_its_revision() {
        let a = app(serde_json::json!({"metadata": {"name": "web"},
            "status": {"sync": {"status": "OutOfSync", "revision": OLD}, "health": {"status": "Healthy"}}}));
        assert_eq!(
            a.drift(HEAD).as_deref(),
            Some("web: OutOfSync, at 222222222222 (head 111111111111), Healthy")
        );
    }

    #[test]
    fn an_unhealthy_app_at_the_head_drifts() {
        let a = app(serde_json::json!({"metadata": {"name": "web"},
            "status": {"sync": {"status": "Synced", "revision": HEAD}, "health": {"status": "Degraded"}}}));
        assert_eq!(a.drift(HEAD).as_deref(), Some("web: Degraded"));
    }

    #[test]
    fn a_server_status_with_pipes_and_newlines_keeps_the_table_shape() {
        let a = app(serde_json::json!({"metadata": {"name": "web"},
            "status": {"sync": {"status": "Out|Of\nSync", "revision": HEAD}, "health": {"status": "Bad\r\n| x | y |"}}}));
        let t = table("main", HEAD, &[a], false);
        let row = t.lines().last().unwrap();
        assert_eq!(
            row,
            "| web | Out\\|Of Sync | `111111111111` | Bad \\| x \\| y \\| | ❌ |"
        );
    }

    #[test]
    fn an_app_never_compared_drifts() {
        let a = app(serde_json::json!({"metadata": {"name": "web"}}));
        assert_eq!(
            a.drift(HEAD).as_deref(),
            Some("web: sync status unknown, at no revision, health unknown")
        );
    }
}
