//! The seeded world: bare repositories on disk, the tokens the servers accept, and helpers to read
//! and write those repositories with git2. Every emulator reads the same bare repos, as GitHub and
//! Argo CD read the same remote.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The seeded release repository of DESIGN.md §9.
pub const SEED_REPO: &str = "acme/deploy";
/// The seeded repository's default branch.
pub const SEED_BRANCH: &str = "main";
/// The seeded values file.
pub const SEED_VALUES_PATH: &str = "charts/app/values.yaml";

/// The seeded `charts/app/values.yaml`: commented, as real charts are, with `image.tag: "1.0.0"`.
pub const SEED_VALUES: &str = r#"# Default values for app.
# This is a YAML-formatted file. Declare variables to be passed into your templates.

replicaCount: 2

image:
  repository: ghcr.io/acme/app
  # Overrides the image tag whose default is the chart appVersion.
  tag: "1.0.0"   # promoted by gitops-promote
  pullPolicy: IfNotPresent

podAnnotations:
  "app.kubernetes.io/part-of": shop

service:
  type: ClusterIP
  port: 80

resources:
  limits:
    cpu: 500m
    memory: 256Mi
"#;

/// The seeded `charts/app/Chart.yaml`.
pub const SEED_CHART: &str = "apiVersion: v2\nname: app\nversion: 0.1.0\nappVersion: \"1.0.0\"\n";

/// Where the bare repos live and which token opens them.
#[derive(Debug)]
pub struct World {
    /// Folder holding `<owner>/<name>.git` bare repositories.
    pub repos_dir: PathBuf,
    /// Token accepted by the git host and the GitHub emulator.
    pub token: String,
    _dir: Option<tempfile::TempDir>,
}

impl World {
    /// Creates an empty world in a fresh temp dir with a random token.
    pub fn new() -> Result<World> {
        let dir = tempfile::Builder::new()
            .prefix("gitops-sandbox-")
            .tempdir()?;
        let repos_dir = dir.path().join("repos");
        std::fs::create_dir_all(&repos_dir)?;
        Ok(World {
            repos_dir,
            token: format!("ghs_sandbox{:016x}", fastrand::u64(..)),
            _dir: Some(dir),
        })
    }

    /// Creates the seeded repo `acme/deploy` (DESIGN.md §9).
    pub fn seed(&self) -> Result<git2::Oid> {
        self.create_repo(
            SEED_REPO,
            SEED_BRANCH,
            &[
                (SEED_VALUES_PATH, SEED_VALUES),
                ("charts/app/Chart.yaml", SEED_CHART),
            ],
        )
    }

    /// Path of the bare repo for `owner/name`.
    pub fn repo_path(&self, full_name: &str) -> PathBuf {
        self.repos_dir.join(format!("{full_name}.git"))
    }

    /// Opens the bare repo for `owner/name`.
    pub fn open(&self, full_name: &str) -> Result<git2::Repository> {
        git2::Repository::open_bare(self.repo_path(full_name))
            .with_context(|| format!("no repository {full_name} in the sandbox"))
    }

    /// Whether `owner/name` exists.
    pub fn has_repo(&self, full_name: &str) -> bool {
        self.repo_path(full_name).join("HEAD").exists()
    }

    /// Creates a bare repo with one commit holding `files` on `branch`, which becomes its HEAD.
    pub fn create_repo(
        &self,
        full_name: &str,
        branch: &str,
        files: &[(&str, &str)],
    ) -> Result<git2::Oid> {
        let path = self.repo_path(full_name);
        std::fs::create_dir_all(&path)?;
        let repo = git2::Repository::init_bare(&path)?;
        {
            let mut cfg = repo.config()?;
            cfg.set_bool("http.receivepack", true)?;
            cfg.set_bool("uploadpack.allowAnySHA1InWant", true)?;
            cfg.set_bool("uploadpack.allowFilter", true)?;
        }
        repo.set_head(&format!("refs/heads/{branch}"))?;
        let files: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect();
        commit_files(
            &repo,
            branch,
            None,
            &files,
            "Initial commit",
            &seed_signature()?,
        )
    }

    /// Commits `files` on top of `branch` in repo `full_name`, as someone else pushing would.
    pub fn commit(
        &self,
        full_name: &str,
        branch: &str,
        files: &[(&str, &str)],
        message: &str,
    ) -> Result<git2::Oid> {
        let repo = self.open(full_name)?;
        let parent = repo.refname_to_id(&format!("refs/heads/{branch}"))?;
        let files: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect();
        commit_files(
            &repo,
            branch,
            Some(parent),
            &files,
            message,
            &seed_signature()?,
        )
    }

    /// The object `path` names at `rev` (a branch, tag or SHA) in `full_name`, `None` when absent:
    /// equal ids mean the path did not change.
    pub fn path_tree(&self, full_name: &str, rev: &str, path: &str) -> Result<Option<git2::Oid>> {
        let repo = self.open(full_name)?;
        let tree = repo.revparse_single(rev)?.peel_to_tree()?;
        Ok(tree
            .get_path(std::path::Path::new(path))
            .ok()
            .map(|e| e.id()))
    }

    /// The content of `path` at `rev` (a branch, tag or SHA) in `full_name`.
    pub fn read_file(&self, full_name: &str, rev: &str, path: &str) -> Result<Option<String>> {
        let repo = self.open(full_name)?;
        read_file_at(&repo, rev, path)
    }

    /// The commit SHA `rev` resolves to in `full_name`.
    pub fn resolve(&self, full_name: &str, rev: &str) -> Result<git2::Oid> {
        let repo = self.open(full_name)?;
        let id = repo.revparse_single(rev)?.peel_to_commit()?.id();
        Ok(id)
    }
}

/// The signature the sandbox writes seed and "someone else's" commits with.
pub fn seed_signature() -> Result<git2::Signature<'static>> {
    Ok(git2::Signature::now(
        "Sandbox Seed",
        "seed@sandbox.invalid",
    )?)
}

/// Reads `path` at `rev`, or `None` when the file does not exist there.
pub fn read_file_at(repo: &git2::Repository, rev: &str, path: &str) -> Result<Option<String>> {
    let commit = repo.revparse_single(rev)?.peel_to_commit()?;
    let tree = commit.tree()?;
    let Ok(entry) = tree.get_path(Path::new(path)) else {
        return Ok(None);
    };
    let blob = repo.find_blob(entry.id())?;
    Ok(Some(String::from_utf8_lossy(blob.content()).into_owned()))
}

/// Writes `files` onto the tree of `parent` (or an empty tree) and moves `branch` to the new commit.
pub fn commit_files(
    repo: &git2::Repository,
    branch: &str,
    parent: Option<git2::Oid>,
    files: &[(String, Vec<u8>)],
    message: &str,
    sig: &git2::Signature<'_>,
) -> Result<git2::Oid> {
    let parent_commit = parent.map(|p| repo.find_commit(p)).transpose()?;
    let base_tree = match &parent_commit {
        Some(c) => c.tree()?,
        None => repo.find_tree(repo.treebuilder(None)?.write()?)?,
    };
    let mut update = git2::build::TreeUpdateBuilder::new();
    for (path, content) in files {
        let blob = repo.blob(content)?;
        update.upsert(path.as_str(), blob, git2::FileMode::Blob);
    }
    let tree_id = update.create_updated(repo, &base_tree)?;
    let tree = repo.find_tree(tree_id)?;
    let parents: Vec<&git2::Commit> = parent_commit.iter().collect();
    let oid = repo.commit(None, sig, sig, message, &tree, &parents)?;
    repo.reference(&format!("refs/heads/{branch}"), oid, true, message)?;
    Ok(oid)
}
