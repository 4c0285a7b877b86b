//! Argo CD API emulator (issue #3). Stub: filled in by the Argo CD work.

use crate::world::World;
use std::sync::Arc;

/// Emulator state: applications, operations, health rules, sessions.
pub struct ArgoCd {
    /// The repos apps deploy from.
    pub world: Arc<World>,
    /// The git host base URL, the prefix of every app's `repoURL`.
    pub git_url: String,
}

impl ArgoCd {
    /// A new emulator over `world`.
    pub fn new(world: Arc<World>, git_url: String) -> Arc<ArgoCd> {
        Arc::new(ArgoCd { world, git_url })
    }

    /// Creates the seeded apps `app` (manual) and `app-auto` (automated), Synced and Healthy.
    pub fn seed(&self) -> anyhow::Result<()> {
        Ok(())
    }

    /// The bearer token the API accepts.
    pub fn token(&self) -> &str {
        "argocd-sandbox-token"
    }

    /// The `admin` password for the session API.
    pub fn password(&self) -> &str {
        "sandbox-password"
    }

    /// The `image.tag` currently deployed for `app`, read at its synced revision.
    pub fn deployed_tag(&self, app: &str) -> Option<String> {
        let _ = app;
        None
    }
}

/// The REST API routes.
pub fn router(a: Arc<ArgoCd>) -> axum::Router {
    let _ = a;
    axum::Router::new()
}

/// Control routes, nested at `/_sandbox/argocd`.
pub fn control_routes(a: Arc<ArgoCd>) -> axum::Router {
    let _ = a;
    axum::Router::new()
}
