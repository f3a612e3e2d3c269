#!/usr/bin/env bash
# The GitHub Action's logic (action.yml runs this; the tests run it with the runner's files
# pointed at temporary ones). It masks the secret inputs, installs stripe-ops through install.sh
# into the runner's tool cache (a later job on the same runner finds it there), puts it on PATH,
# runs `stripe-ops --json <args>` when args are given, and sets the outputs version, exit-code
# and json. It exits with stripe-ops' exit code.
# Inputs, from action.yml: INPUT_VERSION, INPUT_VERSION_FILE, INPUT_ARGS, and the secrets
# INPUT_STRIPE_SECRET_KEY, INPUT_WEBHOOK_SECRET, INPUT_SMOKE_WEBHOOK_SECRET, INPUT_BUYER_PASSWORD;
# ACTION_REF and ACTION_REPOSITORY (github.action_ref and github.action_repository).
set -euo pipefail

fail() {
  echo "::error title=stripe-ops action::$1"
  exit "${2:-2}"
}

# Each secret input: masked before anything else is printed, then handed to stripe-ops under
# the variable its commands read. Never written to GITHUB_ENV: later steps do not inherit it.
mask_secrets() {
  local input variable line
  for pair in STRIPE_SECRET_KEY:STRIPE_SECRET_KEY WEBHOOK_SECRET:STRIPE_WEBHOOK_SECRET \
    SMOKE_WEBHOOK_SECRET:SMOKE_STRIPE_WEBHOOK_SECRET BUYER_PASSWORD:SMOKE_BUYER_PASSWORD; do
    input="INPUT_${pair%%:*}"
    variable="${pair#*:}"
    [ -n "${!input:-}" ] || continue
    while IFS= read -r line; do
      [ -z "$line" ] || echo "::add-mask::$line"
    done <<<"${!input}"
    export "$variable=${!input}"
  done
}

# The action's own owner/repo and ref: from the github context, else from the folder the
# runner checked the action out into (…/_actions/OWNER/REPO/REF), since the context is not
# promised inside composite actions (actions/runner#2473).
action_origin() {
  local rest="${GITHUB_ACTION_PATH:-}"
  repository="${ACTION_REPOSITORY:-}"
  ref="${ACTION_REF:-}"
  if [[ "$rest" == */_actions/*/*/* ]]; then
    rest="${rest##*/_actions/}"
    [ -n "$repository" ] || repository="$(cut -d/ -f1-2 <<<"$rest")"
    [ -n "$ref" ] || ref="$(cut -d/ -f3- <<<"$rest")"
  fi
}

# version, else the first version in version-file (a bare version, or a .tool-versions line
# `stripe-ops 0.2.0`), else the action's tag when it is a whole version (v1.2.3), else latest.
wanted_version() {
  if [ -n "${INPUT_VERSION:-}" ]; then
    echo "$INPUT_VERSION"
  elif [ -n "${INPUT_VERSION_FILE:-}" ]; then
    [ -f "$INPUT_VERSION_FILE" ] || fail "version-file $INPUT_VERSION_FILE does not exist"
    awk '$1 == "stripe-ops" { print $2; exit } NF == 1 && $1 !~ /^#/ { print $1; exit }' \
      "$INPUT_VERSION_FILE"
  elif [[ "$ref" =~ ^v[0-9]+\.[0-9]+\.[0-9]+ ]]; then
    echo "$ref"
  else
    echo latest
  fi
}

# The command line from the args input: words split and quoted as xargs reads them ('…', "…",
# backslash), never evaluated by a shell, so args holding $(…) stay text.
read_args() {
  argv=()
  [ -n "${INPUT_ARGS//[[:space:]]/}" ] || return 0
  local word
  xargs printf '%s\0' <<<"$INPUT_ARGS" >"$RUNNER_TEMP/stripe-ops-args" ||
    fail "args: unbalanced quotes in: $INPUT_ARGS"
  while IFS= read -r -d '' word; do argv+=("$word"); done <"$RUNNER_TEMP/stripe-ops-args"
  rm -f "$RUNNER_TEMP/stripe-ops-args"
}

mask_secrets
case "${RUNNER_OS:-}" in
  Linux | macOS) ;;
  *) fail "stripe-ops has releases for Linux and macOS runners, not ${RUNNER_OS:-this runner}" ;;
esac
: "${RUNNER_TOOL_CACHE:?}" "${RUNNER_TEMP:?}" "${GITHUB_OUTPUT:?}" "${GITHUB_PATH:?}"
action_origin
[ -z "$repository" ] || export STRIPE_OPS_REPOSITORY="${STRIPE_OPS_REPOSITORY:-$repository}"
installer="$GITHUB_ACTION_PATH/install.sh"
version="$(wanted_version)"
version="${version#v}"
[ -n "$version" ] || fail "version-file $INPUT_VERSION_FILE names no version"
if [ "$version" = latest ]; then
  version="$(STRIPE_OPS_VERSION=latest sh "$installer" --print-version)"
fi

# The tool cache's layout (@actions/tool-cache): <tool>/<version>/<arch>, done when
# <arch>.complete exists.
arch="$(tr '[:upper:]' '[:lower:]' <<<"${RUNNER_ARCH:-x64}")"
dir="$RUNNER_TOOL_CACHE/stripe-ops/$version/$arch"
if [ -f "$dir.complete" ] && [ -x "$dir/stripe-ops" ]; then
  echo "stripe-ops $version from the tool cache: $dir"
else
  PATH="$dir:$PATH" STRIPE_OPS_VERSION="$version" STRIPE_OPS_INSTALL_DIR="$dir" sh "$installer"
  touch "$dir.complete"
fi
echo "$dir" >>"$GITHUB_PATH"
echo "version=$version" >>"$GITHUB_OUTPUT"

read_args
((${#argv[@]})) || exit 0
json=--json
for word in "${argv[@]}"; do [ "$word" != --json ] || json=""; done
[ -z "$json" ] || argv=("$json" "${argv[@]}")
document="$RUNNER_TEMP/stripe-ops-output.json"
set +e
"$dir/stripe-ops" "${argv[@]}" >"$document"
code=$?
set -e
[ -z "$(tail -c 1 "$document")" ] || echo >>"$document"
cat "$document"
# A multi-line output, between delimiters nothing printed can guess.
delimiter="stripe_ops_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
{
  echo "exit-code=$code"
  echo "json<<$delimiter"
  cat "$document"
  echo "$delimiter"
} >>"$GITHUB_OUTPUT"
rm -f "$document"
exit "$code"
