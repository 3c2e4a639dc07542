#!/usr/bin/env bash
# Local Redis, PostgreSQL (with pgbouncer in front, in transaction mode) and ClickHouse for
# integration and load tests.
#
#   scripts/services.sh up       install if missing, start on loopback, wait, print the URIs
#   scripts/services.sh up --cluster   the same, and a Redis Cluster of three primaries and
#                                       three replicas (redis-cluster-0..5)
#   scripts/services.sh down     stop what `up` started, by the PIDs it recorded
#   scripts/services.sh restart [NAME...]  stop and start redis, postgres, pgbouncer, clickhouse
#                                           (default all)
#   scripts/services.sh status   say which are running
#   scripts/services.sh env      print `export AGENTSTATE_*_URL=...` lines for the shell
#
# Everything lives under $AGENTSTATE_SERVICES_DIR (default /tmp/agentstate-services):
# data, logs, pid files, and for each service the exact command that started it (<name>.cmd),
# so a harness can restart a service it killed. Ports are ours, never the packages' defaults.
set -euo pipefail

dir=${AGENTSTATE_SERVICES_DIR:-/tmp/agentstate-services}
redis_port=${AGENTSTATE_REDIS_PORT:-16379}
pg_port=${AGENTSTATE_PG_PORT:-15432}
pgb_port=${AGENTSTATE_PGBOUNCER_PORT:-16432}
ch_http_port=${AGENTSTATE_CH_HTTP_PORT:-18123}
ch_tcp_port=${AGENTSTATE_CH_TCP_PORT:-19000}
ch_inter_port=${AGENTSTATE_CH_INTERSERVER_PORT:-19009}
pg_bin=/usr/lib/postgresql/15/bin
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 2; }

redis_url="redis://127.0.0.1:${redis_port}/0"
# The cluster's nodes listen on cluster_port..+5 (their cluster bus 10000 above); the first
# three are created as primaries, the next three as their replicas.
cluster_port=${AGENTSTATE_REDIS_CLUSTER_PORT:-17000}
cluster_url="redis+cluster://127.0.0.1:${cluster_port},127.0.0.1:$((cluster_port + 1)),127.0.0.1:$((cluster_port + 2))"
pg_url="postgresql://agentstate@127.0.0.1:${pg_port}/agentstate"
pgb_url="postgresql://agentstate@127.0.0.1:${pgb_port}/agentstate?pool_mode=transaction"
ch_url="clickhouse://127.0.0.1:${ch_http_port}/default"

# Each service's pid file, written by the service itself (its first line is the PID), so
# it stays right across a restart. ClickHouse's sits in a directory it owns; PostgreSQL's
# is postmaster.pid. `up` records each path in <name>.pidfile for the harness.
pidfile() {
  case $1 in
    clickhouse) echo "$dir/clickhouse/clickhouse.pid" ;;
    postgres) echo "$dir/pg/data/postmaster.pid" ;;
    pgbouncer) echo "$dir/pgbouncer/pgbouncer.pid" ;;
    *) echo "$dir/$1.pid" ;;
  esac
}
alive() { [[ -s "$1" ]] && kill -0 "$(head -1 "$1")" 2>/dev/null; }

# Polls a check command until it succeeds or the deadline passes.
wait_for() {
  local what=$1 seconds=$2; shift 2
  local end=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || die "$what did not answer within ${seconds}s; see the logs in $dir"
    sleep 0.2
  done
}

start_recorded() {  # name, then the command; records the command for restarts
  local name=$1; shift
  printf '%q ' "$@" > "$dir/$name.cmd"; echo >> "$dir/$name.cmd"
  "$@"
}

redis_up() {
  if alive "$(pidfile redis)"; then log "redis already running (pid $(head -1 "$(pidfile redis)"))"; return; fi
  mkdir -p "$dir/redis"
  # AOF everysec is the durability contract the reports state; with AOF on, RDB
  # snapshots are off so a loaded server never forks for BGSAVE.
  start_recorded redis redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir/redis" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    --appendonly yes --appendfsync everysec --save "" --maxclients 10000
  wait_for redis 20 redis-cli -h 127.0.0.1 -p "$redis_port" ping
}

pg_up() {
  if alive "$(pidfile postgres)"; then log "postgres already running (pid $(head -1 "$(pidfile postgres)"))"; return; fi
  # Everything PostgreSQL writes sits in one directory its own user owns.
  local pg=$dir/pg data=$dir/pg/data
  mkdir -p "$data" "$pg/sock"
  chown -R postgres:postgres "$pg"
  chmod 700 "$data"
  if [[ ! -f "$data/PG_VERSION" ]]; then
    su postgres -s /bin/sh -c "$pg_bin/initdb -D '$data' -U postgres --auth=trust -E UTF8 >'$pg/initdb.log' 2>&1" \
      || die "initdb failed; see $pg/initdb.log"
  fi
  local opts="-c listen_addresses=127.0.0.1 -p $pg_port -k $pg/sock -c max_connections=300 -c synchronous_commit=on"
  printf '%s\n' "su postgres -s /bin/sh -c \"$pg_bin/pg_ctl -D '$data' -l '$pg/postgres.log' -o '$opts' -w start\"" > "$dir/postgres.cmd"
  su postgres -s /bin/sh -c "$pg_bin/pg_ctl -D '$data' -l '$pg/postgres.log' -o '$opts' -w -t 60 start >/dev/null" \
    || die "postgres did not start; see $pg/postgres.log"
  local psql=(su postgres -s /bin/sh -c)
  "${psql[@]}" "psql -h 127.0.0.1 -p $pg_port -U postgres -tAc \"SELECT 1 FROM pg_roles WHERE rolname='agentstate'\" | grep -q 1 || psql -h 127.0.0.1 -p $pg_port -U postgres -qc 'CREATE ROLE agentstate LOGIN SUPERUSER'" \
    || die "could not create role agentstate"
  "${psql[@]}" "psql -h 127.0.0.1 -p $pg_port -U postgres -tAc \"SELECT 1 FROM pg_database WHERE datname='agentstate'\" | grep -q 1 || psql -h 127.0.0.1 -p $pg_port -U postgres -qc 'CREATE DATABASE agentstate OWNER agentstate'" \
    || die "could not create database agentstate"
}

# pgbouncer in transaction pooling mode in front of our PostgreSQL: each transaction goes
# to whichever server session is free, so nothing a client leaves in a session is there
# for its next transaction. Trust on loopback, like the server behind it.
pgb_up() {
  if alive "$(pidfile pgbouncer)"; then log "pgbouncer already running (pid $(head -1 "$(pidfile pgbouncer)"))"; return; fi
  local pgb=$dir/pgbouncer
  mkdir -p "$pgb"
  cat > "$pgb/pgbouncer.ini" <<EOF
[databases]
agentstate = host=127.0.0.1 port=$pg_port dbname=agentstate
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgb_port
unix_socket_dir =
auth_type = trust
auth_file = $pgb/users.txt
pool_mode = transaction
default_pool_size = 40
; A failed login to the server (PostgreSQL restarting) is retried after this many seconds,
; not the default 15: a 2 s restart must not cost agents 15 s.
server_login_retry = 1
max_client_conn = 2000
logfile = $pgb/pgbouncer.log
pidfile = $pgb/pgbouncer.pid
EOF
  echo '"agentstate" ""' > "$pgb/users.txt"
  chown -R postgres:postgres "$pgb"
  local start="pgbouncer -d '$pgb/pgbouncer.ini'"
  printf '%s\n' "su postgres -s /bin/sh -c \"$start\"" > "$dir/pgbouncer.cmd"
  su postgres -s /bin/sh -c "$start" || die "pgbouncer did not start; see $pgb/pgbouncer.log"
  wait_for pgbouncer 20 psql "host=127.0.0.1 port=$pgb_port dbname=agentstate user=agentstate" -tAc 'SELECT 1'
}

ch_up() {
  if alive "$(pidfile clickhouse)"; then log "clickhouse already running (pid $(head -1 "$(pidfile clickhouse)"))"; return; fi
  local ch=$dir/clickhouse
  mkdir -p "$ch/data/tmp" "$ch/data/user_files" "$ch/data/format_schemas" "$ch/log"
  # Our own copy of the package's config: every path under our dir, all three ports ours
  # (the interserver port clashes too), loopback only.
  sed -e "s#/var/lib/clickhouse/#$ch/data/#g" \
      -e "s#/var/log/clickhouse-server/#$ch/log/#g" \
      -e "s#<http_port>8123</http_port>#<http_port>$ch_http_port</http_port>#" \
      -e "s#<tcp_port>9000</tcp_port>#<tcp_port>$ch_tcp_port</tcp_port>#" \
      -e "s#<interserver_http_port>9009</interserver_http_port>#<interserver_http_port>$ch_inter_port</interserver_http_port>#" \
      -e "s#<listen_host>::1</listen_host>##" \
      /etc/clickhouse-server/config.xml > "$ch/config.xml"
  grep -q "<listen_host>127.0.0.1</listen_host>" "$ch/config.xml" \
    || sed -i "s#</yandex>#    <listen_host>127.0.0.1</listen_host>\n</yandex>#" "$ch/config.xml"
  cp /etc/clickhouse-server/users.xml "$ch/users.xml"
  sed -i "s#<users_config>users.xml</users_config>#<users_config>$ch/users.xml</users_config>#" "$ch/config.xml"
  chown -R clickhouse:clickhouse "$ch"
  # ClickHouse 18.16 killed mid-merge leaves tmp_merge_* directories behind, and then every
  # later merge of that table fails ("already exists"): parts pile up until inserts are
  # refused. Each start removes them first (a chaos run showed it after a kill -9).
  local start="find '$ch/data/data' -mindepth 3 -maxdepth 3 -name 'tmp_merge_*' -exec rm -rf {} + 2>/dev/null; /usr/sbin/clickhouse-server --daemon --config-file='$ch/config.xml' --pid-file='$ch/clickhouse.pid'"
  printf '%s\n' "su clickhouse -s /bin/sh -c \"$start\"" > "$dir/clickhouse.cmd"
  su clickhouse -s /bin/sh -c "$start" || die "clickhouse did not start; see $ch/log"
  wait_for clickhouse 60 sh -c "curl -fsS http://127.0.0.1:$ch_http_port/ping | grep -q Ok"
}

# A node's start command, recorded like the other services' so a fault can restart it; its
# nodes.conf keeps its identity and its place in the cluster across restarts.
cluster_node_up() {  # index
  local i=$1 port=$((cluster_port + $1)) name=redis-cluster-$1
  if alive "$dir/$name.pid"; then return; fi
  mkdir -p "$dir/$name"
  start_recorded "$name" redis-server --port "$port" --bind 127.0.0.1 --dir "$dir/$name" \
    --daemonize yes --pidfile "$dir/$name.pid" --logfile "$dir/$name.log" \
    --cluster-enabled yes --cluster-config-file "$dir/$name/nodes.conf" \
    --cluster-node-timeout 2000 --appendonly yes --appendfsync everysec --save "" \
    --maxclients 10000
  echo "$dir/$name.pid" > "$dir/$name.pidfile"
  wait_for "$name" 20 redis-cli -h 127.0.0.1 -p "$port" ping
}

cluster_ok() {  # every node sees all slots served and all six nodes
  local i info
  for i in 0 1 2 3 4 5; do
    info=$(redis-cli -h 127.0.0.1 -p $((cluster_port + i)) cluster info) || return 1
    grep -q '^cluster_state:ok' <<< "$info" || return 1
    grep -q '^cluster_known_nodes:6' <<< "$info" || return 1
  done
}

cluster_up() {
  local i nodes=()
  for i in 0 1 2 3 4 5; do
    cluster_node_up "$i"
    nodes+=("127.0.0.1:$((cluster_port + i))")
  done
  if [[ ! -f "$dir/redis-cluster.created" ]]; then
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes \
      > "$dir/redis-cluster-create.log" 2>&1 \
      || die "redis-cli --cluster create failed; see $dir/redis-cluster-create.log"
    touch "$dir/redis-cluster.created"
  fi
  wait_for redis-cluster 60 cluster_ok
}

cluster_down() {
  local i
  for i in 0 1 2 3 4 5; do stop_pid "redis-cluster-$i" "$dir/redis-cluster-$i.pid"; done
}

stop_pid() {  # name, pidfile, seconds
  local name=$1 pidfile=$2 seconds=${3:-30}
  if ! alive "$pidfile"; then rm -f "$pidfile"; return; fi
  local pid; pid=$(head -1 "$pidfile")
  kill -TERM "$pid"
  local end=$((SECONDS + seconds))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= end)); then log "$name (pid $pid) ignored SIGTERM for ${seconds}s; sending SIGKILL"; kill -KILL "$pid"; fi
    sleep 0.2
  done
  rm -f "$pidfile"
  log "stopped $name (pid $pid)"
}

redis_down() { stop_pid redis "$dir/redis.pid"; }
pg_down() {
  if alive "$(pidfile postgres)"; then
    su postgres -s /bin/sh -c "$pg_bin/pg_ctl -D '$dir/pg/data' -m fast -w stop >/dev/null" || stop_pid postgres "$(pidfile postgres)"
    log "stopped postgres"
  fi
}
pgb_down() { stop_pid pgbouncer "$(pidfile pgbouncer)"; }
ch_down() { stop_pid clickhouse "$(pidfile clickhouse)" 60; }

# The functions of a service name: redis, postgres, pgbouncer or clickhouse.
short() {
  case $1 in
    redis) echo redis ;;
    postgres | postgresql | pg) echo pg ;;
    pgbouncer | pgb) echo pgb ;;
    clickhouse | ch) echo ch ;;
    *) die "unknown service '$1': use redis, postgres, pgbouncer or clickhouse" ;;
  esac
}

print_env() {
  printf 'export AGENTSTATE_REDIS_URL=%s\n' "$redis_url"
  printf 'export AGENTSTATE_POSTGRES_URL=%s\n' "$pg_url"
  printf 'export AGENTSTATE_PGBOUNCER_URL=%s\n' "$pgb_url"
  printf 'export AGENTSTATE_CLICKHOUSE_URL=%s\n' "$ch_url"
  if [[ -f "$dir/redis-cluster.created" ]] && alive "$dir/redis-cluster-0.pid"; then
    printf 'export AGENTSTATE_REDIS_CLUSTER_URL=%s\n' "$cluster_url"
  fi
}

case "${1:-}" in
  up)
    [[ $(id -u) -eq 0 ]] || die "run as root: PostgreSQL and ClickHouse are started as their own users"
    "$here/install-deps.sh" --services >&2
    mkdir -p "$dir"; chmod 755 "$dir"
    case "${2:-}" in
      "") ;;
      --cluster) ;;
      *) die "unknown option '$2' to up: the only one is --cluster" ;;
    esac
    redis_up; pg_up; pgb_up; ch_up
    for s in redis postgres pgbouncer clickhouse; do pidfile "$s" > "$dir/$s.pidfile"; done
    if [[ "${2:-}" == --cluster ]]; then cluster_up; fi
    print_env > "$dir/env"
    log "up; URIs (also in $dir/env):"
    print_env
    ;;
  down)
    cluster_down; ch_down; pgb_down; pg_down; redis_down
    ;;
  restart)
    [[ $(id -u) -eq 0 ]] || die "run as root: PostgreSQL and ClickHouse are started as their own users"
    shift
    names=("$@")
    ((${#names[@]})) || names=(redis postgres pgbouncer clickhouse)
    for n in "${names[@]}"; do short "$n" >/dev/null; done  # every name checked before anything stops
    for n in "${names[@]}"; do
      s=$(short "$n")
      "${s}_down"; "${s}_up"
      log "restarted $n"
    done
    ;;
  status)
    rc=0
    if [[ -f "$dir/redis-cluster.created" ]]; then
      for i in 0 1 2 3 4 5; do
        if alive "$dir/redis-cluster-$i.pid"; then echo "redis-cluster-$i: running (pid $(head -1 "$dir/redis-cluster-$i.pid"))"; else echo "redis-cluster-$i: stopped"; rc=1; fi
      done
    fi
    for s in redis postgres pgbouncer clickhouse; do
      if alive "$(pidfile $s)"; then echo "$s: running (pid $(head -1 "$(pidfile $s)"))"; else echo "$s: stopped"; rc=1; fi
    done
    exit $rc
    ;;
  env) print_env ;;
  *) die "usage: scripts/services.sh up [--cluster]|down|restart [NAME...]|status|env" ;;
esac
