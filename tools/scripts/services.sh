#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis run on 127.0.0.1 and that the role and database the
# service and its tests use exist. Installs them from Debian's packages when missing.
# Idempotent; fails loudly when a service cannot be started. Used by .ci/run and by
# developers on a fresh machine (as root): bash tools/scripts/services.sh
set -euo pipefail

DB_USER=${DMQ_DB_USER:-dmq_user}
DB_PASSWORD=${DMQ_DB_PASSWORD:-dmq_password}
DB_NAME=${DMQ_DB_NAME:-dmq_metadata}

log() { printf '[services] %s\n' "$*"; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

apt_updated=0
apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found: install $* by hand"
  if [ "$apt_updated" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
}

# Polls a readiness probe for up to $2 seconds (a bounded wait for a server to start).
wait_until() {
  local probe=$1 seconds=$2 i
  for ((i = 0; i < seconds * 5; i++)); do
    if eval "$probe" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

# --- PostgreSQL -------------------------------------------------------------
if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  log "PostgreSQL is not installed: installing it"
  apt_install postgresql
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  log "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
    die "PostgreSQL $version did not start (see /var/log/postgresql/)"
fi
wait_until "pg_isready -h 127.0.0.1 -p 5432 -q" 60 || die "PostgreSQL does not accept connections on 127.0.0.1:5432"

# Run SQL as the postgres superuser: over TCP when trust auth allows, else by peer auth.
as_postgres() {
  if psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
    psql -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"
  else
    runuser -u postgres -- psql -d postgres -v ON_ERROR_STOP=1 -qtA "$@"
  fi
}
if [ "$(as_postgres -c "select 1 from pg_roles where rolname = '$DB_USER'")" != 1 ]; then
  log "creating role $DB_USER"
  as_postgres -c "create role $DB_USER login password '$DB_PASSWORD' createdb"
else
  as_postgres -c "alter role $DB_USER login password '$DB_PASSWORD' createdb"
fi
if [ "$(as_postgres -c "select 1 from pg_database where datname = '$DB_NAME'")" != 1 ]; then
  log "creating database $DB_NAME"
  as_postgres -c "create database $DB_NAME owner $DB_USER"
fi
PGPASSWORD=$DB_PASSWORD psql -h 127.0.0.1 -U "$DB_USER" -d "$DB_NAME" -tAc 'select 1' >/dev/null ||
  die "cannot connect as $DB_USER to $DB_NAME on 127.0.0.1:5432 (check pg_hba.conf)"
log "PostgreSQL ready: postgresql://$DB_USER:***@127.0.0.1:5432/$DB_NAME"

# --- Redis ------------------------------------------------------------------
if ! command -v redis-server >/dev/null; then
  log "Redis is not installed: installing it"
  apt_install redis-server
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no ||
    die "redis-server did not start"
fi
wait_until "redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG" 30 || die "Redis does not answer on 127.0.0.1:6379"
log "Redis ready: redis://127.0.0.1:6379"
