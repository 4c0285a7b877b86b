//! What the repo server finds at an app's path, and the image tag it would deploy from it.
//!
//! Argo CD picks the tool by the files in the path (argo-cd `util/app/discovery/discovery.go`
//! `Discover`, used by `reposerver/repository/repository.go` `GetAppSourceType` when the app names
//! no type): a kustomization file (`kustomization.yaml`, `kustomization.yml` or `Kustomization`,
//! `util/kustomize/kustomize.go` `KustomizationNames`) makes it Kustomize, and it wins over a
//! `Chart.yaml` in the same directory, because the walk checks it second. Otherwise the emulator
//! treats the path as the seeded chart and reads `values.yaml`.

use crate::world::{World, SEED_REPO};

/// `status.sourceType` of an app whose path holds a kustomization file.
pub const KUSTOMIZE: &str = "Kustomize";
/// `status.sourceType` of every other app: the emulator's chart with its `values.yaml`.
pub const HELM: &str = "Helm";

/// The file a sync renders from, as found at one revision.
pub struct Found {
    /// [`KUSTOMIZE`] or [`HELM`].
    pub kind: &'static str,
    /// The file's path in the repo, for error messages.
    pub file: String,
    /// Its content.
    pub text: String,
}

impl Found {
    /// The tag the rendered workload would run: `images[0].newTag` of a kustomization (what
    /// `kustomize edit set image` writes and the images transformer applies), or `image.tag` of
    /// the values.
    pub fn tag(&self) -> Option<String> {
        if self.kind == KUSTOMIZE {
            kustomize_tag(&self.text)
        } else {
            image_tag(&self.text)
        }
    }
}

/// The kustomization or values file at `path` on `rev` of the seeded repo, `None` when the path
/// holds neither.
pub fn find(world: &World, rev: &str, path: &str) -> anyhow::Result<Option<Found>> {
    for name in ["kustomization.yaml", "kustomization.yml", "Kustomization"] {
        let file = format!("{path}/{name}");
        if let Some(text) = world.read_file(SEED_REPO, rev, &file)? {
            return Ok(Some(Found {
                kind: KUSTOMIZE,
                file,
                text,
            }));
        }
    }
    let file = format!("{path}/values.yaml");
    Ok(world.read_file(SEED_REPO, rev, &file)?.map(|text| Found {
        kind: HELM,
        file,
        text,
    }))
}

/// Unquotes a scalar and drops a trailing comment: enough for the files the tests write.
fn scalar(rest: &str) -> String {
    let rest = rest.trim();
    if let Some(r) = rest.strip_prefix('"') {
        r.split('"').next().unwrap_or("").to_string()
    } else if let Some(r) = rest.strip_prefix('\'') {
        r.split('\'').next().unwrap_or("").to_string()
    } else {
        rest.split(" #").next().unwrap_or("").trim().to_string()
    }
}

/// Reads `image.tag` from a values file with a line scan: enough for the seeded chart's layout.
pub fn image_tag(values: &str) -> Option<String> {
    let mut in_image = false;
    for line in values.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if indent == 0 {
            in_image = trimmed.starts_with("image:");
            continue;
        }
        if in_image {
            if let Some(rest) = trimmed.strip_prefix("tag:") {
                return Some(scalar(rest));
            }
        }
    }
    None
}

/// Reads `newTag` of the first entry of a kustomization's top-level `images:` list with a line
/// scan (block style, as `kustomize edit set image` writes it).
pub fn kustomize_tag(kustomization: &str) -> Option<String> {
    let mut in_images = false;
    let mut entries = 0;
    for line in kustomization.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        if line.len() == trimmed.len() && !trimmed.starts_with('-') {
            in_images = trimmed.starts_with("images:");
            continue;
        }
        if !in_images {
            continue;
        }
        let item = match trimmed.strip_prefix("- ") {
            Some(item) => {
                entries += 1;
                item.trim_start()
            }
            None => trimmed,
        };
        if entries == 1 {
            if let Some(rest) = item.strip_prefix("newTag:") {
                return Some(scalar(rest));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_seeded_tag() {
        assert_eq!(
            image_tag(crate::world::SEED_VALUES).as_deref(),
            Some("1.0.0")
        );
        assert_eq!(
            image_tag("image:\n  tag: 2.0-bad # x\n").as_deref(),
            Some("2.0-bad")
        );
    }

    #[test]
    fn reads_the_first_images_new_tag_of_a_kustomization() {
        let k = "resources:\n  - ../../base\nimages:\n  # the app\n  - name: web\n    newName: ghcr.io/acme/web\n    newTag: \"2.0.0\" # ci\n  - name: sidecar\n    newTag: 9.9.9\n";
        assert_eq!(kustomize_tag(k).as_deref(), Some("2.0.0"));
        let flush = "images:\n- name: web\n  newTag: 3.0-bad\nnamespace: web\n";
        assert_eq!(kustomize_tag(flush).as_deref(), Some("3.0-bad"));
        assert_eq!(
            kustomize_tag("images:\n- name: web\n  digest: sha256:00\n- name: b\n  newTag: 1\n"),
            None
        );
        assert_eq!(kustomize_tag("namespace: web\nnewTag: 1\n"), None);
    }
}
