# The Azure emulator of this repository (crates/azure-emulator) as an image, for
# deploy/compose/compose.yaml. Build from the repository root:
#
#   docker build -f deploy/compose/emulator.Dockerfile -t aci-worker/azure-emulator:local .
#
# A test tool, not a service to expose: it accepts the well-known test
# credentials, and it drives the host's Docker engine through its socket, so it
# runs as root (whoever holds that socket is root on the host anyway).

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY bins bins
COPY examples examples
RUN cargo build --release --locked -p azure-emulator \
    && install -D -m 0755 target/release/azure-emulator /out/azure-emulator

FROM ${RUNTIME_IMAGE}
# No packages: the emulator makes no outgoing TLS connections (images are pulled
# by the host's engine), and the compose health check needs only bash.
COPY --from=build /out/azure-emulator /usr/local/bin/azure-emulator
# Files REST API (http) and Entra ID / ARM (https).
EXPOSE 10004 10005
ENTRYPOINT ["azure-emulator"]
CMD ["--data-dir=/var/lib/azure-emulator", "--files-addr=0.0.0.0:10004"]
