#!/usr/bin/env bash
# The release archive of one target, as .github/workflows/release.yml builds it on each runner
# and as the tests build it here:
#   scripts/release.sh                                # this machine's target
#   TARGET=aarch64-apple-darwin scripts/release.sh    # cargo build --release --locked --target …
#   STRIPE_OPS_BIN=path/to/stripe-ops scripts/release.sh   # package a binary already built
# Writes into $DIST_DIR (default target/dist), named as install.sh and cargo binstall expect:
#   stripe-ops-<version>-<target>.tar.gz          stripe-ops-<version>-<target>/ with the binary,
#                                                 README.md, LICENSE and completions/ (bash, zsh, fish)
#   stripe-ops-<version>-<target>.tar.gz.sha256   "<sha256>  <archive>", as `sha256sum -c` reads it
#   stripe-ops-version.txt                        the version: install.sh's "latest"
# and prints the archive's path. The binary must run here: it writes its own completions.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgid="$(cargo pkgid --quiet)"
version="${pkgid##*[#@]}"
target="${TARGET:-$(rustc -vV | sed -n 's/^host: //p')}"
dist="${DIST_DIR:-target/dist}"
bin="${STRIPE_OPS_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --locked --target "$target"
  bin="${CARGO_TARGET_DIR:-target}/$target/release/stripe-ops"
fi

name="stripe-ops-$version-$target"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name/completions" "$dist"
install -m 755 "$bin" "$stage/$name/stripe-ops"
cp README.md LICENSE "$stage/$name/"
"$bin" completions bash >"$stage/$name/completions/stripe-ops.bash"
"$bin" completions zsh >"$stage/$name/completions/_stripe-ops"
"$bin" completions fish >"$stage/$name/completions/stripe-ops.fish"

tar -C "$stage" -czf "$dist/$name.tar.gz" "$name"
cd "$dist"
if command -v sha256sum >/dev/null; then
  sha256sum "$name.tar.gz" >"$name.tar.gz.sha256"
else
  shasum -a 256 "$name.tar.gz" >"$name.tar.gz.sha256" # macOS
fi
echo "$version" >stripe-ops-version.txt
echo "$PWD/$name.tar.gz"
