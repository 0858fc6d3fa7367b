#!/usr/bin/env bash
# The production shape without containers, as CI runs it: two `qibot serve` workers and a
# `qibot worker` on PostgreSQL + Redis (a conversation through both workers, a worker killed in a
# burst), the two-instance cluster tests, the deploy files and backups. Needs the machine's
# PostgreSQL and Redis (tests/helpers/services.py: TEST_POSTGRES_URL, TEST_REDIS_URL); fails
# instead of skipping when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export TEST_REQUIRE_SERVICES=1
exec .venv/bin/python -m pytest -q \
  tests/spine/test_cluster_processes.py tests/spine/test_cluster.py tests/spine/test_events.py \
  tests/spine/test_graceful.py tests/spine/test_deploy_files.py tests/spine/test_backup.py \
  tests/channels/wechat/test_cluster_retry.py "$@"
