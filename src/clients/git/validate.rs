//! The checks on URLs, branch names, paths and SHAs before they reach libgit2, which would accept
//! some of them silently (a short SHA padded with zeros, a refspec built from `a:b`).

use super::error::GitError;
use git2::Oid;

/// Accepts `http(s)://host/...` without user or password.
pub(super) fn check_url(url: &str) -> Result<(), GitError> {
    let parsed = url::Url::parse(url).map_err(|e| GitError::BadUrl {
        // A malformed URL with an `@` may still hold a secret: do not echo it.
        reason: if url.contains('@') {
            format!("not a URL ({e})")
        } else {
            format!("{url}: {e}")
        },
    })?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Do not echo the URL: it holds a secret.
        return Err(GitError::BadUrl {
            reason: "it carries credentials; pass the token separately".to_string(),
        });
    }
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(GitError::BadUrl {
            reason: format!("{url}: only https (or http for local tests) is supported"),
        });
    }
    Ok(())
}

/// Rejects branch names git would refuse, before they reach a refspec.
pub(super) fn check_branch(branch: &str) -> Result<(), GitError> {
    let valid = !branch.is_empty()
        && !branch.starts_with('-')
        && !branch.contains(':')
        && git2::Reference::is_valid_name(&format!("refs/heads/{branch}"));
    if valid {
        Ok(())
    } else {
        Err(GitError::Invalid {
            what: "branch",
            value: branch.to_string(),
            reason: "not a valid git branch name",
        })
    }
}

/// Rejects paths that could escape the tree or write into git's own files.
pub(super) fn check_path(path: &str) -> Result<(), GitError> {
    let reason = if path.is_empty() {
        Some("empty")
    } else if path.starts_with('/') || path.ends_with('/') {
        Some("must be relative to the repo root and name a file")
    } else if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == ".." || c.eq_ignore_ascii_case(".git"))
    {
        Some("must not contain empty, `.`, `..` or `.git` components")
    } else if path.contains('\0') || path.contains('\\') {
        Some("must not contain NUL or backslashes")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(GitError::Invalid {
            what: "path",
            value: path.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Parses a full 40-hex commit SHA; a short one would silently be padded with zeros by libgit2.
pub(super) fn parse_sha(sha: &str) -> Result<Oid, GitError> {
    let sha = sha.trim();
    let invalid = || GitError::Invalid {
        what: "commit SHA",
        value: sha.to_string(),
        reason: "expected 40 hex digits",
    };
    if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    Oid::from_str(sha).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_escape_the_tree_are_refused() {
        for bad in ["", "/etc/passwd", "a/../b", ".git/config", "a//b", "dir/"] {
            assert!(check_path(bad).is_err(), "{bad:?} accepted");
        }
        check_path("charts/app/values.yaml").unwrap();
    }

    #[test]
    fn short_shas_are_refused() {
        assert!(parse_sha("abc123").is_err());
        assert!(parse_sha(&"g".repeat(40)).is_err());
        parse_sha(&"a".repeat(40)).unwrap();
    }

    #[test]
    fn bad_branch_names_are_refused() {
        for bad in ["", "-x", "a..b", "a:b", "a b"] {
            assert!(check_branch(bad).is_err(), "{bad:?} accepted");
        }
        check_branch("gitops-promote/main/1-1").unwrap();
    }
}
