#!/bin/sh
# Bring deploy/compose.yaml up on a machine that reaches Debian's archive and PyPI but no image
# registry (Docker Hub): base images are made with debootstrap, the services' images are
# stand-ins built from Debian packages (PostgreSQL 15, Redis 7.0, nginx 1.26 from trixie, Python
# 3.11 from bookworm), then the real deploy/Dockerfile builds the qibot image on them and the
# real compose file runs, with deploy/standins/compose.standins.yaml swapping the three images.
# Works with Compose v2 (`docker compose`) or Debian bookworm's docker-compose 1.29 (which does
# not know the top-level `name:`: a copy without it is used). Run from the repository root, as
# root, with dockerd running; deploy/qibot.env, deploy/.env and deploy/tls/ as README "Production".
# Not for production: use the official images there.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${STANDINS_WORK:-/tmp/qibot-standins}
mkdir -p "$work"
for suite in bookworm trixie; do
  if ! docker image inspect "qibot-base:$suite" >/dev/null 2>&1; then
    [ -d "$work/rootfs-$suite" ] || debootstrap --variant=minbase --include=ca-certificates "$suite" \
      "$work/rootfs-$suite" http://deb.debian.org/debian
    tar -C "$work/rootfs-$suite" -c . | docker import - "qibot-base:$suite"
  fi
done
cp /etc/ssl/certs/ca-certificates.crt "$here/python/host-ca.crt"
docker build -q -t python:3.11-slim "$here/python"
rm -f "$here/python/host-ca.crt"
docker build -q -t qibot-standin/postgres:15 "$here/postgres"
docker build -q -t qibot-standin/redis:7 "$here/redis"
docker build -q -t qibot-standin/nginx:1.26 "$here/nginx"
docker build -t qibot:latest -f "$root/deploy/Dockerfile" "$root"
if docker compose version >/dev/null 2>&1; then
  docker compose -f "$root/deploy/compose.yaml" -f "$here/compose.standins.yaml" up -d
else
  grep -v '^name: ' "$root/deploy/compose.yaml" > "$root/deploy/.compose.v1.yaml"
  docker-compose -p qibot -f "$root/deploy/.compose.v1.yaml" -f "$here/compose.standins.yaml" up -d
fi
