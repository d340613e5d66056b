#!/usr/bin/env bash
# A local scale-out setup on loopback: PostgreSQL (the index), SeaweedFS (the blobs), N `facet serve` replicas sharing
# both and one master key, and nginx in front (round robin). Everything it makes lives in DIR; `stop` ends exactly
# the processes `start` recorded in DIR/cluster.state (pid and start time, so a reused pid is never signalled) and
# removes nothing: a second `start` on the same DIR serves the same archive again.
#   scripts/cluster.sh start DIR [N]   N replicas (3); prints the base URL and the environment (also in DIR/cluster.env)
#   scripts/cluster.sh stop DIR
#   scripts/cluster.sh status DIR      each recorded process, running or not
# Settings (environment):
#   FACET_BIN              the facet binary (.build/debug/facet)
#   CLUSTER_PORT           nginx (28420); replicas on CLUSTER_REPLICA_PORT (28421), +1, +2, ...
#   CLUSTER_S3_PORT        SeaweedFS's S3 port (28400; it takes 28400-28415)
#   CLUSTER_PG_PORT        PostgreSQL (25433)
#   CLUSTER_INDEX, CLUSTER_BLOBS, CLUSTER_S3_ENDPOINT
#                          use this PostgreSQL database (postgres://...) and bucket (s3://bucket/prefix, credentials in
#                          AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) instead of starting PostgreSQL and SeaweedFS
#   FACET_MASTER_KEY       the replicas' shared master key (base64 of 32 bytes); made once into DIR/master.key if unset
# The default ports differ from `make test`'s (SeaweedFS 18333, PostgreSQL 15432 and 25432), so both can run at once.
set -euo pipefail
action=${1:-}
dir=${2:-}
[ -n "$action" ] && [ -n "$dir" ] || { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
# DIR and FACET_BIN as the caller gave them (relative to its folder), then everything from the repository.
[ "$action" = start ] && mkdir -p "$dir"
[ -d "$dir" ] || { echo "cluster: no folder $dir" >&2; exit 1; }
dir=$(cd "$dir" && pwd)
if [ -n "${FACET_BIN:-}" ] && [ "${FACET_BIN#/}" = "$FACET_BIN" ]; then FACET_BIN="$(pwd)/$FACET_BIN"; fi
cd "$(dirname "$0")/.."
repo=$(pwd)
state="$dir/cluster.state"

# The start time of a process (clock ticks since boot): a recorded pid is ours only while it still matches. An exited
# process waiting to be reaped (a zombie) counts as gone.
started_at() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '$1 != "Z" { print $20 }'; }
ours() { [ -n "$1" ] && [ -n "$2" ] && [ "$(started_at "$1")" = "$2" ]; }
record() { echo "$1 $2 $(started_at "$2")" >>"$state"; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1/health/ready")" = 200 ]; }

# Ends one recorded process: SIGTERM, up to `wait` seconds, then SIGKILL (nginx: its workers too).
end_process() {
    local name=$1 pid=$2 since=$3 wait=${4:-30} children
    ours "$pid" "$since" || return 0
    children=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((wait * 4))); do ours "$pid" "$since" || break; sleep 0.25; done
    if ours "$pid" "$since"; then
        echo "cluster: $name (pid $pid) did not stop within ${wait}s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        for child in $children; do kill -KILL "$child" 2>/dev/null || true; done
    fi
}

stop_all() {
    [ -f "$state" ] || { echo "cluster: nothing recorded in $state" >&2; return 0; }
    # nginx first (no new requests), then the replicas (in parallel), then the services they use.
    while read -r name pid since; do
        case "$name" in nginx) end_process "$name" "$pid" "$since" 10 ;; esac
    done <"$state"
    local waits=()
    while read -r name pid since; do
        case "$name" in replica-*) end_process "$name" "$pid" "$since" 30 & waits+=($!) ;; esac
    done <"$state"
    for w in "${waits[@]}"; do wait "$w" || true; done
    while read -r name pid since; do
        case "$name" in
        seaweedfs) ours "$pid" "$since" && bash scripts/seaweedfs.sh stop "$dir/seaweedfs" ;;
        postgres) bash scripts/postgres.sh stop "$dir/postgres" ;;
        esac
    done <"$state"
    rm -f "$state"
}

case "$action" in
start)
    replicas=${3:-3}
    facet=${FACET_BIN:-$repo/.build/debug/facet}
    [ -x "$facet" ] || { echo "cluster: no facet binary at $facet (set FACET_BIN or run make build)" >&2; exit 1; }
    command -v nginx >/dev/null || { echo "cluster: nginx is missing (apt-get install nginx)" >&2; exit 1; }
    if [ -f "$state" ]; then
        while read -r name pid since; do
            if ours "$pid" "$since"; then
                echo "cluster: already running in $dir ($name, pid $pid); scripts/cluster.sh stop $dir first" >&2
                exit 1
            fi
        done <"$state"
        rm -f "$state"
    fi
    port=${CLUSTER_PORT:-28420}
    first=${CLUSTER_REPLICA_PORT:-28421}
    s3_port=${CLUSTER_S3_PORT:-28400}
    pg_port=${CLUSTER_PG_PORT:-25433}
    external=${CLUSTER_INDEX:+yes}
    busy=()
    for p in "$port" $(seq "$first" $((first + replicas - 1))); do port_busy "$p" && busy+=("$p"); done
    if [ -z "$external" ]; then
        port_busy "$s3_port" && busy+=("$s3_port")
        port_busy "$pg_port" && busy+=("$pg_port")
    fi
    [ ${#busy[@]} -eq 0 ] || { echo "cluster: ports in use: ${busy[*]} (see CLUSTER_*PORT in $0)" >&2; exit 1; }
    # The postgres user (PostgreSQL refuses root) must reach DIR/postgres.
    chmod 755 "$dir"
    : >"$state"
    trap 'echo "cluster: start failed; stopping what was started" >&2; stop_all' ERR

    if [ -n "$external" ]; then
        index=$CLUSTER_INDEX
        blobs=${CLUSTER_BLOBS:?CLUSTER_BLOBS must be set with CLUSTER_INDEX}
        s3_endpoint=${CLUSTER_S3_ENDPOINT:?CLUSTER_S3_ENDPOINT must be set with CLUSTER_INDEX}
        : "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}"
    else
        settings=$(SEAWEEDFS_S3_PORT=$s3_port bash scripts/seaweedfs.sh start "$dir/seaweedfs")
        eval "$settings"
        record seaweedfs "$(cat "$dir/seaweedfs/weed.pid")"
        if [ -f "$dir/postgres/data/PG_VERSION" ]; then
            # A cluster started before in this DIR: its database and everything stored in it are kept.
            POSTGRES_TEST_PORT=$pg_port bash scripts/postgres.sh restart "$dir/postgres"
            FACET_TEST_POSTGRES="postgres://facet:facet-test-password@127.0.0.1:$pg_port/facet_test?sslmode=disable"
        else
            settings=$(POSTGRES_TEST_PORT=$pg_port bash scripts/postgres.sh start "$dir/postgres")
            eval "$settings"
        fi
        record postgres "$(head -1 "$dir/postgres/data/postmaster.pid")"
        index=$FACET_TEST_POSTGRES
        blobs="s3://$FACET_TEST_S3_BUCKET/cluster"
        s3_endpoint=$FACET_TEST_S3_ENDPOINT
    fi
    if [ -z "${FACET_MASTER_KEY:-}" ]; then
        if [ ! -s "$dir/master.key" ]; then
            (umask 077 && head -c 32 /dev/urandom | base64 >"$dir/master.key")
        fi
        FACET_MASTER_KEY=$(cat "$dir/master.key")
    fi
    export FACET_INDEX=$index FACET_BLOBS=$blobs FACET_S3_ENDPOINT=$s3_endpoint FACET_S3_REGION=us-east-1
    export FACET_MASTER_KEY AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
    # Links in answers (RetrieveURL, BulkDataURI) name nginx; the client's address comes from X-Forwarded-For.
    export FACET_PUBLIC_BASE_URL="http://127.0.0.1:$port" FACET_TRUST_PROXY_TLS=true FACET_TRUSTED_PROXIES=127.0.0.1

    urls=()
    for i in $(seq 1 "$replicas"); do
        replica="$dir/replica-$i"
        mkdir -p "$replica"
        p=$((first + i - 1))
        "$facet" serve --data-dir "$replica/data" --port "$p" >>"$replica/serve.log" 2>&1 </dev/null &
        record "replica-$i" $!
        urls+=("http://127.0.0.1:$p")
        echo "$p" >"$replica/port"
    done
    for i in $(seq 1 "$replicas"); do
        read -r _ pid since < <(grep "^replica-$i " "$state")
        for attempt in $(seq 1 240); do
            ours "$pid" "$since" || { echo "cluster: replica $i exited; $dir/replica-$i/serve.log:" >&2;
                tail -20 "$dir/replica-$i/serve.log" >&2; false; }
            ready "${urls[$((i - 1))]}" && break
            [ "$attempt" -lt 240 ] || { echo "cluster: replica $i not ready after 120 s" >&2; false; }
            sleep 0.5
        done
    done

    mkdir -p "$dir/nginx/tmp"
    upstreams=""
    for u in "${urls[@]}"; do upstreams+="        server ${u#http://} max_fails=1 fail_timeout=5s;"$'\n'; done
    user=""
    if [ "$(id -u)" -eq 0 ]; then
        user="user www-data www-data;"
        getent passwd www-data >/dev/null || user="user nobody nogroup;"
        chown -R "$(echo "$user" | cut -d' ' -f2)" "$dir/nginx/tmp"
    fi
    template="$repo/config/nginx-cluster.conf.template"
    awk -v prefix="$dir/nginx" -v user="$user" -v listen="127.0.0.1:$port" -v upstreams="${upstreams%$'\n'}" '
        /^@UPSTREAMS@$/ { print upstreams; next }
        /^@USER@$/ { print user; next }
        { gsub(/@PREFIX@/, prefix); gsub(/@LISTEN@/, listen); print }' "$template" >"$dir/nginx/nginx.conf"
    nginx -q -t -p "$dir/nginx" -e "$dir/nginx/error.log" -c "$dir/nginx/nginx.conf"
    nginx -p "$dir/nginx" -e "$dir/nginx/error.log" -c "$dir/nginx/nginx.conf" \
        >>"$dir/nginx/stdout.log" 2>&1 </dev/null &
    record nginx $!
    nginx_pid=$!
    for attempt in $(seq 1 40); do
        ready "http://127.0.0.1:$port" && break
        kill -0 "$nginx_pid" 2>/dev/null || { tail -5 "$dir/nginx/error.log" >&2; false; }
        [ "$attempt" -lt 40 ] || { echo "cluster: nginx did not answer" >&2; false; }
        sleep 0.25
    done
    trap - ERR

    pids=$(grep '^replica-' "$state" | awk '{print $2}' | paste -sd, -)
    {
        echo "# The environment of the cluster in $dir (source it; the master key stays in its file)."
        echo "export FACET_CLUSTER_URL=http://127.0.0.1:$port FACET_CLUSTER_DIR=$dir"
        echo "export FACET_CLUSTER_REPLICAS=$(IFS=,; echo "${urls[*]}") FACET_CLUSTER_PIDS=$pids"
        echo "export FACET_CLUSTER_NGINX_PID=$nginx_pid"
        [ -n "$external" ] || echo "export FACET_CLUSTER_PG_DIR=$dir/postgres FACET_CLUSTER_PG_PORT=$pg_port"
        echo "export FACET_INDEX='$FACET_INDEX' FACET_BLOBS=$FACET_BLOBS"
        echo "export FACET_S3_ENDPOINT=$FACET_S3_ENDPOINT FACET_S3_REGION=us-east-1"
        echo "export AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY"
        if [ -s "$dir/master.key" ] && [ "$(cat "$dir/master.key")" = "$FACET_MASTER_KEY" ]; then
            echo "export FACET_MASTER_KEY=\$(cat $dir/master.key)"
        else
            echo "# FACET_MASTER_KEY: the one given to scripts/cluster.sh start"
        fi
    } >"$dir/cluster.env"
    chmod 600 "$dir/cluster.env"
    cat "$dir/cluster.env"
    ;;
stop)
    stop_all
    ;;
status)
    [ -f "$state" ] || { echo "no cluster recorded in $dir"; exit 1; }
    while read -r name pid since; do
        if [ "$name" = postgres ] && [ -f "$dir/postgres/data/postmaster.pid" ]; then
            # Restarted meanwhile (scripts/postgres.sh restart): its current pid.
            pid=$(head -1 "$dir/postgres/data/postmaster.pid")
            since=$(started_at "$pid")
        fi
        if ours "$pid" "$since"; then echo "$name pid $pid running"; else echo "$name pid $pid gone"; fi
    done <"$state"
    ;;
*)
    echo "usage: $0 start|stop|status DIR [N]" >&2
    exit 2
    ;;
esac
