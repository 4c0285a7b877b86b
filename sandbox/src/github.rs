//! GitHub REST emulator over the world's bare repos (issue #3). Stub: filled in by the GitHub work.

use crate::world::World;
use std::sync::Arc;

/// Emulator state: pull requests, reviews, checks, protection, comments.
pub struct GitHub {
    /// The repos it serves.
    pub world: Arc<World>,
    /// The git host base URL, for `clone_url` fields.
    pub git_url: String,
}

impl GitHub {
    /// A new emulator over `world`.
    pub fn new(world: Arc<World>, git_url: String) -> Arc<GitHub> {
        Arc::new(GitHub { world, git_url })
    }
}

/// The REST API routes.
pub fn router(gh: Arc<GitHub>) -> axum::Router {
    let _ = gh;
    axum::Router::new()
}

/// Control routes, nested at `/_sandbox/github`.
pub fn control_routes(gh: Arc<GitHub>) -> axum::Router {
    let _ = gh;
    axum::Router::new()
}
