#!/usr/bin/env bash
# Builds the action's image layout (the Dockerfile's final stage) from a musl binary built on this
# host, with buildah: no Docker daemon and no base image to pull (FROM scratch), so it works where
# `docker build` cannot. Prints the binary's and the image's sizes (docs/performance.md records them).
#
#   scripts/build-image.sh [tag]       default tag: localhost/gitops-promote:dev
#
# Needs: rustup's x86_64-unknown-linux-musl target, Debian's musl-tools (for the vendored libgit2),
# buildah (root, vfs storage, chroot isolation), and the CA bundle (ca-certificates).
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-localhost/gitops-promote:dev}"
target="$(uname -m)-unknown-linux-musl"
target_dir="${CARGO_TARGET_DIR:-target}"
buildah=(buildah --storage-driver vfs)

cargo build --profile image --locked --features vendored --target "$target" \
  -p gitops-promote --bin gitops-promote
bin="$target_dir/$target/image/gitops-promote"
if ldd "$bin" 2>&1 | grep -q '=>'; then
  echo "error: $bin is dynamically linked" >&2
  exit 1
fi

# The image's whole file system, as the Dockerfile's final stage lays it out.
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc/ssl/certs"
cp "$bin" "$ctx/rootfs/usr/local/bin/gitops-promote"
ln -s gitops-promote "$ctx/rootfs/usr/local/bin/gitops-promote-post"
cp /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
cat >"$ctx/Containerfile" <<'CF'
FROM scratch
COPY rootfs/ /
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
ENTRYPOINT ["/usr/local/bin/gitops-promote"]
CF

"${buildah[@]}" bud --isolation chroot --layers=false -q -f "$ctx/Containerfile" -t "$tag" "$ctx" >/dev/null

# Smoke test: both entrypoints start inside the image.
ctr="$("${buildah[@]}" from "$tag")"
"${buildah[@]}" run --isolation chroot "$ctr" -- /usr/local/bin/gitops-promote --version
"${buildah[@]}" rm "$ctr" >/dev/null

# Sizes: the binary, the image unpacked, and the compressed layer a runner pulls.
"${buildah[@]}" push -q --compression-format gzip "$tag" "oci-archive:$ctx/image.tar" >/dev/null
bin_bytes=$(stat -c %s "$bin")
# The one layer's uncompressed size, from the image manifest.
image_bytes=$("${buildah[@]}" inspect --type image --format '{{.Manifest}}' "$tag" |
  python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]))')
pull_bytes=$(stat -c %s "$ctx/image.tar")
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
echo "image:               $tag"
echo "binary (static):     $(mb "$bin_bytes") ($bin_bytes bytes)"
echo "image (unpacked):    $(mb "$image_bytes") ($image_bytes bytes)"
echo "image (gzip, pull):  $(mb "$pull_bytes") ($pull_bytes bytes)"
