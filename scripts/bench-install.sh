#!/usr/bin/env bash
# Wall time of install.sh into a fresh folder, from the release archive served on loopback
# (Python's http.server), as repeated runs (hyperfine); and the archive's and binary's sizes.
#   scripts/bench-install.sh                  # RUNS=10; BIN=target/release/stripe-ops
# Needs a release build (built here when missing), hyperfine (`apt-get install hyperfine`) and
# python3.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${BIN:-target/release/stripe-ops}"
RUNS="${RUNS:-10}"
[ -x "$BIN" ] || cargo build --release --locked
command -v hyperfine >/dev/null || { echo "hyperfine not found: apt-get install hyperfine" >&2; exit 2; }

dir="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

archive="$(STRIPE_OPS_BIN="$BIN" DIST_DIR="$dir/dist" scripts/release.sh)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 -m http.server --bind 127.0.0.1 --directory "$dir/dist" "$port" >/dev/null 2>&1 &
server_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.05; done

echo "binary $(wc -c <"$BIN") bytes; archive $(wc -c <"$archive") bytes ($(basename "$archive"))"
hyperfine --runs "$RUNS" --prepare "rm -rf '$dir/bin'" \
  "STRIPE_OPS_INSTALL_BASE_URL=http://127.0.0.1:$port STRIPE_OPS_INSTALL_DIR='$dir/bin' sh install.sh"
