//! The application stream (`/api/v1/stream/applications`): newline-delimited JSON events, ADDED
//! for every app that matches, then MODIFIED on each change, until the client goes or a control
//! call drops every stream.

use super::routes::{permission_denied, selector_matches, ListQuery};
use super::ArgoCd;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::broadcast;

/// One event of the stream, as grpc-gateway frames a server-streaming answer.
fn line(kind: &str, app: &Value) -> Result<Bytes, std::io::Error> {
    let mut s = serde_json::to_vec(&json!({"result": {"type": kind, "application": app}})).unwrap();
    s.push(b'\n');
    Ok(Bytes::from(s))
}

/// Streams the apps `name` or `selector` picks; an unknown `name` is denied, as on `get`.
pub(super) async fn watch(State(a): State<Arc<ArgoCd>>, Query(q): Query<ListQuery>) -> Response {
    let rx = a.events.subscribe();
    let filter = q.name.clone().filter(|n| !n.is_empty());
    let initial: Vec<Value> = {
        let inner = a.inner.lock().unwrap();
        inner
            .apps
            .values()
            .filter(|app| filter.as_deref().is_none_or(|n| n == app.name))
            .filter(|app| q.selects(&app.labels))
            .map(|app| a.render(app, inner.resource_version))
            .collect()
    };
    if filter.is_some() && initial.is_empty() {
        return permission_denied();
    }
    let first: Vec<_> = initial.iter().map(|app| line("ADDED", app)).collect();
    let selector = q.selector.clone();
    let mut dropped = a.drop_watch.subscribe();
    dropped.borrow_and_update();
    let rest = futures_util::stream::unfold((rx, dropped), move |(mut rx, mut dropped)| {
        let filter = filter.clone();
        let selector = selector.clone();
        async move {
            loop {
                let event = tokio::select! {
                    e = rx.recv() => e,
                    _ = dropped.changed() => return None,
                };
                match event {
                    Ok((name, app)) => {
                        if filter.as_deref().is_some_and(|n| n != name) {
                            continue;
                        }
                        if let Some(s) = &selector {
                            let labels: BTreeMap<String, String> =
                                serde_json::from_value(app["metadata"]["labels"].clone())
                                    .unwrap_or_default();
                            if !selector_matches(s, &labels) {
                                continue;
                            }
                        }
                        return Some((line("MODIFIED", &app), (rx, dropped)));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    let stream = futures_util::StreamExt::chain(futures_util::stream::iter(first), rest);
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}
