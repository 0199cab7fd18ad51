# syntax=docker/dockerfile:1
#
# One image for every service: `vnext init`, `vnext app`, `vnext execution`
# (see docker-compose.yml), or `vnext up` for all three in one process.
# Configuration comes from VNEXT_<SECTION>__<FIELD> environment variables.

FROM rust:1.95-bookworm AS builder
# aws-lc-sys (TLS for outgoing HTTP tasks) builds C code; cmake and clang cover
# every target it supports.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake clang \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin vnext \
    && cp target/release/vnext /usr/local/bin/vnext

FROM debian:bookworm-slim AS runtime
# curl serves the compose healthchecks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin vnext
WORKDIR /app
COPY --from=builder /usr/local/bin/vnext /usr/local/bin/vnext
COPY flows /app/flows
ENV VNEXT_RUNTIME__FLOWS_DIR=/app/flows \
    VNEXT_APP__LISTEN=0.0.0.0:4201 \
    VNEXT_EXECUTION__LISTEN=0.0.0.0:4202 \
    RUST_LOG=info
USER vnext
EXPOSE 4201 4202
ENTRYPOINT ["vnext"]
CMD ["up"]
