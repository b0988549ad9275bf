#!/usr/bin/env bash
# make setup: Debian packages, the locked virtualenv, and a migrated Airflow home.
# Safe to run again: each step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOCK=${LOCK:-requirements-dev.lock}
UV_VERSION=0.13.8

# 1. Debian packages: the mysql provider's driver compiles against libmysqlclient;
#    the test bed runs a private sshd; the browser tests use Debian's chromium; `make stack` and its tests
#    run Airflow on PostgreSQL (the machine's, started if stopped) with a redis-server of their own.
DEBS="pkg-config default-libmysqlclient-dev openssh-server chromium postgresql redis-server"
missing=""
for p in $DEBS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "setup: missing Debian packages; run: sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
  fi
fi

# 2. The virtualenv, exactly as the lock says (uv itself is pinned too).
if [ ! -x .venv/bin/python ]; then
  python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
fi
if [ ! -x .venv/bin/uv ] || ! .venv/bin/uv --version | grep -q "$UV_VERSION"; then
  .venv/bin/python -m pip --version >/dev/null 2>&1 || .venv/bin/python -m ensurepip -q
  .venv/bin/python -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
stamp=.venv/.lock-installed
if [ ! -f "$stamp" ] || ! cmp -s "$LOCK" "$stamp"; then
  echo "setup: installing $LOCK into .venv"
  VIRTUAL_ENV="$ROOT/.venv" .venv/bin/uv pip sync -q "$LOCK"
  # The project root on sys.path, so `include`, `testbed` and the DAGs import alike
  # from pytest, the airflow CLI and the Moodle double.
  echo "$ROOT" > "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/parent_provisioning_project.pth"
  cp "$LOCK" "$stamp"
fi

# 3. The Airflow home: SQLite metadata DB, examples off, this project's folders.
# shellcheck source=/dev/null
. scripts/airflow_env.sh
if [ ! -f "$AIRFLOW_HOME/airflow.db" ] || [ "${FORCE_MIGRATE:-0}" = 1 ]; then
  echo "setup: migrating the Airflow metadata DB in $AIRFLOW_HOME"
  .venv/bin/airflow db migrate >/dev/null 2>&1 || .venv/bin/airflow db migrate
fi
echo "setup: ok"
