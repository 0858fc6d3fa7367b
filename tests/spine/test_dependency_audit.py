"""Issue 13, point 8: the deployment constraints and the dependency audit, without the network
(the local advisory database is served on loopback; no advisory service is asked)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import tomllib
import urllib.request
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))

import constraints  # noqa: E402  (deploy/ is not a package)
import osv_local  # noqa: E402


def pins() -> dict[str, str]:
    found = {}
    for line in (ROOT / "deploy" / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line!r}"
            found[canonicalize_name(name)] = version
    return found


def test_the_constraints_pin_every_run_time_requirement_within_its_range() -> None:
    pinned = pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is a dependency but deploy/constraints.txt does not pin it"
        assert requirement.specifier.contains(Version(pinned[name]), prereleases=True), \
            f"{name}=={pinned[name]} does not satisfy {requirement.specifier} (regenerate the constraints)"
    test_only = {canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["test"]}
    assert not test_only & set(pinned), "test tools are not deployed"


def test_the_generator_walks_the_closure_of_what_is_installed() -> None:
    closure = constraints.closure(["aiohttp>=3.10", "SQLAlchemy[asyncio]>=2.0.30"])
    assert {"aiohttp", "yarl", "multidict", "sqlalchemy", "greenlet"} <= set(closure)
    assert all(Version(v) for v in closure.values())


ADVISORY_YAML = """
id: PYSEC-2099-1
summary: Template injection in old versions
aliases: [CVE-2099-1]
affected:
- package: {name: Jinja2, ecosystem: PyPI}
  ranges:
  - type: ECOSYSTEM
    events: [{introduced: "0"}, {fixed: "3.1.7"}]
"""
ADVISORY_JSON = {
    "id": "GHSA-test-0002", "summary": "Only 2.x up to 2.3.1",
    "affected": [{"package": {"name": "demo-pkg", "ecosystem": "PyPI"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0"}, {"last_affected": "2.3.1"}]}],
                  "versions": ["1.9.9"]}],
}
NPM_ADVISORY = {"id": "GHSA-npm", "affected": [{"package": {"name": "jinja2", "ecosystem": "npm"}}]}


def advisory_dir(tmp_path: Path) -> Path:
    base = tmp_path / "advisories"
    (base / "vulns" / "jinja2").mkdir(parents=True)
    (base / "vulns" / "jinja2" / "PYSEC-2099-1.yaml").write_text(ADVISORY_YAML, encoding="utf-8")
    (base / "demo.json").write_text(json.dumps(ADVISORY_JSON), encoding="utf-8")
    (base / "npm.json").write_text(json.dumps(NPM_ADVISORY), encoding="utf-8")
    return base


def test_the_local_advisory_database_answers_like_osv(tmp_path: Path) -> None:
    index = osv_local.load(advisory_dir(tmp_path))
    assert set(index) == {"jinja2", "demo-pkg"}  # npm records are not ours
    assert [r["id"] for r in osv_local.affecting(index, "jinja2", "3.1.6")] == ["PYSEC-2099-1"]
    assert osv_local.affecting(index, "Jinja2", "3.1.7") == []
    assert [r["id"] for r in osv_local.affecting(index, "demo_pkg", "2.3.1")] == ["GHSA-test-0002"]
    assert osv_local.affecting(index, "demo-pkg", "2.3.2") == []
    assert osv_local.affecting(index, "demo-pkg", "1.9.9") != []  # listed explicitly
    assert osv_local.affecting(index, "demo-pkg", "1.9.8") == []

    server = osv_local.make_server(index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        query = json.dumps({"package": {"name": "jinja2", "ecosystem": "PyPI"}, "version": "3.0.0"}).encode()
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/query"
        with urllib.request.urlopen(urllib.request.Request(url, data=query), timeout=5) as response:
            body = json.loads(response.read())
        assert [v["id"] for v in body["vulns"]] == ["PYSEC-2099-1"]
        assert body["vulns"][0]["affected"][0]["package"]["name"] == "jinja2"  # canonical, as pip-audit compares
    finally:
        server.shutdown()
        server.server_close()


def test_the_audit_script_uses_the_local_database_and_the_ignore_list(tmp_path: Path) -> None:
    """With QIBOT_ADVISORY_DB given, the audit asks no service: a stand-in for pip-audit records
    its arguments and queries the loopback server the script started."""
    venv = tmp_path / "audit-venv"
    (venv / "bin").mkdir(parents=True)
    stub = venv / "bin" / "pip-audit"
    stub.write_text(f"""#!{sys.executable}
import json, sys, urllib.request
args = sys.argv[1:]
url = args[args.index("--osv-url") + 1]
query = json.dumps({{"package": {{"name": "jinja2", "ecosystem": "PyPI"}}, "version": "3.1.6"}}).encode()
with urllib.request.urlopen(urllib.request.Request(url, data=query), timeout=5) as response:
    found = [v["id"] for v in json.loads(response.read())["vulns"]]
print(json.dumps({{"args": args, "found": found}}))
""", encoding="utf-8")
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    environ = {**os.environ, "AUDIT_VENV": str(venv), "QIBOT_ADVISORY_DB": str(advisory_dir(tmp_path)),
               "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(ROOT / "deploy" / "audit.sh")], capture_output=True, text=True,
                            env=environ, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    first, report = result.stdout.strip().splitlines()[0], json.loads(result.stdout.strip().splitlines()[-1])
    assert "against the local advisory database" in first
    assert report["found"] == ["PYSEC-2099-1"]
    args = report["args"]
    assert args[:2] == ["-r", "deploy/constraints.txt"] and "--no-deps" in args and args[args.index("-s") + 1] == "osv"
