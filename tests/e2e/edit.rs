//! `gitops-promote edit` end to end: the built binary on real files, as users and other checks
//! run it. Fixtures: `tests/fixtures/values/NN-*.yaml`, the sets to apply in `NN-*.sets` (a first
//! line `# flags: ...` adds flags) and the exact bytes expected in `NN-*.expected.yaml`.

use crate::harness::{Run, BIN};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/values")
}

fn edit(file: &Path, args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .arg("edit")
        .arg("--file")
        .arg(file)
        .args(args)
        .output()
        .expect("run gitops-promote");
    Run::outside(&out)
}

/// A temp dir holding `values.yaml` with `content`.
fn values(content: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, content).unwrap();
    (dir, file)
}

fn sets_of(fixture: &str) -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(fixtures().join(format!("{fixture}.sets"))).unwrap();
    let mut flags = Vec::new();
    let mut args = Vec::new();
    for line in text.lines() {
        if let Some(f) = line.strip_prefix("# flags: ") {
            flags.extend(f.split_whitespace().map(String::from));
        } else if !line.trim().is_empty() && !line.starts_with('#') {
            args.push("--set".to_string());
            args.push(line.to_string());
        }
    }
    (flags, args)
}

#[test]
fn fixtures_edit_to_the_exact_expected_bytes() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".sets").map(String::from)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 10, "only {} fixtures", names.len());
    for name in names {
        let input = std::fs::read(fixtures().join(format!("{name}.yaml"))).unwrap();
        let want = std::fs::read(fixtures().join(format!("{name}.expected.yaml"))).unwrap();
        let (flags, sets) = sets_of(&name);
        let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
        args.extend(sets.iter().map(String::as_str));
        let (_dir, file) = values(&input);

        let dry = edit(&file, &[&args[..], &["--dry-run"]].concat());
        assert_eq!(dry.code, 0, "{name}: {}", dry.stderr);
        assert!(dry.stdout.starts_with("--- a/"), "{name}: {}", dry.stdout);
        assert_eq!(
            std::fs::read(&file).unwrap(),
            input,
            "{name}: --dry-run wrote"
        );

        let run = edit(&file, &args);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{name}: printed without --diff");
        let got = std::fs::read(&file).unwrap();
        assert!(
            got == want,
            "{name}: got\n{}",
            String::from_utf8_lossy(&got)
        );
        // No line added or removed, and at most one line changed per set (two sets may share a
        // line in a flow mapping).
        let changed = input
            .split(|b| *b == b'\n')
            .zip(got.split(|b| *b == b'\n'))
            .filter(|(a, b)| a != b)
            .count();
        assert!(
            changed > 0 && changed <= sets.len() / 2,
            "{name}: {changed} lines changed"
        );
        assert_eq!(
            input.iter().filter(|b| **b == b'\n').count(),
            got.iter().filter(|b| **b == b'\n').count(),
            "{name}: line count"
        );

        // A second run finds every value already set and leaves the file alone.
        let again = edit(&file, &[&args[..], &["--diff"]].concat());
        assert_eq!((again.code, again.stdout.as_str()), (0, ""), "{name}");
        assert_eq!(std::fs::read(&file).unwrap(), want);
    }
}

#[test]
fn diff_prints_a_unified_diff_and_writes() {
    let (_dir, file) = values(b"# c\nimage:\n  tag: \"1.0.0\" # pinned\n");
    let run = edit(&file, &["--set", "image.tag=1.5.0", "--diff"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let shown = file.display().to_string();
    let shown = shown.trim_start_matches('/');
    assert_eq!(
        run.stdout,
        format!(
            "--- a/{shown}\n+++ b/{shown}\n@@ -1,3 +1,3 @@\n # c\n image:\n-  tag: \"1.0.0\" # pinned\n+  tag: \"1.5.0\" # pinned\n"
        )
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "# c\nimage:\n  tag: \"1.5.0\" # pinned\n"
    );
}

#[test]
fn create_missing_adds_keys_under_their_parent() {
    let (_dir, file) = values(b"image:\n    repository: app\nreplicas: 1\n");
    let run = edit(&file, &["--set", "image.tag=1.5", "--create-missing"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "image:\n    repository: app\n    tag: \"1.5\"\nreplicas: 1\n"
    );
}

/// Runs `edit` expecting failure: exit 1, the annotation on stderr, the file untouched.
fn refused(content: &[u8], args: &[&str], message: &str) {
    let (_dir, file) = values(content);
    let run = edit(&file, args);
    assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
    assert_eq!(
        run.stderr.trim_end(),
        format!("::error title=gitops-promote edit::{message}"),
        "{args:?}"
    );
    assert_eq!(run.stdout, "");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        content,
        "{args:?}: file changed"
    );
}

#[test]
fn every_refusal_says_why_and_leaves_the_file_alone() {
    refused(
        b"d: &d\n  tag: 1\napp:\n  <<: *d\n",
        &["--set", "app.tag=2", "--allow-anchor"],
        "refusing to edit `app.tag`: `app.tag` only exists through a `<<` merge key; set it where the merged mapping defines it, or add the key here by hand",
    );
    refused(
        b"a: &x {tag: 1}\nb: *x\n",
        &["--set", "b.tag=2"],
        "refusing to edit `b.tag`: `b` is an alias (`*name`); the path only exists through it",
    );
    refused(
        b"v: &v 1.0\nw: *v\n",
        &["--set", "v=2.0"],
        "refusing to edit `v`: the value is an anchored scalar (`&name`), so its aliases would change too; pass --allow-anchor if that is intended",
    );
    refused(
        b"v: &v 1.0\nw: *v\n",
        &["--set", "w=2.0"],
        "refusing to edit `w`: the value is an alias (`*name`); edit its anchor",
    );
    refused(
        b"d: &d\n  a: 1\ne: *d\n",
        &["--set", "d.b=2", "--create-missing"],
        "refusing to edit `d.b`: the new key would go inside an anchored collection (`&name`), so its aliases would change too; pass --allow-anchor if that is intended",
    );
    refused(
        b"motd: >-\n  hello\n",
        &["--set", "motd=x"],
        "refusing to edit `motd`: the value is a block scalar (`|` or `>`); edit it by hand",
    );
    refused(
        b"args: [a, b]\n",
        &["--set", "args=x"],
        "refusing to edit `args`: the value is a sequence, not a scalar",
    );
    refused(
        b"labels: {}\n",
        &["--set", "labels.team=x", "--create-missing"],
        "cannot create `labels.team`: `labels` is a flow mapping (`{...}`); add the key by hand",
    );
    refused(
        b"config: |\n  a: 1\n",
        &["--set", "config=x"],
        "refusing to edit `config`: the value is a block scalar (`|` or `>`); edit it by hand",
    );
    refused(
        b"image:\n  tag: 1\n",
        &["--set", "image=x"],
        "refusing to edit `image`: the value is a mapping, not a scalar",
    );
    refused(
        b"tag: 1\n---\ntag: 2\n",
        &["--set", "tag=3"],
        "refusing to edit `tag`: it is present in documents 0, 1 of this multi-document file; pass --document N",
    );
    refused(
        b"tag: 1\n---\ntag: 2\n",
        &["--set", "tag=3", "--document", "2"],
        "document 2 does not exist (the file has 2)",
    );
}

#[test]
fn errors_name_the_path_and_leave_the_file_alone() {
    refused(
        b"image:\n  repository: app\n",
        &["--set", "image.tag=1"],
        "`image.tag` not found: no key `tag` (deepest existing part: `image`)",
    );
    // All or nothing: the first set is valid, the second is not.
    refused(
        b"image:\n  tag: 1.0.0\n",
        &["--set", "image.tag=2.0.0", "--set", "containers[name=web].image=x"],
        "`containers[name=web].image` not found: no key `containers` (deepest existing part: `(root)`)",
    );
    refused(
        b"a: 1\n",
        &["--set", "a"],
        "bad set `a`: expected `path=value`",
    );
    refused(
        b"a: 1\n",
        &["--set", "other/values.yaml:a=2"],
        "bad set `other/values.yaml:a=2`: `edit` takes the file from --file; drop the file prefix",
    );
    refused(
        b"a: 1\n",
        &["--set", "a..b=1"],
        "bad path `a..b=1`: empty key (quote keys that contain `.`, `[` or `=`)",
    );
    refused(
        b"a: \xff\xfe\n",
        &["--set", "a=1"],
        "the file is not valid UTF-8 (byte 3)",
    );
    refused(
        b"a: [1, 2\nb: 3\n",
        &["--set", "a=1"],
        "malformed YAML at line 2, column 2: illegal placement of ':' indicator",
    );
    let deep = format!("a: {}1{}\n", "[".repeat(70), "]".repeat(70));
    refused(
        deep.as_bytes(),
        &["--set", "b=1"],
        "nesting deeper than 64 levels at line 1",
    );
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (p, n) in [("a", "b"), ("b", "c"), ("c", "d"), ("d", "e"), ("e", "f")] {
        let items = vec![format!("*{p}"); 10].join(", ");
        bomb.push_str(&format!("{n}: &{n} [{items}]\n"));
    }
    refused(
        bomb.as_bytes(),
        &["--set", "a[0]=y", "--allow-anchor"],
        "aliases expand to more than 100000 nodes (line 5); refusing a possible alias bomb",
    );
    let mut big = b"a: 1\n".to_vec();
    big.resize(10 * 1024 * 1024 + 1, b'#');
    refused(
        &big,
        &["--set", "a=2"],
        "the file is 10485761 bytes, more than the limit of 10485760 bytes",
    );
}

#[test]
fn the_schema_beside_the_file_and_schema_flag_are_enforced() {
    let schema = br#"{"type":"object","properties":{"image":{"type":"object","properties":
        {"tag":{"type":"string","pattern":"^[0-9]+\\.[0-9]+\\.[0-9]+$"}}}}}"#;
    let content = b"image:\n  tag: 1.0.0\n";
    let (dir, file) = values(content);
    std::fs::write(dir.path().join("values.schema.json"), schema).unwrap();
    let run = edit(&file, &["--set", "image.tag=latest"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with(
            "::error title=gitops-promote edit::schema validation failed at `image.tag`: "
        ),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(&file).unwrap(), content);
    let run = edit(&file, &["--set", "image.tag=1.1.0"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let (other, file) = values(content);
    let explicit = other.path().join("strict.json");
    std::fs::write(&explicit, schema).unwrap();
    let run = edit(
        &file,
        &[
            "--set",
            "image.tag=v2",
            "--schema",
            explicit.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("at `image.tag`"), "{}", run.stderr);
    assert_eq!(std::fs::read(&file).unwrap(), content);
}
