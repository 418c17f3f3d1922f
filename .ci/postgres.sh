#!/usr/bin/env bash
# .ci/postgres.sh — start the local PostgreSQL 15 cluster and create the role
# and database the evento tests use. Idempotent and non-interactive: safe to
# run (or source) again when everything already exists. Run as root on a
# Debian machine with the postgresql-15 package installed.
#
# Environment (all optional):
#   PG_VERSION   cluster version      (default 15)
#   PG_CLUSTER   cluster name         (default main)
#   PG_ROLE      role to create       (default evento)
#   PG_PASSWORD  its password         (default evento)
#   PG_DATABASE  database to create   (default evento_test)
#   PG_WAIT      seconds to wait for the server (default 60)
#
# On success it exports EVENTO_POSTGRES_DSN (when sourced) and prints it.

evento_pg_setup() {
	local version="${PG_VERSION:-15}" cluster="${PG_CLUSTER:-main}"
	local role="${PG_ROLE:-evento}" password="${PG_PASSWORD:-evento}"
	local db="${PG_DATABASE:-evento_test}" wait="${PG_WAIT:-60}"

	as_postgres() {
		if [ "$(id -un)" = postgres ]; then
			"$@"
		elif command -v runuser >/dev/null 2>&1; then
			runuser -u postgres -- "$@"
		else
			su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
		fi
	}
	psql_pg() {
		as_postgres psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"
	}

	if ! command -v pg_ctlcluster >/dev/null 2>&1; then
		echo "postgres.sh: pg_ctlcluster not found (apt-get install postgresql-$version)" >&2
		return 1
	fi
	if ! pg_lsclusters -h 2>/dev/null | awk -v v="$version" -v c="$cluster" '$1==v && $2==c {f=1} END {exit !f}'; then
		echo "postgres.sh: creating cluster $version/$cluster" >&2
		pg_createcluster "$version" "$cluster" >/dev/null || return 1
	fi
	if ! pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1==v && $2==c && $4=="online" {f=1} END {exit !f}'; then
		echo "postgres.sh: starting cluster $version/$cluster" >&2
		# A second concurrent start (or a race with another runner) is
		# harmless: the wait below decides.
		pg_ctlcluster "$version" "$cluster" start || true
	fi

	local port
	port="$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1==v && $2==c {print $3}')"
	port="${port:-5432}"

	local deadline=$((SECONDS + wait))
	until as_postgres pg_isready -q -p "$port" >/dev/null 2>&1 && psql_pg -p "$port" -c 'SELECT 1' >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "postgres.sh: PostgreSQL $version/$cluster not accepting connections after ${wait}s" >&2
			pg_lsclusters >&2 || true
			return 1
		fi
		sleep 0.5
	done

	# Role: create if missing, (re)set password and LOGIN either way so the
	# DSN below is known to work.
	psql_pg -p "$port" -v role="$role" -v pw="$password" <<'SQL' || return 1
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'pw')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'role', :'pw') \gexec
-- CREATEROLE lets the tests make a least-privilege reader role
-- (TestConformanceReaderRole); it is not needed by evento itself.
SELECT format('ALTER ROLE %I CREATEROLE', :'role') \gexec
SQL
	# CREATE DATABASE cannot run in a transaction block or a DO block: \gexec.
	psql_pg -p "$port" -v role="$role" -v db="$db" <<'SQL' || return 1
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'role') \gexec
SQL

	local dsn="postgres://$role:$password@127.0.0.1:$port/$db?sslmode=disable"
	if ! PGPASSWORD="$password" psql -X -q -h 127.0.0.1 -p "$port" -U "$role" -d "$db" -c 'SELECT 1' >/dev/null; then
		echo "postgres.sh: cannot log in as $role over TCP (check pg_hba.conf allows password auth on 127.0.0.1)" >&2
		return 1
	fi
	export EVENTO_POSTGRES_DSN="${EVENTO_POSTGRES_DSN:-$dsn}"
	echo "postgres.sh: ready: EVENTO_POSTGRES_DSN=$(echo "$EVENTO_POSTGRES_DSN" | sed -E 's#(://[^:/@]*:)[^@]*@#\1xxxxx@#')" >&2
	return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	evento_pg_setup
else
	evento_pg_setup
fi
