//! Ruleset bypass actors: a second token, its own identity, listed in a ruleset's `bypass_actors`
//! with `bypass_mode: always`. GitHub lets such an actor merge through the REST API although the
//! ruleset's rules are not met (openapi.json `repository-ruleset-bypass-actor`; "always" allows
//! the bypass, `pull_request` only on pull requests; petry-projects/.github#203: a bot's direct
//! merge is rejected until it is a bypass actor of *every* ruleset on the branch). Classic branch
//! protection is not bypassed this way, as GitHub's community answer in discussion #74831 says.

use super::{GitHub, Protection, State};
use std::collections::HashMap;

/// The tokens of bypass actors, and the (repo, branch) rulesets each may bypass.
#[derive(Default)]
pub(super) struct Bypass {
    by_token: HashMap<String, Vec<(String, String)>>,
}

/// The token a REST request was made with, put in its extensions by the auth layer.
#[derive(Clone, Debug)]
pub(super) struct Caller(pub String);

impl GitHub {
    /// Accepts `token` as a second identity that may bypass the ruleset of `repo`'s `branch`
    /// (`bypass_actors` with `bypass_mode: always`); it reads and writes the API as the world's
    /// token does, but git does not know it.
    pub fn allow_bypass(&self, repo: &str, branch: &str, token: &str) {
        let mut st = self.state.lock().unwrap();
        st.bypass
            .by_token
            .entry(token.to_string())
            .or_default()
            .push((repo.to_string(), branch.to_string()));
    }

    /// Whether `token` is a bypass actor's token.
    pub(super) fn is_bypass_token(&self, token: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .bypass
            .by_token
            .contains_key(token)
    }
}

/// Runs `f` (the merge check) with the ruleset on `repo`'s `branch` set aside when `caller` may
/// bypass it, and puts it back whatever `f` answers.
pub(super) fn as_caller<T>(
    st: &mut State,
    repo: &str,
    branch: &str,
    caller: Option<&Caller>,
    f: impl FnOnce(&mut State) -> T,
) -> T {
    let key = (repo.to_string(), branch.to_string());
    let bypasses = caller
        .and_then(|c| st.bypass.by_token.get(&c.0))
        .is_some_and(|keys| keys.contains(&key));
    let set_aside: Option<Protection> = if bypasses {
        st.rulesets.remove(&key)
    } else {
        None
    };
    let out = f(st);
    if let Some(r) = set_aside {
        st.rulesets.insert(key, r);
    }
    out
}

/// The control route `PUT /repos/{o}/{r}/rulesets/{b}/bypass` (`{"token": "..."}`), merged into
/// the GitHub control routes.
pub(super) fn control_routes(gh: std::sync::Arc<GitHub>) -> axum::Router {
    use axum::extract::{Path, State as S};
    use axum::http::StatusCode;
    axum::Router::new()
        .route(
            "/repos/{o}/{r}/rulesets/{b}/bypass",
            axum::routing::put(
                |S(gh): S<std::sync::Arc<GitHub>>,
                 Path((o, r, b)): Path<(String, String, String)>,
                 axum::Json(v): axum::Json<serde_json::Value>| async move {
                    match v["token"].as_str() {
                        Some(t) if !t.is_empty() => {
                            gh.allow_bypass(&format!("{o}/{r}"), &b, t);
                            StatusCode::NO_CONTENT
                        }
                        _ => StatusCode::UNPROCESSABLE_ENTITY,
                    }
                },
            ),
        )
        .with_state(gh)
}
