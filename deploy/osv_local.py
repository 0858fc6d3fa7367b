"""Serve a local advisory database as the OSV query API, on loopback, for ``pip-audit --osv-url``.

    python deploy/osv_local.py ADVISORY_DIR [--port 0] [--port-file FILE]

ADVISORY_DIR holds OSV records (``*.json``, ``*.yaml``, ``*.yml``, in any sub-folders), such as a
checkout or an unpacked export of the PyPA advisory database, copied to a machine that cannot
reach an advisory service. Only PyPI records are read. ``POST /v1/query`` with
``{"package": {"name", "ecosystem": "PyPI"}, "version"}`` answers ``{"vulns": [...]}`` with the
records affecting that version, as the OSV service does, so pip-audit needs no network.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

Advisories = dict[str, list[dict[str, Any]]]


def load(directory: Path) -> Advisories:
    """Canonical package name -> the OSV records that name it (ecosystem PyPI)."""
    index: Advisories = {}
    for path in sorted(directory.rglob("*")):
        if path.suffix not in (".json", ".yaml", ".yml") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        record = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        if not isinstance(record, dict) or "id" not in record:
            continue
        names = {canonicalize_name(a["package"]["name"]) for a in record.get("affected") or []
                 if (a.get("package") or {}).get("ecosystem") == "PyPI" and a["package"].get("name")}
        for name in names:
            index.setdefault(name, []).append(record)
    return index


def _version(text: str) -> Version:
    return Version("0") if text == "0" else Version(text)


def _in_ranges(version: Version, ranges: Iterable[dict[str, Any]]) -> bool:
    """OSV ECOSYSTEM ranges: affected from each ``introduced`` up to (not including) the next
    ``fixed``, or up to and including a ``last_affected``."""
    for spec in ranges:
        if spec.get("type") != "ECOSYSTEM":
            continue
        events = []
        for event in spec.get("events") or []:
            for kind, point in event.items():
                try:
                    events.append((_version(str(point)), kind))
                except InvalidVersion:
                    continue
        affected = False
        for point, kind in sorted(events, key=lambda e: e[0]):
            if kind == "introduced" and point <= version:
                affected = True
            elif (kind == "fixed" and point <= version) or (kind == "last_affected" and point < version):
                affected = False
        if affected:
            return True
    return False


def affecting(index: Advisories, name: str, version: str) -> list[dict[str, Any]]:
    """The records of ``index`` that affect ``name`` at ``version`` (withdrawn ones included, as
    OSV returns them; pip-audit skips them)."""
    key = canonicalize_name(name)
    try:
        wanted = Version(version)
    except InvalidVersion:
        return []
    found = []
    for record in index.get(key, []):
        for affected in record.get("affected") or []:
            package = affected.get("package") or {}
            if package.get("ecosystem") != "PyPI" or canonicalize_name(package.get("name", "")) != key:
                continue
            listed = {str(v) for v in affected.get("versions") or []}
            if version in listed or str(wanted) in listed or _in_ranges(wanted, affected.get("ranges") or []):
                # pip-audit compares the record's package name with the canonical one for fix versions.
                record = {**record, "affected": [
                    {**a, "package": {**a["package"], "name": canonicalize_name(a["package"]["name"])}}
                    for a in record.get("affected") or [] if a.get("package")]}
                found.append(record)
                break
    return found


def make_server(index: Advisories, port: int = 0) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/query":
                self.send_error(404)
                return
            try:
                query = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                package = query["package"]
                body = {"vulns": affecting(index, package["name"], str(query["version"]))}
            except (ValueError, KeyError, TypeError):
                self.send_error(400, "expected {package: {name, ecosystem}, version}")
                return
            data = json.dumps(body if body["vulns"] else {}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: pip-audit prints the results
            return

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--port-file", type=Path, help="write the chosen port here once listening")
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        print(f"{args.directory} is not a directory", file=sys.stderr)
        return 2
    index = load(args.directory)
    server = make_server(index, args.port)
    port = server.server_address[1]
    print(f"{sum(len(v) for v in index.values())} advisories for {len(index)} packages; "
          f"http://127.0.0.1:{port}/v1/query", file=sys.stderr)
    if args.port_file:
        args.port_file.write_text(str(port), encoding="utf-8")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
