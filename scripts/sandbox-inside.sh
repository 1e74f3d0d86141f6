#!/usr/bin/env bash
# Runs inside the test VM (scripts/sandbox): the agent with a policy, three workloads (one
# CPU-capped spinner, one that gets OOM-killed, one placed process), then what an operator sees.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/.venv/bin
T=$(mktemp -d /tmp/pystats-sandbox.XXXXXX)
ROOT=/sys/fs/cgroup/pystats-sandbox
export PYSTATS_SOCKET=$T/agent.sock

cat >"$T/policy.yaml" <<YAML
version: 1
groups:
  - name: batch
    limits: {cpu.max: "20000 100000", memory.max: 64M}
    match:
      - cmdline: ['pystats-sandbox-batch']
YAML
cat >"$T/agent.yaml" <<YAML
root: $ROOT
state_dir: $T/state
socket: $T/agent.sock
metrics_listen: 127.0.0.1:9753
policy: $T/policy.yaml
interval: 1s
reconcile_interval: 2s
YAML

step() { printf '\n=== %s\n' "$*"; }
cleanup() {
  [ -n "${AGENT:-}" ] && kill "$AGENT" 2>/dev/null && wait "$AGENT" 2>/dev/null
  [ -n "${BATCH:-}" ] && kill "$BATCH" 2>/dev/null
  # Workloads outlive the agent by design: kill the whole subtree, then remove it depth first.
  [ -d "$ROOT" ] && find "$ROOT" -depth -type d | while read -r d; do
    [ -e "$d/cgroup.kill" ] && echo 1 >"$d/cgroup.kill" 2>/dev/null
    sleep 0.2; rmdir "$d" 2>/dev/null || true
  done
}
trap cleanup EXIT

step "pystats-agent --check-config"
"$BIN/pystats-agent" --config "$T/agent.yaml" --check-config || true

step "a process that exists before the agent starts"
python3 -c 'import time; time.sleep(600)' pystats-sandbox-batch &
BATCH=$!

step "start the agent"
"$BIN/pystats-agent" --config "$T/agent.yaml" >"$T/agent.log" 2>&1 &
AGENT=$!
for _ in $(seq 240); do "$BIN/pystats" ps >/dev/null 2>&1 && break; sleep 0.5; done

step "launch workloads"
"$BIN/pystats" run -d --name spinner --cpus 0.5 --memory 64M -- sh -c 'while :; do :; done'
"$BIN/pystats" run -d --name hog --memory 32M -- \
  python3 -c 'b = []
while True: b.append(bytearray(1 << 20))'
"$BIN/pystats" run -d --name quick -- sh -c 'echo hello from quick; exit 3'
sleep 8

step "pystats ps -a"
"$BIN/pystats" ps -a
step "pystats logs quick"
"$BIN/pystats" logs quick
step "where the existing process went (policy 'batch')"
cat "/proc/$BATCH/cgroup"
step "pystats policy explain $BATCH"
"$BIN/pystats" policy explain --policy "$T/policy.yaml" --root "$ROOT/policies" "$BATCH" || true
step "pystats stats --no-stream"
"$BIN/pystats" stats --no-stream
step "/metrics (workload series, OOM kills)"
python3 - <<'PY'
import urllib.request
text = urllib.request.urlopen("http://127.0.0.1:9753/metrics", timeout=10).read().decode()
for line in text.splitlines():
    if ('type="oom_kill"' in line or "cpu_usage_seconds" in line) and "workload=" in line:
        print(line)
PY
step "agent log"
cat "$T/agent.log"
