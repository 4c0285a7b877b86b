//! The sandbox: local stand-ins for what gitops-promote talks to, reached through real HTTP.
//! - [`git_host`]: real git over smart HTTP (lighttpd + `git http-backend`);
//! - [`github`]: a GitHub REST emulator over the same bare repos, merging with real git;
//! - [`argocd`]: an Argo CD API emulator that deploys what the repo holds at a revision;
//! - [`metrics`]: an exporter whose error ratio follows the deployed version, and Debian's Prometheus.
//!
//! [`Sandbox::start`] runs all of them on free loopback ports on a runtime of their own, so tests
//! can drive the product binary synchronously. The product never links this crate.

pub mod argocd;
pub mod contract;
pub mod demo;
pub mod faults;
pub mod git_host;
pub mod github;
pub mod metrics;
pub mod proxy;
pub mod world;

use anyhow::{Context, Result};
use std::sync::Arc;

pub use faults::{Call, Fault, FaultRule, Faults};
pub use world::World;

/// What to start besides git, GitHub and Argo CD.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Also start the metrics exporter's Prometheus (first scrape lands ~5 s after start).
    pub prometheus: bool,
}

/// The universe a test or the demo runs gitops-promote in. Dropping it stops every server.
pub struct Sandbox {
    /// Bare repos and the token.
    pub world: Arc<World>,
    /// Fault rules and the call log of every emulator.
    pub faults: Arc<Faults>,
    /// GitHub emulator state.
    pub github: Arc<github::GitHub>,
    /// Argo CD emulator state.
    pub argocd: Arc<argocd::ArgoCd>,
    /// The GitHub REST base URL.
    pub github_api_url: String,
    /// The same GitHub on one host shaped as GitHub Enterprise Server's: REST at
    /// `{ghes_url}/api/v3`, clone URLs `{ghes_url}/{owner}/{name}.git`.
    pub ghes_url: String,
    /// The Argo CD API base URL.
    pub argocd_url: String,
    /// The metrics exporter's base URL (`/metrics`).
    pub exporter_url: String,
    /// Prometheus, when started.
    pub prometheus: Option<metrics::Prometheus>,
    git: git_host::GitHost,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Sandbox {
    /// Starts every part with the seeded world of DESIGN.md §9 and waits until each answers.
    pub fn start(opts: Options) -> Result<Sandbox> {
        let world = Arc::new(World::new()?);
        world.seed()?;
        let git = git_host::GitHost::start(&world.repos_dir, &world.token)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("sandbox")
            .build()?;
        let faults = Arc::new(Faults::default());
        let github = github::GitHub::new(world.clone(), git.url.clone());
        let argocd = argocd::ArgoCd::new(world.clone(), git.url.clone());
        argocd.seed()?;

        let (github_api_url, argocd_url, exporter_url, ghes_url) = runtime.block_on(async {
            let gh_router = github::router(github.clone())
                .merge(github::graphql_router(github.clone(), "/graphql"))
                .nest("/_sandbox", control_router(&faults, &github, &argocd))
                .layer(axum::middleware::from_fn_with_state(
                    faults::Layer {
                        service: "github",
                        faults: faults.clone(),
                    },
                    faults::middleware,
                ));
            let argo_router =
                argocd::router(argocd.clone()).layer(axum::middleware::from_fn_with_state(
                    faults::Layer {
                        service: "argocd",
                        faults: faults.clone(),
                    },
                    faults::middleware,
                ));
            let exporter_router = metrics::exporter_router(argocd.clone());
            // One host as GitHub Enterprise Server lays it out: REST under /api/v3, git at
            // /OWNER/REPO.git on the same host (proxied to the git host), the same emulator state.
            let ghes_router = axum::Router::new()
                .nest(
                    github::GHES_PREFIX,
                    github::router(github.clone()).layer(axum::middleware::from_fn_with_state(
                        faults::Layer {
                            service: "github",
                            faults: faults.clone(),
                        },
                        faults::middleware,
                    )),
                )
                // GHES serves GraphQL at http(s)://HOSTNAME/api/graphql (docs.github.com,
                // Enterprise Server "Forming calls with GraphQL").
                .merge(
                    github::graphql_router(github.clone(), "/api/graphql").layer(
                        axum::middleware::from_fn_with_state(
                            faults::Layer {
                                service: "github",
                                faults: faults.clone(),
                            },
                            faults::middleware,
                        ),
                    ),
                )
                .fallback_service(metrics::proxy_router(&git.url));
            Ok::<_, anyhow::Error>((
                serve(gh_router).await?,
                serve(argo_router).await?,
                serve(exporter_router).await?,
                serve(ghes_router).await?,
            ))
        })?;
        let prometheus = if opts.prometheus {
            let mut p = metrics::Prometheus::start(&exporter_url).context("starting Prometheus")?;
            // Clients reach Prometheus through a proxy with the fault layer, like every emulator.
            let proxy =
                metrics::proxy_router(&p.direct_url).layer(axum::middleware::from_fn_with_state(
                    faults::Layer {
                        service: "prometheus",
                        faults: faults.clone(),
                    },
                    faults::middleware,
                ));
            p.url = runtime.block_on(serve(proxy))?;
            Some(p)
        } else {
            None
        };
        Ok(Sandbox {
            world,
            faults,
            github,
            argocd,
            github_api_url,
            ghes_url,
            argocd_url,
            exporter_url,
            prometheus,
            git,
            runtime: Some(runtime),
        })
    }

    /// The git host's base URL; clone URLs are `{git_url}/{owner}/{name}.git`.
    pub fn git_url(&self) -> &str {
        &self.git.url
    }

    /// The control API's base URL.
    pub fn control_url(&self) -> String {
        format!("{}/_sandbox", self.github_api_url)
    }

    /// The `KEY=VALUE` pairs `sandbox serve` prints (DESIGN.md §9), in that order.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("GITHUB_API_URL", self.github_api_url.clone()),
            ("GITHUB_SERVER_URL", self.git.url.clone()),
            ("GITHUB_TOKEN", self.world.token.clone()),
            ("GITHUB_REPOSITORY", world::SEED_REPO.to_string()),
            ("ARGOCD_SERVER", self.argocd_url.clone()),
            ("ARGOCD_AUTH_TOKEN", self.argocd.token().to_string()),
            ("ARGOCD_PASSWORD", self.argocd.password().to_string()),
        ];
        if let Some(p) = &self.prometheus {
            env.push(("PROMETHEUS_URL", p.url.clone()));
        }
        env.push(("SANDBOX_CONTROL", self.control_url()));
        env
    }

    /// Runs a future on the sandbox's runtime, e.g. to await a condition from a synchronous test.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.as_ref().expect("runtime").block_on(f)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.prometheus = None;
        if let Some(rt) = self.runtime.take() {
            // Dropping a runtime inside another one panics; this is safe from sync and async tests.
            rt.shutdown_background();
        }
    }
}

/// Every control route, nested under `/_sandbox` on the GitHub emulator's port.
fn control_router(
    faults: &Arc<Faults>,
    gh: &Arc<github::GitHub>,
    argo: &Arc<argocd::ArgoCd>,
) -> axum::Router {
    faults::control_routes(faults.clone())
        .nest("/github", github::control_routes(gh.clone()))
        .nest("/argocd", argocd::control_routes(argo.clone()))
}

/// Binds `127.0.0.1:0`, serves `router` in the background and returns its base URL.
async fn serve(router: axum::Router) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("sandbox server stopped: {e}");
        }
    });
    Ok(url)
}
