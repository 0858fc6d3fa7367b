"""deploy/ starts the production shape (issue 16): the compose file has every service, wired to
the health checks and started in order; every qibot command in it and in the systemd units is
one this qibot accepts; nginx passes WebSockets and has the TLS places to fill in. No container
is started here: tests/spine/test_cluster_processes.py runs the same processes directly."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def qibot_command(argv: list[str]) -> None:
    """Parses as this qibot's command line (a renamed flag or command fails here)."""
    assert argv[0].endswith("qibot"), argv
    args = [a.replace("${QIBOT_WEB_WORKERS:-2}", "2") for a in argv[1:]]
    build_parser().parse_args(args)


def test_compose_has_the_production_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "nginx"} <= set(services)
    for name in ("migrate", "web", "worker"):
        qibot_command(services[name]["command"])
    assert services["migrate"]["command"][1:] == ["db", "upgrade"] and services["migrate"]["restart"] == "no"
    assert "--workers" in services["web"]["command"] and services["worker"]["command"] == ["qibot", "worker"]
    for name in ("web", "worker"):  # the workers of one cluster: PostgreSQL and Redis
        env = services[name]["environment"]
        database = env["QIBOT_DATABASE_URL"]
        assert database.startswith("postgresql+asyncpg://") and "@postgres:" in database
        assert env["QIBOT_REDIS_URL"].startswith("redis://redis:")
        assert services[name]["stop_grace_period"]  # time for the graceful shutdown


def test_compose_starts_in_order_on_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("postgres", "redis", "web", "worker", "nginx"):
        assert services[name]["healthcheck"]["test"], name
    assert any("/readyz" in part for part in services["web"]["healthcheck"]["test"])
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["nginx"]["depends_on"]["web"]["condition"] == "service_healthy"
    mounted = [volume.split(":")[0] for volume in services["nginx"]["volumes"]]
    for path in mounted:
        if path.endswith(".conf"):
            assert (DEPLOY / path).exists(), path


def test_the_trusted_proxy_network_is_the_compose_network(compose: dict[str, Any]) -> None:
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert compose["services"]["web"]["environment"]["QIBOT_TRUSTED_PROXIES"] == subnet


@pytest.mark.parametrize("unit", sorted(p.name for p in (DEPLOY / "systemd").glob("*.service")))
def test_systemd_units_run_qibot_commands(unit: str) -> None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / "systemd" / unit, encoding="utf-8")
    service = parser["Service"]
    argv = shlex.split(service["ExecStart"].replace("%i", "8081"))
    qibot_command(argv)
    assert service["EnvironmentFile"] == "/etc/qibot/qibot.env"
    if service.get("Type") != "oneshot":
        assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) >= 30
        assert "qibot-migrate.service" in parser["Unit"]["Requires"]


def test_nginx_passes_websockets_and_leaves_tls_to_fill_in() -> None:
    site = (DEPLOY / "nginx" / "qibot.conf").read_text(encoding="utf-8")
    assert "location /api/chat/ws" in site and 'proxy_set_header Connection "upgrade"' in site
    assert "ssl_certificate " in site and "ssl_certificate_key " in site and "FILL IN" in site
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in site
    for upstream in ("upstream-compose.conf", "upstream-systemd.conf"):
        assert "upstream qibot" in (DEPLOY / "nginx" / upstream).read_text(encoding="utf-8")
    ports = {line.split("127.0.0.1:")[1].split()[0] for line in
             (DEPLOY / "nginx" / "upstream-systemd.conf").read_text(encoding="utf-8").splitlines()
             if "server 127.0.0.1:" in line}
    assert ports == {"8081", "8082"}  # the README's qibot-web@8081 and @8082
