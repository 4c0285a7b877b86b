//! The GraphQL endpoint (`POST /graphql`; `/api/graphql` on the GHES host) and the merge queue
//! behind it, as far as gitops-promote uses them: `enqueuePullRequest`, and `node(id:)` on a
//! `PullRequest` for `merged`, `state`, `mergeCommit { oid }` and `mergeQueueEntry { state }`.
//!
//! Every request is checked against GitHub's published schema
//! (`../shared/contracts/github/graphql/schema.graphql`): each field must exist on its type, each
//! argument on its field, each variable's type in the schema and each key of an input object
//! argument on that input type; a request that breaks it is answered as GitHub answers a query
//! that does not validate (`{"errors": [{"message": "Field 'x' doesn't exist on type 'Y'"}]}`,
//! HTTP 200). Answers hold only the fields the query selected.
//!
//! The queue follows docs.github.com "Managing a merge queue" and "Merging a pull request with a
//! merge queue": with the rule `merge_queue` on the base, the REST merge answers 405 "Changes must
//! be made through the merge queue" (pascalgn/automerge-action#235 quotes it); an enqueued PR gets
//! a merge group, a temporary branch `gh-readonly-queue/{base}/pr-{n}-{head}` holding the base with
//! the PR merged in (real git), the required checks run on that commit, and the base is
//! fast-forwarded to it once they pass (the PR is then merged, `merge_commit_sha` the group's
//! commit); a failing check removes the PR from the queue and leaves it open. The queue advances
//! when it is read, as `mergeable` is computed when read.

use super::{now, GitHub, State};
use git2::{Oid, Repository, Signature};
use graphql_parser::query as q;
use graphql_parser::schema as s;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

/// GitHub's message for a REST merge on a base whose rules require the merge queue.
pub const THROUGH_THE_QUEUE: &str = "Changes must be made through the merge queue";

/// The merge queues: which bases require one (with the checks it waits for), and its entries.
#[derive(Default)]
pub(super) struct Queue {
    required: HashMap<(String, String), Vec<String>>,
    entries: Vec<Entry>,
    /// (repo, PR, reason, when) of each removal from a queue, oldest first.
    removed: Vec<(String, u64, String, String)>,
}

/// One PR in a queue, with its merge group commit.
#[derive(Clone)]
struct Entry {
    repo: String,
    number: u64,
    base_ref: String,
    base_sha: String,
    group_sha: String,
    id: u64,
}

impl GitHub {
    /// Requires the merge queue on `repo`'s `branch` (the ruleset rule `merge_queue`), its merge
    /// groups waiting for `checks` (status contexts or check-run names); `None` removes it.
    pub fn require_merge_queue(&self, repo: &str, branch: &str, checks: Option<&[&str]>) {
        let mut st = self.state.lock().unwrap();
        let key = (repo.to_string(), branch.to_string());
        match checks {
            Some(c) => st
                .queue
                .required
                .insert(key, c.iter().map(|s| s.to_string()).collect()),
            None => st.queue.required.remove(&key),
        };
    }

    /// The merge group commit of PR `n` while it is in the queue, for tests to report checks on.
    pub fn merge_group_sha(&self, repo: &str, n: u64) -> Option<String> {
        let st = self.state.lock().unwrap();
        st.queue
            .entries
            .iter()
            .find(|e| e.repo == repo && e.number == n)
            .map(|e| e.group_sha.clone())
    }
}

/// Whether `repo`'s `branch` requires the merge queue: the REST merge then answers 405.
pub(super) fn required(st: &State, repo: &str, branch: &str) -> bool {
    st.queue
        .required
        .contains_key(&(repo.to_string(), branch.to_string()))
}

/// `POST /graphql`: validate against the schema, then run the one operation.
pub(super) async fn endpoint(
    axum::extract::State(gh): axum::extract::State<std::sync::Arc<GitHub>>,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    axum::Json(answer(&gh, &body))
}

fn gql_error(message: impl Into<String>) -> Value {
    json!({"errors": [{"message": message.into()}]})
}

fn answer(gh: &GitHub, body: &Value) -> Value {
    let Some(text) = body["query"].as_str() else {
        return gql_error("A query attribute must be specified and must be a string.");
    };
    let vars = body["variables"].clone();
    let doc = match q::parse_query::<String>(text) {
        Ok(d) => d,
        Err(e) => return gql_error(format!("Parse error: {e}")),
    };
    let ops: Vec<&q::OperationDefinition<String>> = doc
        .definitions
        .iter()
        .filter_map(|d| match d {
            q::Definition::Operation(o) => Some(o),
            q::Definition::Fragment(_) => None,
        })
        .collect();
    let [op] = ops.as_slice() else {
        return gql_error("the sandbox runs exactly one operation per request");
    };
    let (root, set, var_defs) = match op {
        q::OperationDefinition::Query(x) => ("Query", &x.selection_set, &x.variable_definitions),
        q::OperationDefinition::Mutation(x) => {
            ("Mutation", &x.selection_set, &x.variable_definitions)
        }
        q::OperationDefinition::SelectionSet(x) => ("Query", x, &Vec::new()),
        q::OperationDefinition::Subscription(_) => {
            return gql_error("Subscriptions are not supported")
        }
    };
    if let Some(schema) = schema() {
        let mut problems = Vec::new();
        for v in var_defs {
            let name = named(&v.var_type);
            if !schema.types.contains_key(name) && !BUILT_IN.contains(&name) {
                problems.push(format!(
                    "{name} isn't a defined input type (on ${})",
                    v.name
                ));
            }
        }
        check_set(schema, root, set, &vars, &mut problems);
        if !problems.is_empty() {
            return json!({"errors": problems.iter().map(|p| json!({"message": p})).collect::<Vec<_>>()});
        }
    }
    let mut st = gh.state.lock().unwrap();
    let mut data = Map::new();
    for sel in &set.items {
        let q::Selection::Field(f) = sel else {
            continue;
        };
        let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
        let args = |name: &str| -> Value {
            f.arguments
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| value(v, &vars))
                .unwrap_or(Value::Null)
        };
        let full = match f.name.as_str() {
            "enqueuePullRequest" => match enqueue(gh, &mut st, &args("input")) {
                Ok(v) => v,
                Err(msg) => {
                    return json!({"data": {key.clone(): null}, "errors": [{"type": "UNPROCESSABLE", "path": [key], "message": msg}]})
                }
            },
            "node" => {
                let id = args("id");
                advance(gh, &mut st);
                pull_node(&st, id.as_str().unwrap_or_default())
            }
            other => return gql_error(format!("the sandbox does not serve the field '{other}'")),
        };
        data.insert(key, project(&full, &f.selection_set));
    }
    json!({"data": data})
}

/// `enqueuePullRequest(input: {pullRequestId, expectedHeadOid})`: builds the merge group.
fn enqueue(gh: &GitHub, st: &mut State, input: &Value) -> Result<Value, String> {
    let id = input["pullRequestId"].as_str().unwrap_or_default();
    let i = st
        .pulls
        .iter()
        .position(|p| super::json::node_id("PR", p.id) == id)
        .ok_or_else(|| format!("Could not resolve to a node with the global id of '{id}'"))?;
    let p = st.pulls[i].clone();
    if !p.open {
        return Err("Pull request is closed".into());
    }
    if !required(st, &p.repo, &p.base_ref) {
        return Err(
            "Pull request is not in a mergeable state: the base branch has no merge queue".into(),
        );
    }
    if let Some(want) = input["expectedHeadOid"].as_str() {
        if want != p.head_sha {
            return Err("The expected head OID does not match the pull request's head".into());
        }
    }
    if let Some(e) = st
        .queue
        .entries
        .iter()
        .find(|e| e.repo == p.repo && e.number == p.number)
    {
        return Ok(entry_json(e, "QUEUED"));
    }
    let repo = gh.world.open(&p.repo).map_err(|e| e.to_string())?;
    let base_sha = super::git::branch_sha(&repo, &p.base_ref).unwrap_or(p.base_sha.clone());
    let group = merge_group(
        &repo,
        &p.repo,
        &p.base_ref,
        &base_sha,
        &p.head_ref,
        &p.head_sha,
        p.number,
    )
    .map_err(|e| format!("could not build the merge group: {e}"))?;
    let entry = Entry {
        repo: p.repo.clone(),
        number: p.number,
        base_ref: p.base_ref.clone(),
        base_sha,
        group_sha: group,
        id: st.id(),
    };
    let out = entry_json(&entry, "AWAITING_CHECKS");
    st.queue.entries.push(entry);
    Ok(json!({"clientMutationId": input["clientMutationId"], "mergeQueueEntry": out}))
}

/// The merge group commit: the base with the PR merged in, on `gh-readonly-queue/...`.
fn merge_group(
    repo: &Repository,
    full: &str,
    base_ref: &str,
    base: &str,
    head_ref: &str,
    head: &str,
    n: u64,
) -> anyhow::Result<String> {
    let b = repo.find_commit(Oid::from_str(base)?)?;
    let h = repo.find_commit(Oid::from_str(head)?)?;
    let mut index = repo.merge_commits(&b, &h, None)?;
    anyhow::ensure!(
        !index.has_conflicts(),
        "the pull request conflicts with {base_ref}"
    );
    let tree = repo.find_tree(index.write_tree_to(repo)?)?;
    let who = Signature::now("GitHub", "noreply@github.com")?;
    let owner = full.split('/').next().unwrap_or_default();
    let msg = format!("Merge pull request #{n} from {owner}/{head_ref}\n");
    let oid = repo.commit(None, &who, &who, &msg, &tree, &[&b, &h])?;
    repo.reference(
        &format!("refs/heads/gh-readonly-queue/{base_ref}/pr-{n}-{head}"),
        oid,
        true,
        "merge group",
    )?;
    Ok(oid.to_string())
}

/// What a required check says on `sha`: success, failure or pending.
fn check_state(st: &State, repo: &str, sha: &str, ctx: &str) -> &'static str {
    let key = (repo.to_string(), sha.to_string());
    let run = st
        .checks
        .get(&key)
        .and_then(|v| v.iter().rev().find(|c| c.name == ctx));
    if let Some(c) = run {
        return match (c.status.as_str(), c.conclusion.as_deref()) {
            ("completed", Some("success" | "neutral" | "skipped")) => "success",
            ("completed", _) => "failure",
            _ => "pending",
        };
    }
    match st
        .statuses
        .get(&key)
        .and_then(|v| v.iter().rev().find(|s| s.context == ctx))
        .map(|s| s.state.as_str())
    {
        Some("success") => "success",
        Some("failure" | "error") => "failure",
        _ => "pending",
    }
}

/// Merges the groups whose checks passed (fast-forwarding the base) and removes those whose
/// checks failed or whose base moved under them.
fn advance(gh: &GitHub, st: &mut State) {
    let entries = std::mem::take(&mut st.queue.entries);
    let mut kept = Vec::new();
    for e in entries {
        let checks = st
            .queue
            .required
            .get(&(e.repo.clone(), e.base_ref.clone()))
            .cloned()
            .unwrap_or_default();
        let states: Vec<&str> = checks
            .iter()
            .map(|c| check_state(st, &e.repo, &e.group_sha, c))
            .collect();
        let ref_name = |e: &Entry, head: &str| {
            format!(
                "refs/heads/gh-readonly-queue/{}/pr-{}-{head}",
                e.base_ref, e.number
            )
        };
        let Some(i) = st
            .pulls
            .iter()
            .position(|p| p.repo == e.repo && p.number == e.number)
        else {
            continue;
        };
        let Ok(repo) = gh.world.open(&e.repo) else {
            continue;
        };
        let head = st.pulls[i].head_sha.clone();
        if states.contains(&"failure") {
            // Removed from the queue; the PR stays open (its timeline says why).
            let _ = repo
                .find_reference(&ref_name(&e, &head))
                .and_then(|mut r| r.delete());
            st.queue_removed(&e, "a required check failed on the merge group");
            continue;
        }
        if states.iter().any(|s| *s != "success") {
            kept.push(e);
            continue;
        }
        let group = Oid::from_str(&e.group_sha).expect("our own oid");
        let base = Oid::from_str(&e.base_sha).expect("our own oid");
        let moved = repo
            .reference_matching(
                &format!("refs/heads/{}", e.base_ref),
                group,
                true,
                base,
                "merge queue",
            )
            .is_err();
        let _ = repo
            .find_reference(&ref_name(&e, &head))
            .and_then(|mut r| r.delete());
        if moved {
            st.queue_removed(&e, "the base branch moved under the merge group");
            continue;
        }
        let p = &mut st.pulls[i];
        p.mark_merged(&e.group_sha);
        p.base_sha = e.base_sha.clone();
    }
    st.queue.entries = kept;
}

impl State {
    /// Records that entry `e` left the queue unmerged: the PR's timeline gets a
    /// `RemovedFromMergeQueueEvent` with the reason.
    fn queue_removed(&mut self, e: &Entry, why: &str) {
        self.queue
            .removed
            .push((e.repo.clone(), e.number, why.to_string(), now()));
    }
}

fn entry_json(e: &Entry, state: &str) -> Value {
    json!({"id": super::json::node_id("MQE", e.id), "state": state, "position": 1})
}

/// `node(id:)` for a pull request: the fields the queue's waiters read.
fn pull_node(st: &State, id: &str) -> Value {
    let Some(p) = st
        .pulls
        .iter()
        .find(|p| super::json::node_id("PR", p.id) == id)
    else {
        return Value::Null;
    };
    let entry = st
        .queue
        .entries
        .iter()
        .find(|e| e.repo == p.repo && e.number == p.number)
        .map(|e| entry_json(e, "AWAITING_CHECKS"))
        .unwrap_or(Value::Null);
    json!({
        "__typename": "PullRequest",
        "id": id,
        "number": p.number,
        "merged": p.merged,
        "state": if p.merged { "MERGED" } else if p.open { "OPEN" } else { "CLOSED" },
        "mergeCommit": p.merge_commit_sha.as_ref().map(|sha| json!({"oid": sha})),
        "mergeQueueEntry": entry,
        // Only the removals: the one item type the waiters ask `timelineItems` for.
        "timelineItems": {"nodes": st.queue.removed.iter()
            .filter(|r| r.0 == p.repo && r.1 == p.number)
            .map(|r| json!({"__typename": "RemovedFromMergeQueueEvent", "reason": r.2, "createdAt": r.3}))
            .collect::<Vec<_>>()},
    })
}

/// Keeps only the fields `set` selects (aliases honoured, inline fragments on the value's type).
fn project(v: &Value, set: &q::SelectionSet<String>) -> Value {
    if set.items.is_empty() {
        return v.clone();
    }
    match v {
        Value::Array(a) => Value::Array(a.iter().map(|x| project(x, set)).collect()),
        Value::Object(o) => {
            let mut out = Map::new();
            project_into(o, set, &mut out);
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn project_into(
    o: &Map<String, Value>,
    set: &q::SelectionSet<String>,
    out: &mut Map<String, Value>,
) {
    for sel in &set.items {
        match sel {
            q::Selection::Field(f) => {
                let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
                let v = o.get(&f.name).cloned().unwrap_or(Value::Null);
                out.insert(key, project(&v, &f.selection_set));
            }
            q::Selection::InlineFragment(fr) => {
                let applies = match &fr.type_condition {
                    Some(q::TypeCondition::On(t)) => {
                        o.get("__typename").and_then(Value::as_str) == Some(t)
                    }
                    None => true,
                };
                if applies {
                    project_into(o, &fr.selection_set, out);
                }
            }
            q::Selection::FragmentSpread(_) => {}
        }
    }
}

/// A GraphQL argument value as JSON, variables resolved.
fn value(v: &q::Value<String>, vars: &Value) -> Value {
    match v {
        q::Value::Variable(n) => vars[n].clone(),
        q::Value::Int(i) => json!(i.as_i64()),
        q::Value::Float(f) => json!(f),
        q::Value::String(s) => json!(s),
        q::Value::Boolean(b) => json!(b),
        q::Value::Null => Value::Null,
        q::Value::Enum(e) => json!(e),
        q::Value::List(l) => Value::Array(l.iter().map(|x| value(x, vars)).collect()),
        q::Value::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), value(x, vars))).collect())
        }
    }
}

/// The scalars every GraphQL schema has without declaring them (GraphQL spec, "Scalars").
const BUILT_IN: [&str; 5] = ["ID", "String", "Int", "Float", "Boolean"];

/// The schema, as far as validation needs it: each type's fields with their arguments and
/// types, and each input type's fields.
struct Schema {
    types: HashMap<String, TypeInfo>,
}

#[derive(Default)]
struct TypeInfo {
    /// Field name → (its named type, its argument name → named type).
    fields: HashMap<String, (String, HashMap<String, String>)>,
    /// For input objects: field name → named type.
    inputs: HashMap<String, String>,
}

fn named<'a>(t: &'a s::Type<'_, String>) -> &'a str {
    match t {
        s::Type::NamedType(n) => n,
        s::Type::ListType(t) | s::Type::NonNullType(t) => named(t),
    }
}

/// GitHub's schema from the contracts, parsed once; `None` where the contracts are absent (then
/// `contracts_dir` has said why, and panics under CI).
fn schema() -> Option<&'static Schema> {
    static SCHEMA: OnceLock<Option<Schema>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let dir = crate::contract::contracts_dir("github/graphql", "GraphQL requests")?;
            let text = std::fs::read_to_string(dir.join("schema.graphql")).ok()?;
            let doc = s::parse_schema::<String>(&text).expect("GitHub's schema parses");
            let mut types = HashMap::new();
            for d in &doc.definitions {
                let s::Definition::TypeDefinition(t) = d else {
                    continue;
                };
                fn field_map(
                    fields: &[s::Field<'_, String>],
                ) -> HashMap<String, (String, HashMap<String, String>)> {
                    fields
                        .iter()
                        .map(|f| {
                            let args = f
                                .arguments
                                .iter()
                                .map(|a| (a.name.clone(), named(&a.value_type).to_string()))
                                .collect();
                            (f.name.clone(), (named(&f.field_type).to_string(), args))
                        })
                        .collect()
                }
                let (name, info) = match t {
                    s::TypeDefinition::Object(o) => (
                        &o.name,
                        TypeInfo {
                            fields: field_map(&o.fields),
                            ..Default::default()
                        },
                    ),
                    s::TypeDefinition::Interface(i) => (
                        &i.name,
                        TypeInfo {
                            fields: field_map(&i.fields),
                            ..Default::default()
                        },
                    ),
                    s::TypeDefinition::InputObject(i) => (
                        &i.name,
                        TypeInfo {
                            inputs: i
                                .fields
                                .iter()
                                .map(|f| (f.name.clone(), named(&f.value_type).to_string()))
                                .collect(),
                            ..Default::default()
                        },
                    ),
                    s::TypeDefinition::Scalar(x) => (&x.name, TypeInfo::default()),
                    s::TypeDefinition::Enum(x) => (&x.name, TypeInfo::default()),
                    s::TypeDefinition::Union(x) => (&x.name, TypeInfo::default()),
                };
                types.insert(name.clone(), info);
            }
            Some(Schema { types })
        })
        .as_ref()
}

/// Checks `set` against type `on`: fields, arguments, input object keys, fragment types.
fn check_set(
    schema: &Schema,
    on: &str,
    set: &q::SelectionSet<String>,
    vars: &Value,
    out: &mut Vec<String>,
) {
    for sel in &set.items {
        match sel {
            q::Selection::Field(f) => {
                if f.name == "__typename" {
                    continue;
                }
                let Some((ty, args)) = schema.types.get(on).and_then(|t| t.fields.get(&f.name))
                else {
                    out.push(format!("Field '{}' doesn't exist on type '{on}'", f.name));
                    continue;
                };
                for (a, v) in &f.arguments {
                    let Some(arg_ty) = args.get(a) else {
                        out.push(format!("Field '{}' doesn't accept argument '{a}'", f.name));
                        continue;
                    };
                    check_input(schema, arg_ty, &value(v, vars), out);
                }
                check_set(schema, ty, &f.selection_set, vars, out);
            }
            q::Selection::InlineFragment(fr) => {
                let t = match &fr.type_condition {
                    Some(q::TypeCondition::On(t)) => t.as_str(),
                    None => on,
                };
                if !schema.types.contains_key(t) {
                    out.push(format!(
                        "No such type {t}, so it can't be a fragment condition"
                    ));
                    continue;
                }
                check_set(schema, t, &fr.selection_set, vars, out);
            }
            q::Selection::FragmentSpread(_) => {
                out.push("the sandbox does not take named fragments".into());
            }
        }
    }
}

/// Checks an argument's value against its input type: every key must be a field of it.
fn check_input(schema: &Schema, ty: &str, v: &Value, out: &mut Vec<String>) {
    let Some(info) = schema.types.get(ty) else {
        return;
    };
    if info.inputs.is_empty() {
        return;
    }
    let Value::Object(o) = v else {
        return;
    };
    for (k, x) in o {
        match info.inputs.get(k) {
            Some(t) => check_input(schema, t, x, out),
            None => out.push(format!("InputObject '{ty}' doesn't accept argument '{k}'")),
        }
    }
}

/// The control route `PUT /repos/{o}/{r}/merge-queue/{b}` (`{"checks": ["ci/test"]}`; `DELETE`
/// removes the queue), merged into the GitHub control routes.
pub(super) fn control_routes(gh: std::sync::Arc<GitHub>) -> axum::Router {
    use axum::extract::{Path, State as S};
    use axum::http::StatusCode;
    type P3 = Path<(String, String, String)>;
    axum::Router::new()
        .route(
            "/repos/{o}/{r}/merge-queue/{b}",
            axum::routing::put(
                |S(gh): S<std::sync::Arc<GitHub>>,
                 Path((o, r, b)): P3,
                 axum::Json(v): axum::Json<Value>| async move {
                    let checks: Vec<&str> = v["checks"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    gh.require_merge_queue(&format!("{o}/{r}"), &b, Some(&checks));
                    StatusCode::NO_CONTENT
                },
            )
            .delete(
                |S(gh): S<std::sync::Arc<GitHub>>, Path((o, r, b)): P3| async move {
                    gh.require_merge_queue(&format!("{o}/{r}"), &b, None);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(gh)
}
