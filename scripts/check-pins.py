#!/usr/bin/env python3
"""Says whether the test suite's pins of Stripe's libraries and tools are what the registries
serve today. A script, not a test: it asks npm and PyPI, and the tests stay offline.

    scripts/check-pins.py

Pins read:
  - npm (tests/receivers/package-lock.json, what `npm ci` installs): stripe, typescript, @stripe/cli
  - PyPI (tests/run.sh): stripe, moto

One line per pin: its name and registry, the pinned and the newest version, and `current`,
`behind` or `ahead` (a pin newer than the registry's newest: a yanked or withdrawn release).
The registries are asked with their own clients: `npm view NAME version` (the `latest`
dist-tag) and `pip index versions NAME` (the newest final release).
Exit 0 when every pin is current, 1 when one is behind (or ahead), 2 when a pin cannot be read
here, 3 when a registry does not answer within 60 s (and no pin is known to be off).
"""
import concurrent.futures
import json
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
RECEIVERS = ROOT / "tests" / "receivers"
RUN_SH = ROOT / "tests" / "run.sh"
NPM_PINS = ("stripe", "typescript", "@stripe/cli")
PYPI_PINS = {"stripe": "STRIPE_VERSION", "moto": "MOTO_VERSION"}
DEADLINE = 60  # seconds per registry question
# What moving a pin takes, printed under a pin that is behind.
HOW = {
    ("npm", "stripe"): "cd tests/receivers && npm install stripe@{v} --save-exact, then "
    "python3 fixtures/generate.py and move API_VERSION (src/webhook/versions.rs, the generator) "
    "if stripe-node pins a new one",
    ("npm", "typescript"): "cd tests/receivers && npm install typescript@{v} --save-exact",
    ("npm", "@stripe/cli"): "cd tests/receivers && npm install @stripe/cli@{v} --save-exact "
    "(the lock must keep every platform's @stripe/cli-* entry for `npm ci`)",
    ("PyPI", "stripe"): "STRIPE_VERSION=\"{v}\" in tests/run.sh",
    ("PyPI", "moto"): "MOTO_VERSION=\"{v}\" in tests/run.sh",
}


class Unreadable(Exception):
    """A pin this checkout does not state (exit 2)."""


class NoAnswer(Exception):
    """A registry that did not answer (exit 3)."""


def npm_pins():
    lock = json.loads((RECEIVERS / "package-lock.json").read_text())
    declared = json.loads((RECEIVERS / "package.json").read_text())["dependencies"]
    pins = {}
    for name in NPM_PINS:
        entry = lock.get("packages", {}).get(f"node_modules/{name}")
        if not entry or "version" not in entry:
            raise Unreadable(f"{name} is not in tests/receivers/package-lock.json")
        if declared.get(name) != entry["version"]:
            raise Unreadable(
                f"{name}: package.json says {declared.get(name)!r}, the lock file {entry['version']}: run npm install"
            )
        pins[name] = entry["version"]
    return pins


def pypi_pins():
    text = RUN_SH.read_text()
    pins = {}
    for name, var in PYPI_PINS.items():
        m = re.search(rf'^{var}="([^"]+)"$', text, flags=re.M)
        if not m:
            raise Unreadable(f"tests/run.sh has no {var}=\"…\" line")
        pins[name] = m.group(1)
    return pins


def ask(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=DEADLINE, check=False)
    except subprocess.TimeoutExpired:
        raise NoAnswer(f"`{' '.join(cmd)}` did not answer within {DEADLINE} s") from None
    except FileNotFoundError:
        raise NoAnswer(f"`{cmd[0]}` is not installed") from None
    if out.returncode != 0:
        said = [line for line in out.stderr.splitlines()
                if line.strip() and "complete log" not in line and not line.startswith("WARNING")]
        raise NoAnswer(f"`{' '.join(cmd)}` failed: {said[0] if said else 'no message'}")
    return out.stdout


def newest_npm(name):
    version = ask(["npm", "view", name, "version"]).strip()
    if not re.fullmatch(r"\d+(\.\d+)*\S*", version):
        raise NoAnswer(f"npm view {name} version answered {version!r}")
    return version


def newest_pypi(name):
    out = ask([sys.executable, "-m", "pip", "index", "versions", name, "--disable-pip-version-check"])
    m = re.search(rf"^{re.escape(name)} \(([^)]+)\)$", out, flags=re.M | re.I)
    if not m:
        raise NoAnswer(f"pip index versions {name} answered no version")
    return m.group(1)


def key(version):
    """A release's order: 23.10.0 after 23.2.0; a pre-release (1.2.0-beta) before its release."""
    release, _, pre = version.partition("-")
    nums = tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.]", release))
    return nums, pre == ""


def verdict(pinned, newest):
    if pinned == newest:
        return "current"
    return "behind" if key(pinned) < key(newest) else "ahead"


def main():
    if len(sys.argv) > 1:
        print(__doc__.strip(), file=sys.stderr)
        return 0 if sys.argv[1] in ("-h", "--help") else 2
    try:
        pins = [("npm", n, v) for n, v in npm_pins().items()]
        pins += [("PyPI", n, v) for n, v in pypi_pins().items()]
    except (Unreadable, OSError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    lookups = {("npm", n): newest_npm for n in NPM_PINS} | {("PyPI", n): newest_pypi for n in PYPI_PINS}
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(pins)) as pool:
        futures = {(reg, name): pool.submit(lookups[(reg, name)], name) for reg, name, _ in pins}
    width = max(len(f"{name} ({reg})") for reg, name, _ in pins)
    off, unanswered = False, False
    for reg, name, pinned in pins:
        label = f"{name} ({reg})".ljust(width)
        try:
            newest = futures[(reg, name)].result()
        except NoAnswer as err:
            print(f"{label}  pinned {pinned}  newest ?  no answer: {err}")
            unanswered = True
            continue
        state = verdict(pinned, newest)
        print(f"{label}  pinned {pinned}  newest {newest}  {state}")
        off = off or state != "current"
        if state == "behind":
            print(f"    to move: {HOW[(reg, name)].format(v=newest)}")
    # A pin known to be off is the finding; a registry's silence only when nothing else is.
    return 1 if off else 3 if unanswered else 0


if __name__ == "__main__":
    sys.exit(main())
