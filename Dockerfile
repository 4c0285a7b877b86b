# The action's image: a static (musl) binary alone in a scratch image, with the CA bundle for TLS.
# libgit2 is built from source (`vendored`) and TLS is rustls, so the binary needs no shared library
# and the build no OpenSSL (nor the perl and make its build needed).
# The same file builds amd64 and arm64: each architecture is built natively (release.yml runs one
# job per architecture), so the musl target is the build machine's own and no cross C toolchain
# is needed for the vendored C code.

FROM rust:1.95-bookworm AS builder
# Unpinned on purpose: Debian replaces package versions in place, so a pin breaks the build within
# weeks; the Rust toolchain, the part that matters, is pinned by the image tag.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add "$(uname -m)-unknown-linux-musl"
WORKDIR /src
COPY . .
# The post entrypoint is a symlink: the binary picks its mode from the name it was started by,
# because the runner passes the same args to the main and the post container (src/main.rs).
RUN target="$(uname -m)-unknown-linux-musl" \
    && cargo build --profile image --locked --features vendored --target "$target" \
        -p gitops-promote --bin gitops-promote \
    && mkdir /out \
    && cp "target/$target/image/gitops-promote" /out/gitops-promote \
    && ln -s gitops-promote /out/gitops-promote-post \
    && /out/gitops-promote --version

FROM scratch
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# A directory copy keeps the symlink as a symlink.
COPY --from=builder /out/ /usr/local/bin/
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# No USER: GitHub runs Docker actions as the image's default user and requires it to be root
# ("Dockerfile support for GitHub Actions", USER): the runner's GITHUB_OUTPUT, GITHUB_STATE and
# workspace files belong to the runner's user, and a non-root user here could not append to them,
# which would lose the state the post step rolls back from.
ENTRYPOINT ["/usr/local/bin/gitops-promote"]
