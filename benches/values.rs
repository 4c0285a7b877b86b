//! Criterion bench for `values::apply`: a 5 MB values file in the styles real charts use and 100
//! sets in one call. It also writes the file, the sets and our output under
//! `target/bench-values/` so `bench/values.sh` can time ruamel.yaml on the same input.

use criterion::{criterion_group, criterion_main, Criterion};
use gitops_promote::clients::values::{apply, EditOptions, SetOp};
use std::fmt::Write;
use std::hint::black_box;
use std::path::PathBuf;

const TARGET_BYTES: usize = 5 * 1024 * 1024;
const SETS: usize = 100;

/// One service block; `i` makes every name unique.
fn service(out: &mut String, i: usize) {
    let team = i % 7;
    let _ = write!(
        out,
        r#"  # ---------------------------------------------------------------------------
  # svc-{i:05}: owned by team-{team}; runbook: docs/runbooks/svc-{i:05}.md
  # ---------------------------------------------------------------------------
  svc-{i:05}:
    enabled: true
    image:
      repository: registry.example.com/team-{team}/svc-{i:05}
      tag: "1.0.{i}"   # promoted by CI
      pullPolicy: IfNotPresent
    replicaCount: {replicas}
    podAnnotations:
      prometheus.io/scrape: "true"
      app.kubernetes.io/version: 1.0.{i}
    containers:
    - name: app
      image: registry.example.com/team-{team}/svc-{i:05}:1.0.{i}
      env:
      - name: LOG_LEVEL
        value: info
      - name: OWNER
        value: 'team-{team}'
      resources: {{requests: {{cpu: 100m, memory: 128Mi}}, limits: {{cpu: 500m, memory: 256Mi}}}}
    - name: proxy
      image: envoyproxy/envoy:v1.29.1
    # replicaCount: 3   (old value, kept for reference)

"#,
        replicas = 1 + i % 3
    );
}

/// The 5 MB file and the 100 sets spread over it.
pub fn workload() -> (String, Vec<String>) {
    let mut doc = String::from(
        "# Generated for the values benchmark: one platform-wide values file.\n\
         global:\n  imageRegistry: registry.example.com\n  environment: production\n\nservices:\n",
    );
    let mut n = 0;
    while doc.len() < TARGET_BYTES {
        service(&mut doc, n);
        n += 1;
    }
    let sets = (0..SETS)
        .map(|k| {
            let i = k * (n / SETS);
            match k % 3 {
                0 => format!("services.svc-{i:05}.image.tag=2.0.{k}"),
                1 => format!(
                    "services.svc-{i:05}.containers[name=app].image=registry.example.com/team-{}/svc-{i:05}:2.0.{k}",
                    i % 7
                ),
                _ => format!("services.svc-{i:05}.podAnnotations.\"app.kubernetes.io/version\"=2.0.{k}"),
            }
        })
        .collect();
    (doc, sets)
}

fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench-values")
}

fn bench(c: &mut Criterion) {
    let (doc, lines) = workload();
    let sets: Vec<SetOp> = lines.iter().map(|l| SetOp::parse(l).unwrap()).collect();
    let opts = EditOptions::default();
    let edited = apply(doc.as_bytes(), &sets, &opts).expect("the bench edit applies");
    assert_eq!(edited.changes.len(), SETS);
    let dir = out_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("values.yaml"), &doc).unwrap();
    std::fs::write(dir.join("sets.txt"), lines.join("\n") + "\n").unwrap();
    std::fs::write(dir.join("rust-out.yaml"), &edited.bytes).unwrap();

    let mut g = c.benchmark_group("values");
    g.sample_size(10);
    g.bench_function("apply_5mb_100_sets", |b| {
        b.iter(|| apply(black_box(doc.as_bytes()), black_box(&sets), &opts).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
