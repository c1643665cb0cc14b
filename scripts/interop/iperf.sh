#!/usr/bin/env bash
# Throughput benchmark: iperf3 TCP through a pair of WireGuard devices on TUN
# in two network namespaces (joined by a veth pair), for three pairings
# measured in the same run: ours↔ours, wireguard-go↔wireguard-go, and
# ours↔wireguard-go. Prints each figure and the ratio to the wireguard-go
# pair (issue 3 goal: ours ≥ 3×). Needs root, wireguard-go, wg, iperf3.
#
#   iperf.sh TETHER_BINARY [SECONDS] [ROUNDS]
set -euo pipefail
umask 077

bin=$(realpath "$1")
seconds=${2:-5}
suffix=$(printf '%04x%02x' $$ $((RANDOM % 256)))
tmp=$(mktemp -d)
# Each measurement runs in a $(...) subshell, so what it starts is written
# to files, not shell arrays: the parent's cleanup must see it.
touch "$tmp/pids" "$tmp/namespaces"

teardown() {
    local pid ns
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$tmp/pids"
    sleep 0.3
    while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done <"$tmp/pids"
    while read -r ns; do ip netns del "$ns" 2>/dev/null || true; done <"$tmp/namespaces"
    : >"$tmp/pids"
    : >"$tmp/namespaces"
    rm -f /var/run/wireguard/tb*"$suffix"*.sock
}
cleanup() {
    teardown
    rm -rf "$tmp"
}
trap cleanup EXIT

start_device() {  # $1 kind (ours|go), $2 namespace, $3 interface
    if [ "$1" = ours ]; then
        ip netns exec "$2" "$bin" wireguard "$3" >>"$tmp/$3.log" 2>&1 &
    else
        ip netns exec "$2" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$3" >>"$tmp/$3.log" 2>&1 &
    fi
    echo $! >>"$tmp/pids"
    for _ in $(seq 100); do [ -S "/var/run/wireguard/$3.sock" ] && return 0; sleep 0.1; done
    echo "no UAPI socket for $3" >&2
    exit 1
}

measure() {  # $1 left kind, $2 right kind, $3 tag → prints Mbit/s
    local n1="tb1$3$suffix" n2="tb2$3$suffix" i1="tb$3a$suffix" i2="tb$3b$suffix"
    echo "$n1" >>"$tmp/namespaces"
    echo "$n2" >>"$tmp/namespaces"
    ip netns add "$n1"
    ip netns add "$n2"
    ip -n "$n1" link set lo up
    ip -n "$n2" link set lo up
    ip link add "tv$3a$suffix" netns "$n1" type veth peer name "tv$3b$suffix" netns "$n2"
    ip -n "$n1" addr add 192.168.242.1/24 dev "tv$3a$suffix"
    ip -n "$n2" addr add 192.168.242.2/24 dev "tv$3b$suffix"
    ip -n "$n1" link set "tv$3a$suffix" up
    ip -n "$n2" link set "tv$3b$suffix" up
    wg genkey >"$tmp/k1"
    wg genkey >"$tmp/k2"
    start_device "$1" "$n1" "$i1"
    start_device "$2" "$n2" "$i2"
    ip netns exec "$n1" wg set "$i1" private-key "$tmp/k1" listen-port 51820 \
        peer "$(wg pubkey <"$tmp/k2")" allowed-ips 10.242.0.2/32 endpoint 192.168.242.2:51820
    ip netns exec "$n2" wg set "$i2" private-key "$tmp/k2" listen-port 51820 \
        peer "$(wg pubkey <"$tmp/k1")" allowed-ips 10.242.0.1/32 endpoint 192.168.242.1:51820
    ip -n "$n1" addr add 10.242.0.1/24 dev "$i1"
    ip -n "$n2" addr add 10.242.0.2/24 dev "$i2"
    ip -n "$n1" link set "$i1" mtu 1420 up
    ip -n "$n2" link set "$i2" mtu 1420 up
    ip netns exec "$n2" iperf3 -s -1 -D -B 10.242.0.2 -I "$tmp/iperf-$3.pid" >/dev/null 2>&1
    sleep 0.2
    cat "$tmp/iperf-$3.pid" >>"$tmp/pids" 2>/dev/null || true
    sleep 0.5
    ip netns exec "$n1" ping -c 1 -W 3 10.242.0.2 >/dev/null
    ip netns exec "$n1" iperf3 -c 10.242.0.2 -t "$seconds" -J >"$tmp/$3.json"
    python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['end']['sum_received']['bits_per_second']/1e6, 1))" "$tmp/$3.json"
    teardown >/dev/null
}

# Rounds interleave the pairings so a change in machine load hits each of
# them alike; the medians are compared.
rounds=${3:-3}
ours_all=()
go_all=()
mixed_all=()
for r in $(seq "$rounds"); do
    ours_all+=("$(measure ours ours "o$r")")
    go_all+=("$(measure go go "g$r")")
    mixed_all+=("$(measure ours go "m$r")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
ours=$(median "${ours_all[@]}")
go=$(median "${go_all[@]}")
mixed=$(median "${mixed_all[@]}")
echo "rounds (Mbit/s): tether pair ${ours_all[*]}; wireguard-go pair ${go_all[*]}; mixed ${mixed_all[*]}; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-52s %10s %10s %7s\n' "iperf3 TCP through a WireGuard pair, Mbit/s (median)" ours wg-go ratio
printf '%-52s %10s %10s %7s\n' "tether ↔ tether (vs wireguard-go ↔ wireguard-go)" "$ours" "$go" \
    "$(python3 -c "print(f'{$ours/$go:.2f}')")"
printf '%-52s %10s %10s %7s\n' "tether → wireguard-go (vs wireguard-go pair)" "$mixed" "$go" \
    "$(python3 -c "print(f'{$mixed/$go:.2f}')")"
