#!/usr/bin/env bash
# Interop between `tether wireguard` and Debian's wireguard-go, each on a TUN
# device in its own network namespace, joined by a veth pair. All traffic
# stays inside the two namespaces. Needs root.
#
#   wireguard-go.sh TETHER_BINARY [psk|nopsk] [MIB]
#
# Checks, in order: wireguard-go initiates (we know no endpoint) and ping
# works; a TCP transfer of MIB MiB each way with matching SHA-256; our side
# restarts with the same key and re-handshakes (we initiate); roaming: our
# UDP port changes mid-transfer and `wg show … endpoints` on the other side
# follows. Prints "N passed, 0 failed" at the end, or fails at the first
# broken check.
set -euo pipefail
umask 077

bin=$(realpath "$1")
mode=${2:-nopsk}
mib=${3:-256}
here=$(cd "$(dirname "$0")" && pwd)
suffix=$(printf '%04x%02x' $$ $((RANDOM % 256)))
ns_us="twg-us-$suffix"
ns_go="twg-go-$suffix"
if_us="tus$suffix"
if_go="tgo$suffix"
tmp=$(mktemp -d)
pids=()
passed=0

log() { echo "[interop $mode] $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
ok() { passed=$((passed + 1)); log "ok: $*"; }

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.3
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns_us" 2>/dev/null || true
    ip netns del "$ns_go" 2>/dev/null || true
    rm -f "/var/run/wireguard/$if_us.sock" "/var/run/wireguard/$if_go.sock"
    rm -rf "$tmp"
}
trap cleanup EXIT

ip netns add "$ns_us"
ip netns add "$ns_go"
ip -n "$ns_us" link set lo up
ip -n "$ns_go" link set lo up
ip link add "veu$suffix" netns "$ns_us" type veth peer name "veg$suffix" netns "$ns_go"
ip -n "$ns_us" addr add 192.168.241.1/24 dev "veu$suffix"
ip -n "$ns_go" addr add 192.168.241.2/24 dev "veg$suffix"
ip -n "$ns_us" link set "veu$suffix" up
ip -n "$ns_go" link set "veg$suffix" up

wg genkey >"$tmp/us.key"
wg genkey >"$tmp/go.key"
us_pub=$(wg pubkey <"$tmp/us.key")
go_pub=$(wg pubkey <"$tmp/go.key")
psk_args=()
if [ "$mode" = psk ]; then
    wg genpsk >"$tmp/psk"
    psk_args=(preshared-key "$tmp/psk")
fi

wait_socket() {
    for _ in $(seq 100); do [ -S "/var/run/wireguard/$1.sock" ] && return 0; sleep 0.1; done
    fail "no UAPI socket for $1"
}

start_us() {
    ip netns exec "$ns_us" "$bin" wireguard "$if_us" >>"$tmp/us.log" 2>&1 &
    us_pid=$!
    pids+=("$us_pid")
    wait_socket "$if_us"
    # $1: "endpoint" to give our side the peer's address (we may initiate).
    local endpoint_args=()
    [ "${1:-}" = endpoint ] && endpoint_args=(endpoint 192.168.241.2:51821)
    ip netns exec "$ns_us" wg set "$if_us" private-key "$tmp/us.key" listen-port 51820 \
        peer "$go_pub" allowed-ips 10.241.0.2/32 "${psk_args[@]}" "${endpoint_args[@]}"
    ip -n "$ns_us" addr add 10.241.0.1/24 dev "$if_us"
    ip -n "$ns_us" link set "$if_us" mtu 1420 up
}

# wireguard-go, configured to know our endpoint.
ip netns exec "$ns_go" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$if_go" >"$tmp/go.log" 2>&1 &
pids+=($!)
wait_socket "$if_go"
ip netns exec "$ns_go" wg set "$if_go" private-key "$tmp/go.key" listen-port 51821 \
    peer "$us_pub" allowed-ips 10.241.0.1/32 endpoint 192.168.241.1:51820 "${psk_args[@]}"
ip -n "$ns_go" addr add 10.241.0.2/24 dev "$if_go"
ip -n "$ns_go" link set "$if_go" mtu 1420 up

# 1. wireguard-go initiates: our side has no endpoint for it yet.
start_us
ip netns exec "$ns_go" ping -c 3 -i 0.2 -W 2 10.241.0.1 >/dev/null || fail "ping from wireguard-go"
ok "wireguard-go initiates, ping both ways"
ip netns exec "$ns_us" ping -c 3 -i 0.2 -W 2 10.241.0.2 >/dev/null || fail "ping from us"
shown=$(ip netns exec "$ns_us" wg show "$if_us" endpoints)
[[ "$shown" == *"192.168.241.2:51821"* ]] || fail "our wg show endpoints: $shown"
ok "wg show on our device: $shown"

transfer() {  # $1 sender namespace, $2 receiver namespace, $3 receiver address, $4 MiB
    local port=$((20000 + RANDOM % 20000))
    ip netns exec "$2" python3 "$here/tcp.py" recv "$port" >"$tmp/recv.out" &
    local receiver=$!
    sleep 0.5
    ip netns exec "$1" python3 "$here/tcp.py" send "$3" "$port" "$4" >"$tmp/send.out"
    wait "$receiver"
    [ -s "$tmp/send.out" ] && cmp -s "$tmp/send.out" "$tmp/recv.out" ||
        fail "transfer mismatch: sent $(cat "$tmp/send.out"), received $(cat "$tmp/recv.out")"
}

start=$(date +%s.%N)
transfer "$ns_us" "$ns_go" 10.241.0.2 "$mib"
ok "TCP $mib MiB us → wireguard-go, sha256 $(cut -d' ' -f2 "$tmp/send.out" | cut -c1-16)… ($(echo "$(date +%s.%N) - $start" | bc | cut -c1-5) s)"
start=$(date +%s.%N)
transfer "$ns_go" "$ns_us" 10.241.0.1 "$mib"
ok "TCP $mib MiB wireguard-go → us, sha256 matches ($(echo "$(date +%s.%N) - $start" | bc | cut -c1-5) s)"

# 2. Restart our side with the same key; this time we initiate.
kill "$us_pid"
wait "$us_pid" 2>/dev/null || true
sleep 0.5
start_us endpoint
ip netns exec "$ns_us" ping -c 3 -i 0.2 -W 2 10.241.0.2 >/dev/null || fail "ping after restart (we initiate)"
ok "restart with the same key, we initiate, ping"

# 3. Roaming: our UDP port changes in the middle of a transfer.
port=$((20000 + RANDOM % 20000))
ip netns exec "$ns_go" python3 "$here/tcp.py" recv "$port" >"$tmp/recv.out" &
receiver=$!
sleep 0.5
ip netns exec "$ns_us" python3 "$here/tcp.py" send 10.241.0.2 "$port" 64 >"$tmp/send.out" &
sender=$!
sleep 0.3
ip netns exec "$ns_us" wg set "$if_us" listen-port 51830
wait "$sender"
wait "$receiver"
cmp -s "$tmp/send.out" "$tmp/recv.out" || fail "roaming transfer mismatch"
shown=$(ip netns exec "$ns_go" wg show "$if_go" endpoints)
[[ "$shown" == *"192.168.241.1:51830"* ]] || fail "wireguard-go did not follow our new port: $shown"
ok "roaming: port changed mid-transfer, wireguard-go follows ($shown)"

echo "$passed passed, 0 failed"
