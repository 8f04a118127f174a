# syntax=docker/dockerfile:1
#
# The connector-fleet image: the one `fleet` binary on a small runtime
# image, as a non-root user. Every subcommand runs from it:
#
#   docker build -t connector-fleet .
#   docker run --rm connector-fleet --help
#   docker run --rm -e FLEET_NATS__URL=... connector-fleet worker
#
# Stream and consumer definitions, the connector catalog, the database
# migrations and the dashboard are compiled into the binary, so the image
# needs no other file (FLEET_NATS__DEFINITIONS_DIR and
# FLEET_CONNECTORS__CATALOG_DIR can point at mounted directories instead).

# Keep equal to `channel` in rust-toolchain.toml (checked by a test).
ARG RUST_VERSION=1.95.0

FROM rust:${RUST_VERSION}-bookworm AS builder
ARG RUST_VERSION
# The image's toolchain, without the rustfmt and clippy components that
# rust-toolchain.toml asks for (a build needs neither).
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION} \
    SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never
WORKDIR /src
COPY . .
# The cache mounts keep the crates.io downloads and the compiled
# dependencies between builds, so a change to the fleet's own code
# recompiles only the workspace crates.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p fleet \
    && install -m 0755 target/release/fleet /usr/local/bin/fleet

# glibc, libgcc, CA certificates and a `nonroot` user (65532), nothing else:
# no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=builder /usr/local/bin/fleet /usr/local/bin/fleet
USER 65532:65532
# gateway, bridge, worker health and metrics (FLEET_WORKER_LISTEN)
EXPOSE 8080 8081 9090
ENTRYPOINT ["fleet"]
CMD ["--help"]
