/// The agent bootstrap served at `GET /api/v1/init.sh`: a POSIX `sh`
/// script that downloads this control plane's own `tether` binary and execs
/// `tether agent --url URL`, the agent token coming from the environment
/// (`TETHER_AGENT_TOKEN`) so it never appears in a process listing. Usable
/// as a pod's `command: ["sh", "-c", "curl -fsSL URL/api/v1/init.sh | sh"]`,
/// in cloud-init, or from the systemd unit in deploy/.
enum InitScript {
    static func render(accessURL: String) -> String {
        """
        #!/bin/sh
        # Tether agent bootstrap, served by the control plane at \(accessURL).
        # Needs TETHER_AGENT_TOKEN (printed once by `tether create`) and curl or wget;
        # uses gzip when the machine has it.
        set -eu
        TETHER_URL="${TETHER_URL:-\(shellQuoted(accessURL))}"
        : "${TETHER_AGENT_TOKEN:?set TETHER_AGENT_TOKEN to this agent\\'s token}"
        export TETHER_AGENT_TOKEN
        dir="${TETHER_AGENT_DIR:-${TMPDIR:-/tmp}/tether-agent}"
        mkdir -p "$dir"
        bin="$dir/tether"
        part="$bin.part.$$"
        fetch() {
            if command -v curl >/dev/null 2>&1; then
                curl -fsS -o "$2" "$1"
            elif command -v wget >/dev/null 2>&1; then
                wget -q -O "$2" "$1"
            else
                echo "tether: neither curl nor wget is installed" >&2
                exit 1
            fi
        }
        # The gzip copy is a third of the bytes; without gzip, the binary as is.
        download() {
            if command -v gzip >/dev/null 2>&1; then
                fetch "$TETHER_URL/api/v1/bin/tether.gz?arch=$(uname -m)" "$part.gz" &&
                    gzip -dc "$part.gz" > "$part" && rm -f "$part.gz"
            else
                fetch "$TETHER_URL/api/v1/bin/tether?arch=$(uname -m)" "$part"
            fi
        }
        until download; do
            rm -f "$part.gz"
            echo "tether: could not download the agent from $TETHER_URL; retrying in 5 s" >&2
            sleep 5
        done
        chmod 0755 "$part"
        mv -f "$part" "$bin"
        exec "$bin" agent --url "$TETHER_URL"

        """
    }

    /// A value safe inside double quotes in sh.
    static func shellQuoted(_ s: String) -> String {
        var out = ""
        for c in s {
            if "\"$`\\".contains(c) { out.append("\\") }
            out.append(c)
        }
        return out
    }
}
