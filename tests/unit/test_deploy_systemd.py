"""The shipped unit passes `systemd-analyze verify` and keeps the choices the README explains."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

UNIT = Path(__file__).parents[2] / "deploy" / "systemd" / "pystats-agent.service"


def _unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read(UNIT)
    return cp


def test_unit_settings() -> None:
    svc = _unit()["Service"]
    assert svc["Type"] == "notify"
    assert svc["Delegate"] == "yes"
    assert svc["DelegateSubgroup"] == "agent"  # systemd can start the agent while workloads run
    assert "ProtectClock" not in svc  # its device allow-list would bind every workload
    assert svc["KillMode"] == "process"  # workloads survive agent restarts
    assert svc["Restart"] == "on-failure"
    assert int(svc["LimitNOFILE"]) >= 100_000
    # full, not strict: workloads inherit it, and their rootfs or data may live under /srv, /var
    assert svc["ProtectSystem"] == "full"
    for inherited_by_workloads in ("PrivateTmp", "SystemCallArchitectures", "RestrictRealtime"):
        assert inherited_by_workloads not in svc
    assert "/sys/fs/cgroup" in svc["ReadWritePaths"] and "/var/lib/pystats" in svc["ReadWritePaths"]
    assert "WatchdogSec" in svc


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        from tests import envcheck

        envcheck.unavailable("systemd-analyze is not installed (apt-get install systemd)")
        return
    # The unit names the installed venv; point it at this checkout's so verify can check
    # that ExecStart exists and is executable.
    venv = str(Path(sys.executable).parent.parent)
    unit = tmp_path / "pystats-agent.service"
    unit.write_text(UNIT.read_text().replace("/opt/pystats/venv", venv))
    r = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    warnings = [w for w in r.stderr.splitlines() if "pystats-agent.service" in w]
    if _systemd_version(tool) < 254:  # DelegateSubgroup= came with 254; older ones say so once
        assert len(warnings) == 1 and "Unknown key 'DelegateSubgroup'" in warnings[0], warnings
    else:
        assert warnings == []  # no warnings about our unit


def _systemd_version(analyze: str) -> int:
    out = subprocess.run([analyze, "--version"], capture_output=True, text=True, timeout=30).stdout
    return int(out.split()[1])  # "systemd 252 (252.39-1~deb12u2)"
