# ruff: noqa: F811  (pytest fixtures imported from the agent tests are named as parameters)
"""Issue 17.2 against the real agent on this host's v2 tree: --init (tini as PID 1: `stop` of a
plain sleep ends at once with 143), --stop-signal, --stop-timeout, --rm, unless-stopped."""

from __future__ import annotations

import time

import pytest

from agent.api.client import WorkloadClient
from tests.host.test_agent_host import Agent, agent  # noqa: F401 (a fixture)
from tests.host.test_cli_defects_host import cli, wagent  # noqa: F401 (a fixture)

pytestmark = pytest.mark.host


def test_init_makes_stop_quick_and_exit_143(wagent: Agent, host_cgroup: str) -> None:
    wagent.start(wagent.config(host_cgroup))
    c = WorkloadClient(wagent.sock)
    p = cli(wagent.sock, "run", "-d", "--name", "ti", "--init", "--", "sleep", "1000")
    assert p.returncode == 0, p.stderr
    assert c.inspect("ti")["argv"] == ["sleep", "1000"]  # the user's command, as docker shows
    t0 = time.monotonic()
    p = cli(wagent.sock, "stop", "ti")
    took = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    info = c.inspect("ti")
    assert info["exit_code"] == 143, info  # SIGTERM forwarded by tini, not cgroup.kill's 137
    print(f"stop with --init took {took:.2f} s (CLI start included)")
    assert took < 10  # the default grace would have run out first


def test_stop_signal_and_timeout_come_from_the_run_flags(wagent: Agent, host_cgroup: str) -> None:
    wagent.start(wagent.config(host_cgroup))
    c = WorkloadClient(wagent.sock)
    trap = "trap 'echo got-int; exit 7' INT; while :; do sleep 0.1; done"
    p = cli(
        wagent.sock, "run", "-d", "--name", "si", "--stop-signal", "INT", "--", "sh", "-c", trap
    )
    assert p.returncode == 0, p.stderr
    assert cli(wagent.sock, "stop", "si").returncode == 0
    assert c.inspect("si")["exit_code"] == 7
    assert b"got-int" in b"".join(c.logs("si"))
    # sleep as PID 1 ignores TERM: --stop-timeout 0.3 sends it to cgroup.kill quickly
    p = cli(wagent.sock, "run", "-d", "--name", "st", "--stop-timeout", "0.3", "--", "sleep", "99")
    assert p.returncode == 0, p.stderr
    t0 = time.monotonic()
    assert cli(wagent.sock, "stop", "st").returncode == 0
    assert c.inspect("st")["exit_code"] == 137
    assert time.monotonic() - t0 < 9
    bad = cli(wagent.sock, "run", "--stop-signal", "NOPE", "--", "true")
    assert bad.returncode == 125 and "invalid signal 'NOPE'" in bad.stderr


def test_rm_removes_after_exit_and_run_still_gets_the_code(wagent: Agent, host_cgroup: str) -> None:
    wagent.start(wagent.config(host_cgroup))
    c = WorkloadClient(wagent.sock)
    p = cli(wagent.sock, "run", "--rm", "--name", "gone", "--", "sh", "-c", "echo hi; exit 5")
    assert (p.returncode, p.stdout) == (5, "hi\n"), p.stderr
    assert all(w["name"] != "gone" for w in c.listing(all_=True))


def test_unless_stopped_restarts_until_stopped(wagent: Agent, host_cgroup: str) -> None:
    wagent.start(wagent.config(host_cgroup))
    c = WorkloadClient(wagent.sock)
    p = cli(wagent.sock, "run", "-d", "--name", "us", "--restart", "unless-stopped", "--",
            "sh", "-c", "sleep 0.2")  # fmt: skip
    assert p.returncode == 0, p.stderr
    deadline = time.monotonic() + 60
    backoffs = []
    while c.inspect("us")["restart_count"] < 5:
        assert time.monotonic() < deadline
        info = c.inspect("us")
        if info["state"] == "restarting":
            backoffs.append(info["restart_in_s"])
        time.sleep(0.05)
    assert backoffs and all(b is not None and b >= 0 for b in backoffs), backoffs
    assert cli(wagent.sock, "stop", "us").returncode == 0
    time.sleep(1)
    assert c.inspect("us")["state"] == "exited"


def test_sig_proxy_passes_ctrl_c_to_the_workload(wagent: Agent, host_cgroup: str) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.host.test_cli_defects_host import REPO

    wagent.start(wagent.config(host_cgroup))
    c = WorkloadClient(wagent.sock)
    trap = "trap 'echo got-int; exit 9' INT; echo ready; while :; do sleep 0.1; done"
    for name, extra, code in (("sp", [], 9), ("nosp", ["--sig-proxy", "false"], 130)):
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--name", name, *extra, "--", "sh", "-c",
             trap],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYSTATS_SOCKET": wagent.sock},
            # Ctrl-C as a shell's foreground job gets it: a suite started in the background
            # inherits SIGINT ignored, and Python keeps ignoring what its parent ignored.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == code, (name, out, err)
        if code == 9:
            assert out == "got-int\n" and c.inspect(name)["exit_code"] == 9
        else:  # not proxied: the workload goes on
            assert c.inspect(name)["state"] == "running"


def test_attach_follows_new_output_and_returns_the_exit_code(
    wagent: Agent, host_cgroup: str
) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.host.test_cli_defects_host import REPO

    wagent.start(wagent.config(host_cgroup))
    script = "echo old; trap 'echo bye; exit 4' INT; while :; do echo tick; sleep 0.2; done"
    assert cli(wagent.sock, "run", "-d", "--name", "at", "--", "sh", "-c", script).returncode == 0
    time.sleep(0.5)
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "attach", "at"], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYSTATS_SOCKET": wagent.sock},
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline() == "tick\n"  # from now on: not "old"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, err
    assert out.endswith("bye\n") and "old" not in out
    gone = cli(wagent.sock, "attach", "at")
    assert gone.returncode == 1 and "is not running" in gone.stderr
