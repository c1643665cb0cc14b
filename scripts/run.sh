#!/usr/bin/env bash
# The main job: builds `tether`, starts a local control plane, signs in as the
# first user, creates the demo workspace (scripts/demo-workspace.json) and
# starts its agent through the control plane's init script, exactly as a pod
# or VM would, then checks `ssh demo.coder` through the tailnet (OpenSSH with
# `tether ssh --stdio` as its ProxyCommand). Prints the ssh command and the
# dashboard link; Ctrl-C stops the agent (which runs its stop script and
# reports `off`) and then the control plane.
#
# Environment: TETHER_PORT (default 3000), TETHER_RUN_DIR (default .tether-run,
# recreated on each run), TETHER_BUILD (release or debug; default release).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
config=${TETHER_BUILD:-release}
swift build -c "$config" --product tether
bin=$(swift build -c "$config" --show-bin-path)/tether

port=${TETHER_PORT:-3000}
url="http://127.0.0.1:$port"
run=${TETHER_RUN_DIR:-.tether-run}
rm -rf "$run"
mkdir -p "$run"
run=$(cd "$run" && pwd)
export TETHER_CONFIG_DIR="$run/cli"

# Server and agent run in sessions of their own, so a Ctrl-C reaches only this
# script, whose trap stops them in order: the agent first (it reports `off`
# to a control plane that is still up), then the control plane.
setsid "$bin" server --address "127.0.0.1:$port" --data-dir "$run/data" >"$run/server.log" 2>&1 &
server=$!
agent=
stop() {
    trap - INT TERM EXIT
    if [ -n "$agent" ] && kill -0 "$agent" 2>/dev/null; then
        echo "stopping the agent (runs its stop script)…"
        kill -TERM "$agent"
        wait "$agent" 2>/dev/null || true
    fi
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
}
trap stop INT TERM EXIT

for _ in $(seq 100); do
    grep -q "listening on" "$run/server.log" 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$run/server.log" >&2; exit 1; }
    sleep 0.1
done

"$bin" login "$url" --first-user admin
sed "s|http://127.0.0.1:3000|$url|g" scripts/demo-workspace.json >"$run/demo-workspace.json"
created=$("$bin" create --spec "$run/demo-workspace.json" --json)
token=$(printf '%s' "$created" | grep -o '"token":"[^"]*"' | head -n 1 | cut -d'"' -f4)

# What a pod's `command:` would run: fetch the init script, which fetches the
# agent binary from the control plane and execs `tether agent`.
curl -fsS "$url/api/v1/init.sh" >"$run/init.sh"
TETHER_AGENT_TOKEN="$token" TETHER_AGENT_DIR="$run/agent" TETHER_AGENT_LOG_DIR="$run/agent" \
    setsid sh "$run/init.sh" >"$run/agent.log" 2>&1 &
agent=$!

for _ in $(seq 100); do
    "$bin" list | grep -qE "ready|start_error|start_timeout" && break
    sleep 0.1
done
echo
"$bin" list

# SSH through the tailnet. The Host block goes into a config file of this
# run, not ~/.ssh/config (`tether config-ssh` without --ssh-config does that).
"$bin" config-ssh --ssh-config "$run/ssh_config" >/dev/null
ssh_cmd="ssh -F $run/ssh_config -o UserKnownHostsFile=$run/known_hosts -o StrictHostKeyChecking=accept-new demo.coder"
if out=$($ssh_cmd -o BatchMode=yes 'echo "hello from $(hostname) over the tailnet"' 2>"$run/ssh.err"); then
    echo "$out"
else
    echo "ssh through the tailnet failed:" >&2
    cat "$run/ssh.err" >&2
fi
echo
echo "Control plane: $url   (logs: $run/server.log, agent: $run/agent.log)"
echo "Dashboard (one-time sign-in link, valid 60 s; \`TETHER_CONFIG_DIR=$run/cli $bin dashboard\` makes another):"
echo "  $("$bin" dashboard)"
echo "Metrics: $url/metrics"
echo
echo "SSH into the workspace (WireGuard over the embedded DERP relay, then direct UDP):"
echo "  $ssh_cmd"
echo "Forward a port of the workspace's loopback here, and see the tunnel's path, latency and throughput:"
echo "  TETHER_CONFIG_DIR=$run/cli $bin port-forward demo --tcp 8080:8080"
echo "  TETHER_CONFIG_DIR=$run/cli $bin ping demo"
echo "  TETHER_CONFIG_DIR=$run/cli $bin speedtest demo"
echo "Press Ctrl-C to stop."
wait "$agent" || true
