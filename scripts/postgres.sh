#!/usr/bin/env bash
# Start (idempotently) a local PostgreSQL for the catalog tests and print its SQLAlchemy URL
# as the last line. Debian's postgresql package, no systemd: pg_ctlcluster starts it directly.
#
#   scripts/postgres.sh           the test catalog's URL (role nsml, database nsml_test)
#   scripts/postgres.sh --admin   the URL of a team admin role (nsml_admin: may create roles
#                                 and databases), for `nsml-hpc catalog setup-team --admin-url`
#
# Team catalogs authenticate each user as their own role: on this machine by peer
# authentication over the Unix socket (Debian's pg_hba.conf: `local all all peer`), so
# alice's catalog URL is postgresql+psycopg://alice@/DB?host=/var/run/postgresql; from
# elsewhere with a per-user password (setup-team --password).
set -euo pipefail
DB=nsml_test
ROLE=nsml
PASS=nsml-test-only
ADMIN_ROLE=nsml_admin
ADMIN_PASS=nsml-admin-test-only

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  echo "postgres: installing postgresql" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -q "^$version main$"; then
  pg_createcluster "$version" main >&2
fi
mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql
if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -q online; then
  pg_ctlcluster "$version" main start >&2
fi
for _ in $(seq 1 100); do
  runuser -u postgres -- pg_isready -q && break
  sleep 0.1
done
psql_admin() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtAc "$1"; }
if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname='$ROLE'")" != 1 ]; then
  psql_admin "CREATE ROLE $ROLE LOGIN PASSWORD '$PASS'" >&2
fi
if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname='$DB'")" != 1 ]; then
  psql_admin "CREATE DATABASE $DB OWNER $ROLE" >&2
fi
if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname='$ADMIN_ROLE'")" != 1 ]; then
  psql_admin "CREATE ROLE $ADMIN_ROLE LOGIN CREATEROLE CREATEDB PASSWORD '$ADMIN_PASS'" >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')
if [ "${1:-}" = "--admin" ]; then
  echo "postgresql+psycopg://$ADMIN_ROLE:$ADMIN_PASS@127.0.0.1:$port/postgres"
else
  echo "postgresql+psycopg://$ROLE:$PASS@127.0.0.1:$port/$DB"
fi
