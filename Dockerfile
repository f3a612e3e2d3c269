# stripe-ops in a container: built from this source, run as a non-root user in a distroless
# image that holds the binary, glibc, and the CA certificates it verifies TLS with.
#   docker build -t stripe-ops . && docker run --rm stripe-ops --version
# The release workflow builds it for linux/amd64 and linux/arm64 and pushes it to ghcr.io.
# Without a .git in the build context, STRIPE_OPS_BUILD_COMMIT names the commit (`--version`).
FROM rust:1.95-bookworm AS build
ARG STRIPE_OPS_BUILD_COMMIT=unknown
WORKDIR /src
COPY . .
RUN cargo build --release --locked && cp target/release/stripe-ops /stripe-ops

# Debian 12, as the build stage: the binary needs its glibc.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /stripe-ops /usr/local/bin/stripe-ops
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/stripe-ops"]
