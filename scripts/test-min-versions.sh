#!/usr/bin/env bash
# The lowest versions pyproject.toml allows must work: installs every runtime dependency, and those of the
# optional extras (openstack, aws, plot), at its lower bound (the `>=` of each requirement) into .venv-min and
# runs the unit tier there. Test tools are taken as they come. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
python3 - "$constraints" <<'PY'
import re, sys, tomllib
from pathlib import Path

project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
extras = project["optional-dependencies"]
requirements = project["dependencies"] + [
    requirement
    for name, group in extras.items()
    if name not in ("test", "lint")
    for requirement in group
]
lines = []
for requirement in requirements:
    match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*>=\s*([0-9][^,]*)(,.*)?", requirement)
    if match is None:
        sys.exit(f"pyproject.toml: {requirement!r} has no lower bound; give it one (>=)")
    lines.append(f"{match.group(1)}=={match.group(3)}")
Path(sys.argv[1]).write_text("\n".join(lines) + "\n")
PY

if [[ ! -x .venv-min/bin/python ]]; then
  python3 -m venv .venv-min
fi
.venv-min/bin/python -m pip install -q --upgrade pip
.venv-min/bin/python -m pip install -q -c "$constraints" -e '.[test]'
echo "== pytest (unit tier) with the lowest allowed versions: $(tr '\n' ' ' < "$constraints")"
.venv-min/bin/python -m pytest -q -p no:cacheprovider -n auto -m "not nodes and not wheel" tests/unit
