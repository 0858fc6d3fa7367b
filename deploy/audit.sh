#!/usr/bin/env bash
# The dependency audit of the release checklist (deploy/README.md): pip-audit over the pinned
# deployment constraints (deploy/constraints.txt). The advisory source, first that applies:
#   QIBOT_ADVISORY_DB=<dir>   a local advisory database (OSV records, e.g. the PyPA advisory
#                             database), served on loopback by deploy/osv_local.py
#   the OSV API, then PyPI's JSON API, when one answers
# With none, it says so in one line and exits 0: an unreachable service must not fail CI.
# A known vulnerability exits 1; one accepted after review goes in deploy/audit-ignore.txt.
# pip-audit runs from its own virtualenv (AUDIT_VENV, default .venv-audit), not the project's.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
AUDIT_VENV=${AUDIT_VENV:-.venv-audit}

args=(-r deploy/constraints.txt --no-deps --disable-pip --progress-spinner off)
while read -r id _; do
  [ -n "$id" ] && [ "${id:0:1}" != "#" ] && args+=(--ignore-vuln "$id")
done < <(cat deploy/audit-ignore.txt 2>/dev/null || true)

reachable() {  # $1: a URL; $2: a POST body or empty. 5 seconds, no retry.
  "$PYTHON" - "$1" "${2:-}" <<'PY' >/dev/null 2>&1
import sys, urllib.request
url, body = sys.argv[1], sys.argv[2].encode() or None
request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=5) as response:
    sys.exit(0 if response.status == 200 else 1)
PY
}

server_pid=""
cleanup() { if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

if [ -n "${QIBOT_ADVISORY_DB:-}" ]; then
  port_file=$(mktemp)
  "$PYTHON" deploy/osv_local.py "$QIBOT_ADVISORY_DB" --port-file "$port_file" &
  server_pid=$!
  for _ in $(seq 1 50); do [ -s "$port_file" ] && break; sleep 0.2; done
  if [ ! -s "$port_file" ]; then echo "dependency audit: the local advisory database $QIBOT_ADVISORY_DB could not be served" >&2; exit 1; fi
  source_name="the local advisory database $QIBOT_ADVISORY_DB"
  args+=(-s osv --osv-url "http://127.0.0.1:$(cat "$port_file")/v1/query")
  rm -f "$port_file"
elif reachable https://api.osv.dev/v1/query '{"package":{"name":"pip","ecosystem":"PyPI"},"version":"24.0"}'; then
  source_name="the OSV API"
  args+=(-s osv)
elif reachable https://pypi.org/pypi/pip/24.0/json; then
  source_name="PyPI's JSON API"
  args+=(-s pypi)
else
  echo "dependency audit skipped: no advisory source reachable (OSV API, PyPI JSON API); set QIBOT_ADVISORY_DB to a local advisory database"
  exit 0
fi

if [ ! -x "$AUDIT_VENV/bin/pip-audit" ]; then
  if ! { python3 -m venv "$AUDIT_VENV" && "$AUDIT_VENV/bin/pip" install -q "pip-audit>=2.7"; } >/dev/null 2>&1; then
    echo "dependency audit skipped: pip-audit could not be installed into $AUDIT_VENV"
    exit 0
  fi
fi
echo "dependency audit: pip-audit over deploy/constraints.txt against $source_name"
"$AUDIT_VENV/bin/pip-audit" "${args[@]}" 2> >(grep -v -e "--no-deps is supported" -e "pip-compile" >&2)
