#!/usr/bin/env bash
# Starts or stops a throwaway single-node Ceph (Debian's ceph-mon, ceph-osd, radosgw) on loopback for the S3 tests
# against RGW, which checks SigV4 payload hashes more strictly than SeaweedFS: everything in DIR (its own ceph.conf
# and fsid, no cephx), one monitor, one OSD on memstore (in RAM, no block device), pools of size 1, one radosgw
# (beast) with an S3 user of the same keys as scripts/seaweedfs.sh and the bucket facet-test. Installs the packages
# when missing and root. Every port it takes lies in port..port+15.
#   scripts/ceph.sh start DIR   prints the environment the tests read (FACET_TEST_S3_*, AWS_*)
#   scripts/ceph.sh stop DIR
set -euo pipefail
action=$1
dir=$2
port=${CEPH_S3_PORT:-38333}
key=facet-test-key
secret=facet-test-secret
daemons="rgw osd mon"
# One after the other (together they wait on each other for longer), 10 s at most each.
stop() {
    for daemon in $daemons; do signal "$daemon"; done
}
signal() {
    for daemon in "$@"; do
        [ -f "$dir/$daemon.pid" ] && { kill "$(cat "$dir/$daemon.pid")" 2>/dev/null || true; }
    done
    for daemon in "$@"; do
        [ -f "$dir/$daemon.pid" ] || continue
        pid=$(cat "$dir/$daemon.pid")
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$dir/$daemon.pid"
    done
}
fail() {
    echo "$1; the logs:" >&2
    for log in "$dir"/log/*.log; do [ -f "$log" ] && { echo "== $log" >&2; tail -15 "$log" >&2; }; done
    stop
    exit 1
}
case "$action" in
start)
    if ! command -v ceph-mon >/dev/null || ! command -v ceph-osd >/dev/null || ! command -v radosgw >/dev/null; then
        [ "$(id -u)" -eq 0 ] || { echo "Ceph is missing (apt-get install ceph-mon ceph-osd radosgw)" >&2; exit 1; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            ceph-mon ceph-osd radosgw ceph-common >/dev/null
    fi
    if [ -f "$dir/mon.pid" ] && kill -0 "$(cat "$dir/mon.pid")" 2>/dev/null; then
        echo "ceph is running already for $dir" >&2
        exit 1
    fi
    [ ! -e "$dir/ceph.conf" ] || { echo "$dir holds a Ceph already (stop it, remove the folder)" >&2; exit 1; }
    if curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$port/"; then
        echo "port $port is taken already (CEPH_S3_PORT chooses another)" >&2
        exit 1
    fi
    mkdir -p "$dir/mon" "$dir/osd" "$dir/rgw" "$dir/log" "$dir/run"
    dir=$(cd "$dir" && pwd)
    fsid=$(cat /proc/sys/kernel/random/uuid)
    cat >"$dir/ceph.conf" <<CONF
[global]
fsid = $fsid
mon_host = v1:127.0.0.1:$((port + 1))
public_addr = v1:127.0.0.1
cluster_addr = v1:127.0.0.1
ms_bind_msgr2 = false
ms_bind_ipv4 = true
ms_bind_ipv6 = false
ms_bind_port_min = $((port + 2))
ms_bind_port_max = $((port + 15))
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
keyring = $dir/keyring
run_dir = $dir/run
admin_socket = $dir/run/\$name.asok
pid_file =
log_file = $dir/log/\$name.log
log_to_stderr = false
err_to_stderr = true
mon_cluster_log_file = $dir/log/cluster.log
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = true
mon_max_pg_per_osd = 1000
osd_crush_chooseleaf_type = 0
mon_warn_on_pool_no_redundancy = false
# Commit maps at once rather than each second: the gateway makes its pools one by one on start.
paxos_propose_interval = 0.05
paxos_min_wait = 0.01

[mon]
mon_data = $dir/mon
mon_initial_members = a
mon_allow_pool_delete = true

[osd]
osd_data = $dir/osd
osd_objectstore = memstore
# The script puts the OSD in the CRUSH map itself: the OSD's own update at start raced its first monitor map
# ("wrong fsid") now and then, and the OSD then gave up.
osd_crush_update_on_start = false
osd_class_update_on_start = false
memstore_device_bytes = 1073741824
osd_memory_target = 268435456
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 2

[client.rgw]
rgw_data = $dir/rgw
rgw_frontends = beast endpoint=127.0.0.1:$port
rgw_thread_pool_size = 16
rgw_dns_name = 127.0.0.1
CONF
    conf=(-c "$dir/ceph.conf")
    started=$(date +%s%N)
    # The monitor: a map of one, made and started here.
    monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$((port + 1))]" "$dir/monmap" >/dev/null
    ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-mon "${conf[@]}" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring" ||
        fail "ceph-mon --mkfs failed"
    ceph-mon "${conf[@]}" -i a -f >>"$dir/log/mon.stderr" 2>&1 &
    echo $! >"$dir/mon.pid"
    timeout 60 ceph "${conf[@]}" --connect-timeout 30 mon stat >/dev/null 2>&1 || fail "the monitor did not start"
    # The OSD: registered, made and started.
    uuid=$(cat /proc/sys/kernel/random/uuid)
    id=$(timeout 60 ceph "${conf[@]}" osd new "$uuid") || fail "ceph osd new failed"
    timeout 60 ceph "${conf[@]}" osd crush add "osd.$id" 1 root=default >/dev/null 2>&1 ||
        fail "ceph osd crush add failed"
    ceph-osd "${conf[@]}" -i "$id" --mkfs --osd-uuid "$uuid" >>"$dir/log/osd.stderr" 2>&1 ||
        fail "ceph-osd --mkfs failed"
    ceph-osd "${conf[@]}" -i "$id" -f >>"$dir/log/osd.stderr" 2>&1 &
    echo $! >"$dir/osd.pid"
    # The gateway, which makes its pools on start.
    radosgw "${conf[@]}" -n client.rgw -f >>"$dir/log/rgw.stderr" 2>&1 &
    echo $! >"$dir/rgw.pid"
    up=0
    for _ in $(seq 1 240); do
        for daemon in $daemons; do
            kill -0 "$(cat "$dir/$daemon.pid")" 2>/dev/null || fail "the $daemon daemon exited"
        done
        if curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$port/"; then up=1; break; fi
        sleep 0.25
    done
    [ "$up" -eq 1 ] || fail "radosgw did not answer within 60 s"
    timeout 60 radosgw-admin "${conf[@]}" user create --uid=facet --display-name=facet --access-key="$key" \
        --secret="$secret" >"$dir/log/user.json" 2>>"$dir/log/radosgw-admin.log" ||
        fail "radosgw-admin user create failed"
    # RGW wants the payload hash in a header (curl signs one but does not send it).
    curl -s --fail --max-time 30 -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user "$key:$secret" -X PUT \
        -H "x-amz-content-sha256: $(printf '' | sha256sum | cut -c1-64)" "http://127.0.0.1:$port/facet-test" ||
        fail "the bucket facet-test was not made"
    echo "up in $((($(date +%s%N) - started) / 1000000)) ms" >"$dir/log/startup.txt"
    echo "export FACET_TEST_S3_ENDPOINT=http://127.0.0.1:$port FACET_TEST_S3_BUCKET=facet-test"
    echo "export AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret"
    ;;
stop)
    stop
    ;;
esac
