#!/usr/bin/env bash
# Install pystats as a systemd service: its own virtualenv in /opt/pystats, the unit, and an
# example configuration (kept if one exists). Run as root from the source tree.
#   deploy/install.sh            install and enable --now
#   deploy/install.sh --no-start install only
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
prefix=${PYSTATS_PREFIX:-/opt/pystats}
start=1
[ "${1:-}" = "--no-start" ] && start=0

if [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
  echo "install: this host does not run the unified cgroup v2 hierarchy at /sys/fs/cgroup;" >&2
  echo "install: the service needs it (boot with systemd.unified_cgroup_hierarchy=1)." >&2
  [ "$start" = 1 ] && exit 1
fi

# Runtime packages: Debian's CPython and venv (the interpreter python3-seccomp is built for),
# libseccomp's Python binding, the containers seccomp profile (the default filter), tini
# (--init), catatonit (a pod's infra), the CNI plugins and iptables (networks, published ports).
need=()
for p in python3 python3-venv python3-seccomp golang-github-containers-common tini catatonit \
         containernetworking-plugins iptables; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

mkdir -p "$prefix" /etc/pystats
rm -rf "$prefix/src.new"
cp -a "$src" "$prefix/src.new"
rm -rf "$prefix/src.new/.venv" "$prefix/src.new/.git"
rm -rf "$prefix/src" && mv "$prefix/src.new" "$prefix/src"
# Debian's own python3, not whichever python3 comes first on PATH (see scripts/setup).
base=$(/usr/bin/python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
if [ -x "$prefix/venv/bin/python" ] && ! grep -qx "executable = $base" "$prefix/venv/pyvenv.cfg"; then
  rm -rf "$prefix/venv"
fi
[ -x "$prefix/venv/bin/python" ] || /usr/bin/python3 -m venv "$prefix/venv"
"$prefix/venv/bin/pip" install -q --disable-pip-version-check -c "$prefix/src/requirements.lock" "$prefix/src"
so=$(ls /usr/lib/python3/dist-packages/seccomp.cpython-3*-*.so | head -n1)
site=$("$prefix/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
ln -sf "$so" "$site/"
"$prefix/venv/bin/pystats" completion --install --prefix /usr

install -m 0644 "$src/deploy/systemd/pystats-agent.service" /etc/systemd/system/pystats-agent.service
[ -f /etc/pystats/agent.yaml ] || install -m 0644 "$src/deploy/agent.yaml" /etc/pystats/agent.yaml
"$prefix/venv/bin/pystats-agent" --config /etc/pystats/agent.yaml --check-config
systemctl daemon-reload
if [ "$start" = 1 ]; then
  systemctl enable --now pystats-agent.service
  systemctl --no-pager status pystats-agent.service | head -n 5
fi
