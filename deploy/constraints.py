"""Write the deployment constraints: every package qibot needs at run time (its dependency
closure, markers evaluated for this interpreter), pinned to the version installed here.

    .venv/bin/python deploy/constraints.py > deploy/constraints.txt

Run it in the environment that passed the tests and the audit (deploy/README.md, "Release
checklist"); deployments install with ``pip install -c deploy/constraints.txt .``, so they run
the versions that were tested and audited. Test-only packages (pytest, playwright, ruff) are left
out: production never installs them.
"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def project_requirements(pyproject: Path = PYPROJECT) -> list[str]:
    """The run-time requirements as pyproject.toml states them (the installed metadata of an
    editable install lags behind until it is reinstalled)."""
    return list(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"])


def closure(requirements: list[str] | None = None) -> dict[str, str]:
    """Canonical name -> installed version, for the project's run-time requirements and theirs."""
    pinned: dict[str, str] = {}
    root = requirements if requirements is not None else project_requirements()
    queue: list[tuple[str, list[str], tuple[str, ...]]] = [("pyproject.toml", root, ())]
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while queue:
        name, lines, wanted = queue.pop()
        for line in lines:
            requirement = Requirement(line)
            environments = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
            if requirement.marker is not None and not any(requirement.marker.evaluate(e) for e in environments):
                continue
            key = canonicalize_name(requirement.name)
            try:
                version = metadata.version(requirement.name)
            except metadata.PackageNotFoundError:
                raise SystemExit(f"{requirement.name} (needed by {name}) is not installed here") from None
            pinned[key] = version
            extras = tuple(sorted(requirement.extras))
            if (key, extras) not in seen:
                seen.add((key, extras))
                queue.append((requirement.name, metadata.distribution(requirement.name).requires or [], extras))
    return pinned


def main() -> int:
    pins = closure()
    print("# Deployment constraints: qibot's run-time dependency closure, pinned from the environment")
    print("# that passed the tests and the audit (deploy/README.md, 'Release checklist'). Regenerate:")
    print("#   .venv/bin/python deploy/constraints.py > deploy/constraints.txt")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    print(f"# Python {python}; install: pip install -c deploy/constraints.txt .")
    for name in sorted(pins):
        print(f"{name}=={pins[name]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
