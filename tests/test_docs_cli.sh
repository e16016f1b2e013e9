#!/usr/bin/env bash
# test_docs_cli.sh: every `recompose` command line that README.md and
# docs/*.md show names a command that exists, options that command's
# --help lists, and config keys (--set section.key=...) that `recompose
# keys` lists, so the docs cannot drift from the CLI.
set -u
BIN=${RC_BIN:?RC_BIN not set}
PY=${RC_PYTHON:-/usr/bin/python3}
cd "$(dirname "$0")/.."
"$PY" - "$BIN" README.md docs/*.md <<'PYEOF'
import re, subprocess, sys
binary, files = sys.argv[1], sys.argv[2:]
helps, failures, checked = {}, [], 0
keys = subprocess.run([binary, "keys"], capture_output=True, text=True).stdout

def help_of(cmd):
    if cmd not in helps:
        r = subprocess.run([binary, cmd, "--help"], capture_output=True, text=True)
        helps[cmd] = (r.returncode, r.stdout + r.stderr)
    return helps[cmd]

# `recompose CMD ...` or `build/recompose CMD ...`, up to the end of a code
# span, a comment or the line
pattern = re.compile(r"(?:^|[\s`(])(?:build/|\$BIN |)recompose\s+([a-z]+)([^`#\n]*)")
for path in files:
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        for m in pattern.finditer(line):
            cmd, rest = m.group(1), m.group(2)
            if cmd in ("is", "and", "the", "a", "as", "on", "in", "to", "for",
                       "with", "itself", "learns", "keeps", "binary", "trains",
                       "has", "reads", "runs", "sessions"):
                continue  # prose ("recompose is ..."), not a command
            where = f"{path}:{n}"
            rc, text = help_of(cmd)
            checked += 1
            if rc != 0 or "usage" not in text.lower():
                if cmd not in ("version", "keys"):
                    failures.append(f"{where}: 'recompose {cmd}' is not a command ({text.strip()[:80]})")
                continue
            for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest):
                if flag != "--help" and flag not in text:
                    failures.append(f"{where}: recompose {cmd} has no option {flag}")
            for key in re.findall(r"--set\s+([a-z_]+\.[a-z_]+)=", rest):
                if f"  {key}\n" not in keys:
                    failures.append(f"{where}: no config key {key}")
for f in failures:
    print("FAIL:", f)
print(f"{checked} command lines checked in {len(files)} files")
sys.exit(1 if failures else 0)
PYEOF
