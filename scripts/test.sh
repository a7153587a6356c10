#!/usr/bin/env bash
# Command (b) of the README: installs everything the tests need on a fresh Debian machine and runs every
# check CI runs: ruff (lint and format), mypy, yamllint and ansible-lint on the playbooks, then pytest with
# every tier (the slow `nodes` tier included), and the unit tier again with the lowest dependency versions
# pyproject.toml allows. Extra arguments go to pytest, which then runs once, with them alone.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system-packages.sh

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test,lint]'

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
if compgen -G "playbooks/*.yml" >/dev/null; then
  echo "== yamllint"
  .venv/bin/yamllint -s playbooks inventories
  echo "== ansible-lint"
  (cd playbooks && ../.venv/bin/ansible-lint --profile production --strict .)
fi

echo "== lowest allowed dependency versions"
bash scripts/test-min-versions.sh

# pytest's exit code 5 means it collected nothing: that is a failure, not a pass.
run_pytest() {
  local status=0
  .venv/bin/python -m pytest "$@" || status=$?
  if [[ $status -eq 5 ]]; then
    echo "pytest $*: collected no tests: that is a failure, not a pass" >&2
    return 1
  fi
  return "$status"
}

if [[ $# -gt 0 ]]; then
  echo "== pytest $*"
  run_pytest "$@"
  exit
fi
# Every tier but the nodes tier runs in one process per CPU (pytest-xdist). The nodes tier shares its clusters
# between tests and loads every CPU by itself, so it runs in one process, after the others.
status=0
echo "== pytest: every tier but nodes"
run_pytest -n auto -m "not nodes" || status=$?
echo "== pytest: the nodes tier"
run_pytest -m nodes || status=$?
exit "$status"
