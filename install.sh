#!/bin/sh
# Installs stripe-ops from its release archives, for CI jobs and laptops: no sudo, no prompts.
#   curl -fsSL https://github.com/stripe-ops/stripe-ops/releases/latest/download/install.sh | sh
# It picks the archive for this machine, downloads it with its .sha256, refuses a mismatch,
# checks that the binary runs, then moves it into place in one rename. Run again, it changes
# nothing when that version is already there.
#   STRIPE_OPS_VERSION           a version (0.2.0 or v0.2.0); default: the latest release
#   STRIPE_OPS_INSTALL_DIR       where the binary goes; default: ~/.local/bin
#   STRIPE_OPS_INSTALL_BASE_URL  a directory (https://, http:// or file://) holding the archives,
#                                their .sha256 and stripe-ops-version.txt: a mirror, an
#                                air-gapped runner, the tests; replaces the release downloads
#   STRIPE_OPS_REPOSITORY        the GitHub repository publishing the releases
# `sh install.sh --print-version` prints the version it would install and stops.
# Exit codes: 0 installed (or already there), 1 the download failed a check (checksum, contents,
# the binary does not run here), 2 an unsupported platform or bad input, 3 a download failed,
# 130 interrupted.
set -eu

repository=${STRIPE_OPS_REPOSITORY:-stripe-ops/stripe-ops}

say() { printf 'install.sh: %s\n' "$*" >&2; }
fail() {
  code=$1
  shift
  say "$*"
  exit "$code"
}

# The release's target triple for this machine (release.yml builds these four).
detect_target() {
  os=$(uname -s)
  arch=$(uname -m)
  case $arch in
    x86_64 | amd64) cpu=x86_64 ;;
    aarch64 | arm64) cpu=aarch64 ;;
    *) unsupported "$os $arch" ;;
  esac
  case $os in
    Linux)
      # The Linux archives link glibc; Alpine and other musl systems cannot run them.
      if ls /lib/ld-musl-* >/dev/null 2>&1; then unsupported "$os $arch with musl libc"; fi
      echo "$cpu-unknown-linux-gnu"
      ;;
    Darwin)
      # A shell under Rosetta reports x86_64 on Apple silicon: take the native build.
      if [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || true)" = 1 ]; then cpu=aarch64; fi
      echo "$cpu-apple-darwin"
      ;;
    *) unsupported "$os $arch" ;;
  esac
}

unsupported() {
  fail 2 "no stripe-ops release for $1: there are archives for Linux (glibc) and macOS on x86_64" \
    "and aarch64; elsewhere build it with: cargo install --locked stripe-ops"
}

# fetch URL FILE [HINT]
fetch() {
  case $1 in
    file://*) cp "${1#file://}" "$2" 2>/dev/null || fail 3 "cannot read ${1#file://}${3:-}" ;;
    *)
      if command -v curl >/dev/null 2>&1; then
        curl -fsSL --retry 3 --connect-timeout 15 --max-time 600 -o "$2" "$1" ||
          fail 3 "download failed: $1${3:-}"
      elif command -v wget >/dev/null 2>&1; then
        wget -q --tries=3 --timeout=30 -O "$2" "$1" || fail 3 "download failed: $1${3:-}"
      else
        fail 2 "needs curl or wget to download $1"
      fi
      ;;
  esac
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d ' ' -f 1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d ' ' -f 1
  elif command -v openssl >/dev/null 2>&1; then
    openssl dgst -sha256 -r "$1" | cut -d ' ' -f 1
  else
    fail 2 "needs sha256sum, shasum or openssl to verify the download"
  fi
}

check_version() {
  case $1 in
    '' | *[!0-9A-Za-z.+-]*) fail 2 "not a version: '$1' (for example 0.2.0)" ;;
  esac
}

target=$(detect_target)
version=${STRIPE_OPS_VERSION:-latest}
version=${version#v}
if [ -n "${STRIPE_OPS_INSTALL_BASE_URL:-}" ]; then
  latest_url=${STRIPE_OPS_INSTALL_BASE_URL%/}
else
  latest_url=https://github.com/$repository/releases/latest/download
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP

if [ "$version" = latest ]; then
  fetch "$latest_url/stripe-ops-version.txt" "$tmp/version"
  version=$(head -n 1 "$tmp/version" | tr -d ' \r')
fi
check_version "$version"
if [ "${1:-}" = --print-version ]; then
  echo "$version"
  exit 0
fi
base_url=${STRIPE_OPS_INSTALL_BASE_URL:-https://github.com/$repository/releases/download/v$version}
base_url=${base_url%/}

if [ -n "${STRIPE_OPS_INSTALL_DIR:-}" ]; then
  install_dir=$STRIPE_OPS_INSTALL_DIR
elif [ -n "${HOME:-}" ]; then
  install_dir=$HOME/.local/bin
else
  fail 2 "neither STRIPE_OPS_INSTALL_DIR nor HOME is set"
fi
dest=$install_dir/stripe-ops
if [ -x "$dest" ] && [ "$("$dest" -V 2>/dev/null || true)" = "stripe-ops $version" ]; then
  say "stripe-ops $version is already installed: $dest"
  exit 0
fi

name=stripe-ops-$version-$target
say "downloading $name.tar.gz from $base_url"
hint=" (is $version released for $target?)"
fetch "$base_url/$name.tar.gz" "$tmp/$name.tar.gz" "$hint"
fetch "$base_url/$name.tar.gz.sha256" "$tmp/$name.tar.gz.sha256" "$hint"
expected=$(cut -d ' ' -f 1 <"$tmp/$name.tar.gz.sha256")
actual=$(sha256_of "$tmp/$name.tar.gz")
[ "${#expected}" = 64 ] || fail 1 "$name.tar.gz.sha256 does not hold a SHA-256: nothing installed"
[ "$actual" = "$expected" ] ||
  fail 1 "checksum mismatch for $name.tar.gz: expected $expected, got $actual; nothing installed"

if ! mkdir -p "$install_dir" 2>/dev/null || ! [ -w "$install_dir" ]; then
  fail 2 "cannot write to $install_dir: set STRIPE_OPS_INSTALL_DIR to a directory you own" \
    "(this installer never uses sudo)"
fi
# Unpacked next to its destination: the final move is one rename, and a /tmp mounted noexec
# cannot stop the check that the binary runs. -o: owned by whoever installs, not the archive's ids.
stage=$(mktemp -d "$install_dir/.stripe-ops-install.XXXXXX")
trap 'rm -rf "$tmp" "$stage"' EXIT
tar -xzof "$tmp/$name.tar.gz" -C "$stage" || fail 1 "$name.tar.gz is not a readable archive"
new=$stage/$name/stripe-ops
[ -f "$new" ] || fail 1 "$name.tar.gz holds no $name/stripe-ops"
ran=$("$new" -V 2>&1) || fail 1 "the downloaded binary does not run on this machine: $ran"
[ "$ran" = "stripe-ops $version" ] || fail 1 "$name.tar.gz holds '$ran', expected stripe-ops $version"
mv -f "$new" "$dest"
say "installed stripe-ops $version ($target): $dest"
case ":${PATH:-}:" in
  *":$install_dir:"*) ;;
  *) say "$install_dir is not on PATH: export PATH=\"$install_dir:\$PATH\"" ;;
esac
