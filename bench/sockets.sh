#!/usr/bin/env bash
# Restarts under load, PID-file backend (this host): a socket-activated server
# (tests/support/fd3_server.py, `--listen`), a client connecting every 5 ms, 20 restarts
# (`mydaemon restart`); prints connections and failures (target: 0 failed).
# usage: bench/sockets.sh [RESTARTS]      (BIN=path/to/mydaemon, default release build)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
BIN=$(realpath "${BIN:-target/release/mydaemon}")
TMP=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MD=("$BIN" --name bench-sock --backend pidfile)
P=(--pid-file "$TMP/s.pid" --log-dir "$TMP")
trap '"${MD[@]}" stop "${P[@]}" >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
"${MD[@]}" start "${P[@]}" --listen "tcp:127.0.0.1:$PORT" -- /usr/bin/python3 "$PWD/tests/support/fd3_server.py" >/dev/null
out=$(python3 bench/restart_load.py "$PORT" "$N" "$(printf '%q ' "${MD[@]}" restart "${P[@]}")")
python3 - "$out" <<'PY'
import json, sys
v = json.loads(sys.argv[1])
verdict = 'PASS' if v['failed'] == 0 else 'MISS'
print(f"restarts under load (pidfile): {v['restarts']} restarts in {v['seconds']} s, "
      f"{v['connections']} connections, {v['failed']} failed {v['failures']} [{verdict}: 0 failed]")
PY
