#!/usr/bin/env python3
"""Writes the API calls of every `stripe trigger` of the pinned Stripe CLI into
tests/it/sandbox/triggers.json, keeping what a person wrote there (each trigger's expected
events, their source, and the list of triggers known not to work yet).

    python3 scripts/trigger-fixtures.py       # after `npm ci` in tests/receivers

The list of triggers is the CLI's own `stripe trigger --help`; each trigger's fixture is the one
the pinned binary embeds (go:embed), read through its own `--edit` flag with `cat` as the editor
(GIT_EDITOR), so nothing is taken from another release of the CLI. The CLI then tries to run the
fixture against a closed loopback port and fails at once: nothing leaves the machine (the proxy
variables point at the same closed port).
"""
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
CLI = ROOT / "tests/receivers/node_modules/@stripe/cli-linux-x64/bin/stripe"
DATA = ROOT / "tests/it/sandbox/triggers.json"
CLOSED = "http://127.0.0.1:9"


def cli(args, home):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "XDG_CONFIG_HOME": os.path.join(home, "config"),
        "STRIPE_API_KEY": "sk_test_" + "0" * 24,
        "STRIPE_CLI_TELEMETRY_OPTOUT": "1",
        "STRIPE_NO_AUTO_UPDATE": "1",
        "GIT_EDITOR": "cat",
        "HTTP_PROXY": CLOSED,
        "HTTPS_PROXY": CLOSED,
    }
    out = subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=60)
    return out.stdout + out.stderr


def trigger_names(home):
    text = cli(["trigger", "--help"], home)
    block = text.split("Supported events:", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip()]


def fixture(name, home):
    text = cli(["trigger", name, "--edit", "--api-base", CLOSED], home)
    start = text.index("Waiting for your editor to close the file...") + len("Waiting for your editor to close the file...")
    value, _ = json.JSONDecoder().raw_decode(text[start:].lstrip())
    return value


def calls(fx):
    out = []
    for req in fx["fixtures"]:
        call = {"name": req["name"], "method": req["method"].upper(), "path": req["path"],
                "params": req.get("params") or {}}
        for extra in ("expected_error_type", "api_base", "headers", "context", "idempotency_key"):
            if req.get(extra):
                call[extra] = req[extra]
        out.append(call)
    return out


def dump(data):
    """One line per call and per list of events, so that a diff shows what changed."""
    line = lambda v: json.dumps(v, ensure_ascii=False)
    out = ["{", f' "about": {line(data["about"])},', f' "cli": {line(data["cli"])},', ' "triggers": {']
    names = list(data["triggers"])
    for i, name in enumerate(names):
        t = data["triggers"][name]
        calls = ",\n".join(f"    {line(c)}" for c in t["calls"])
        out.append(f"  {line(name)}: {{\n   \"events\": {line(t['events'])},\n   \"source\": {line(t['source'])},"
                   f"\n   \"calls\": [\n{calls}\n   ]\n  }}" + ("," if i < len(names) - 1 else ""))
    out.append(" },")
    notes = data["not_yet"]
    out.append(' "not_yet": {' + ("" if notes else "}"))
    for i, (name, why) in enumerate(notes.items()):
        out.append(f"  {line(name)}: {line(why)}" + ("," if i < len(notes) - 1 else ""))
    if notes:
        out.append(" }")
    out.append("}")
    return "\n".join(out) + "\n"


def main():
    if not CLI.exists():
        sys.exit(f"{CLI} is missing: run `npm ci` in tests/receivers")
    version = re.search(r"stripe version (\S+)", subprocess.run([str(CLI), "version"], capture_output=True,
                                                              text=True).stdout).group(1)
    old = json.loads(DATA.read_text()) if DATA.exists() else {}
    old_triggers = old.get("triggers", {})
    with tempfile.TemporaryDirectory() as home:
        names = trigger_names(home)
        triggers = {}
        for name in names:
            kept = old_triggers.get(name, {})
            entry = {"events": kept.get("events"), "source": kept.get("source")}
            entry["calls"] = calls(fixture(name, home))
            triggers[name] = entry
    data = {
        "about": old.get("about", ""),
        "cli": version,
        "triggers": triggers,
        "not_yet": old.get("not_yet", {}),
    }
    DATA.write_text(dump(data))
    missing = [n for n, t in triggers.items() if t["events"] is None]
    print(f"stripe {version}: {len(triggers)} triggers; {len(missing)} without expected events"
          + (f": {', '.join(missing)}" if missing else ""))


if __name__ == "__main__":
    main()
