#!/usr/bin/env bash
# Capture real cgroup v2 interface files as parser fixtures (tests/fixtures/).
#
#   scripts/capture_fixtures.sh host             this host's v2 tree -> tests/fixtures/host-$(uname -r)/
#   scripts/capture_fixtures.sh vm               boots the test VM (vng, TCG) and runs vm-inside there,
#                                                then copies -> tests/fixtures/kernel-<maj.min>-vm/
#   scripts/capture_fixtures.sh vm-inside OUT    inside the VM (root, pure v2 at /sys/fs/cgroup)
#
# Each mode creates its own temporary cgroup, drives some real activity into it (CPU, memory
# pressure up to an OOM kill, block I/O on a loop device, forks past pids.max), copies the files
# under their kernel names, and removes everything it created, also on failure.
# The values set here are asserted by tests/unit/test_parsers.py: change both together.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FILES=(
  cgroup.controllers cgroup.subtree_control cgroup.events cgroup.stat cgroup.procs cgroup.threads
  cpu.stat cpu.max cpu.weight cpu.pressure memory.pressure io.pressure
  memory.current memory.peak memory.max memory.high memory.low memory.min
  memory.swap.current memory.swap.max memory.events memory.events.local memory.stat
  pids.current pids.max pids.events io.stat
)

copy_files() { # $1 = cgroup dir, $2 = output dir
  mkdir -p "$2"
  for f in "${FILES[@]}"; do
    if [[ -e "$1/$f" ]]; then cat "$1/$f" > "$2/$f"; fi
  done
}

kill_and_remove() { # depth first; every cgroup under $1 (including $1)
  local cg="$1"
  [[ -d "$cg" ]] || return 0
  [[ -e "$cg/cgroup.freeze" ]] && echo 0 > "$cg/cgroup.freeze" 2>/dev/null || true
  [[ -e "$cg/cgroup.kill" ]] && echo 1 > "$cg/cgroup.kill" 2>/dev/null || true
  for _ in $(seq 50); do
    grep -q '^populated 0' "$cg/cgroup.events" 2>/dev/null && break
    sleep 0.1
  done
  find "$cg" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
  rmdir "$cg" 2>/dev/null || true
}

# Run "$@" inside cgroup $CG (the shell joins it, then execs the command).
in_cgroup() { local cg="$1"; shift; sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cg" "$@"; }

capture_host() {
  local tree=/sys/fs/cgroup/unified
  [[ -w "$tree/cgroup.procs" ]] || { echo "no writable cgroup v2 tree at $tree (need root)" >&2; exit 1; }
  local out="${1:-$ROOT/tests/fixtures/host-$(uname -r)}"
  local cg="$tree/pystats-fixtures-$$"
  trap 'kill_and_remove "'"$cg"'"' EXIT
  mkdir "$cg"
  mkdir "$cg/child"                              # cgroup.stat nr_descendants 1
  in_cgroup "$cg" timeout 1 sh -c 'while :; do :; done' || true   # some cpu.stat usage
  in_cgroup "$cg" sleep 300 & disown
  in_cgroup "$cg" sleep 300 & disown
  sleep 0.5
  echo 1 > "$cg/cgroup.freeze"                   # cgroup.events frozen 1
  for _ in $(seq 50); do grep -q '^frozen 1' "$cg/cgroup.events" && break; sleep 0.1; done
  rm -rf "$out"
  copy_files "$cg" "$out"
  { echo "kernel $(uname -r)"; echo "mode host"; echo "processes $(wc -l < "$out/cgroup.procs")"
    echo "frozen 1"
    echo "nr_descendants 1"; } > "$out/_capture.txt"
  echo "captured $(ls "$out" | wc -l) files into $out"
}

capture_vm_inside() {
  local out="${1:?usage: capture_fixtures.sh vm-inside OUTDIR}"
  local top=/sys/fs/cgroup
  grep -qw memory "$top/cgroup.controllers" || { echo "no memory controller at $top" >&2; exit 1; }
  local parent="$top/pystats-fixtures" cg="$top/pystats-fixtures/workload"
  LOOPDEV=""  # global: the EXIT trap runs outside this function
  trap 'kill_and_remove "'"$parent"'"; [[ -n "$LOOPDEV" ]] && losetup -d "$LOOPDEV"; true' EXIT
  echo "+cpu +memory +pids +io" > "$top/cgroup.subtree_control"
  mkdir "$parent"
  echo "+cpu +memory +pids +io" > "$parent/cgroup.subtree_control"
  mkdir "$cg"
  echo 33554432 > "$cg/memory.max"               # 32 MiB
  echo 25165824 > "$cg/memory.high"              # 24 MiB
  echo 8388608 > "$cg/memory.low"                # 8 MiB
  echo 4194304 > "$cg/memory.min"                # 4 MiB
  echo 16777216 > "$cg/memory.swap.max"          # 16 MiB
  echo 8 > "$cg/pids.max"
  echo "20000 100000" > "$cg/cpu.max"
  echo 250 > "$cg/cpu.weight"
  mkdir "$cg/child"                              # cgroup.stat nr_descendants 1 (no controllers)

  # CPU past the 20% quota: throttled periods.
  in_cgroup "$cg" timeout 2 sh -c 'while :; do :; done' || true
  # Memory past high (reclaim, high events) and max (OOM kill: memory.events oom_kill >= 1).
  in_cgroup "$cg" python3 -c 'b = b"x" * (64 << 20)' && { echo "expected an OOM kill" >&2; exit 1; } || true
  # Block I/O on a loop device, direct so it reaches the device: io.stat gets a line.
  truncate -s 16M /tmp/pystats-fixture.img
  modprobe loop 2>/dev/null || true
  LOOPDEV=$(losetup -f --show /tmp/pystats-fixture.img)
  in_cgroup "$cg" dd if=/dev/zero of="$LOOPDEV" bs=1M count=4 oflag=direct status=none
  in_cgroup "$cg" dd if="$LOOPDEV" of=/dev/null bs=1M count=8 iflag=direct status=none
  # Forks past pids.max=8 (the first failed fork ends dash's loop): pids.events max >= 1.
  in_cgroup "$cg" sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do sleep 300 & done; wait' 2>/dev/null &
  disown
  for _ in $(seq 100); do grep -q '^max [1-9]' "$cg/pids.events" && break; sleep 0.1; done
  sleep 1

  rm -rf "$out"
  copy_files "$cg" "$out"
  mkdir -p "$out/parent"
  copy_files "$parent" "$out/parent"
  { echo "kernel $(uname -r)"; echo "mode vm"; echo "loop $LOOPDEV $(stat -c '%t:%T' "$LOOPDEV")"
    echo "processes $(wc -l < "$out/cgroup.procs")"; echo "nr_descendants 1"; } > "$out/_capture.txt"
  echo "captured $(ls "$out" | wc -l) files into $out"
}

capture_vm() {
  local kernel tmp ver
  kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n1)
  ver=$(basename "$kernel" | sed -E 's/^vmlinuz-([0-9]+\.[0-9]+).*/\1/')
  tmp=$(mktemp -d /tmp/pystats-capture.XXXXXX)
  PATH="$ROOT/.venv/bin:$PATH" timeout 900 vng --run "$kernel" --disable-kvm --memory 1G --cpus 2 \
    --rwdir "$tmp" -- \
    "'$ROOT/scripts/capture_fixtures.sh' vm-inside '$tmp/out' > '$tmp/log' 2>&1; echo \$? > '$tmp/rc'" \
    > "$tmp/console" 2>&1 || true
  cat "$tmp/log" 2>/dev/null || { echo "VM produced no log; console:" >&2; tail -n 30 "$tmp/console" >&2; }
  [[ "$(cat "$tmp/rc" 2>/dev/null)" == 0 ]] || { echo "capture in the VM failed" >&2; rm -rf "$tmp"; exit 1; }
  local dest="$ROOT/tests/fixtures/kernel-$ver-vm"
  rm -rf "$dest"
  cp -r "$tmp/out" "$dest"
  rm -rf "$tmp"
  echo "fixtures in $dest"
}

case "${1:-}" in
  host) capture_host "${2:-}" ;;
  vm) capture_vm ;;
  vm-inside) capture_vm_inside "${2:-}" ;;
  *) echo "usage: $0 host [OUTDIR] | vm | vm-inside OUTDIR" >&2; exit 2 ;;
esac
