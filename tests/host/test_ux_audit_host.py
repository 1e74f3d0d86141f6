"""The UX audit's fixes through the real CLI against a real agent on this host's controller-less
v2 tree: --format errors, errors about several names, `exec` at a path that is not a socket,
docker's spellings of run's limits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.api.client import WorkloadClient
from tests.host.test_agent_host import Agent, agent, request  # noqa: F401 (a fixture)
from tests.host.test_cli_defects_host import REPO, cli, wagent  # noqa: F401 (a fixture)

pytestmark = pytest.mark.host


def test_a_broken_format_is_an_error_not_the_template_echoed(
    wagent: Agent,  # noqa: F811 (the imported fixture)
    host_cgroup: str,
) -> None:
    wagent.start(wagent.config(host_cgroup))
    WorkloadClient(wagent.sock).create({"name": "fmt", "argv": ["sleep", "1000"]})
    for args in (("inspect", "-f", "{{.State", "fmt"), ("ps", "--format", "{{.Names")):
        p = cli(wagent.sock, *args)
        assert p.returncode == 125 and p.stdout == "", (args, p.stdout)
        assert "unclosed action in template" in p.stderr and "Traceback" not in p.stderr
    p = cli(wagent.sock, "inspect", "-f", "{{.State.Status}}", "fmt")
    assert (p.returncode, p.stdout) == (0, "running\n"), p.stderr


def test_errors_about_several_names_name_each_once(
    wagent: Agent,  # noqa: F811
    host_cgroup: str,
) -> None:
    wagent.start(wagent.config(host_cgroup))
    WorkloadClient(wagent.sock).create({"name": "busy", "argv": ["sleep", "1000"]})
    p = cli(wagent.sock, "rm", "ghost", "busy")
    assert p.returncode == 1
    assert p.stderr.splitlines() == [
        "pystats: error: no such workload: 'ghost'",
        "pystats: error: workload 'busy' is running: stop it first or use --force",
    ]
    assert WorkloadClient(wagent.sock).inspect("busy")["state"] == "running"  # nothing lost
    p = cli(wagent.sock, "kill", "-s", "BOGUS", "busy")
    assert p.returncode == 125 and "'BOGUS' is not a signal name" in p.stderr


def test_run_takes_dockers_pids_limit_and_exec_names_a_non_socket(
    wagent: Agent,  # noqa: F811
    host_cgroup: str,
    tmp_path: Path,
) -> None:
    wagent.start(wagent.config(host_cgroup))
    # a limit flag is parsed before the create: a bad value names the flag as typed
    p = cli(wagent.sock, "run", "-d", "--name", "pl", "--pids-limit", "0", "--", "true")
    assert p.returncode == 125 and "argument --pids-limit: '0'" in p.stderr, p.stderr
    assert request(wagent.sock, "GET", "/v1/workloads/pl")[0] == 404  # nothing was made
    conf = tmp_path / "agent.yaml"
    conf.write_text("root: auto\n")
    p = cli(str(conf), "exec", "x", "true")
    assert p.returncode == 125
    assert p.stderr.strip() == (
        f"pystats: error: {conf} is not a socket (--socket or $PYSTATS_SOCKET names the agent's)"
    )


def test_container_prune_without_an_answer_removes_nothing(
    wagent: Agent,  # noqa: F811
    host_cgroup: str,
) -> None:
    wagent.start(wagent.config(host_cgroup))
    client = WorkloadClient(wagent.sock)
    client.create({"name": "done", "argv": ["true"]})
    client._json("POST", client._path("done", "/wait"))
    p = subprocess.run(  # stdin: not a terminal, and no answer
        [sys.executable, "-m", "agent.cli", "container", "prune"],
        cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        env=dict(os.environ, PYSTATS_SOCKET=wagent.sock), timeout=60,
    )  # fmt: skip
    assert p.returncode == 0 and "cancelled: nothing removed" in p.stderr, p.stderr
    assert client.inspect("done")["state"] == "exited"  # still there
    p = cli(wagent.sock, "ps", "-a", "--filter", "status=exitted")
    assert p.returncode == 125 and "a status is one of" in p.stderr
    p = cli(wagent.sock, "container", "prune", "-f")
    assert p.returncode == 0 and "done" in p.stdout.splitlines()
    assert request(wagent.sock, "GET", "/v1/workloads/done")[0] == 404


def test_run_t_of_a_command_done_before_the_attach_gives_its_output_and_code(
    wagent: Agent,  # noqa: F811
    host_cgroup: str,
) -> None:
    wagent.start(wagent.config(host_cgroup))
    for n in range(3):  # the race goes either way; every way must end well
        p = cli(wagent.sock, "run", "-t", "--name", f"t{n}", "--", "sh", "-c", "echo out; exit 4")
        assert p.returncode == 4, p.stderr
        assert "out" in p.stdout and "error" not in p.stderr, (p.stdout, p.stderr)
        p = cli(wagent.sock, "run", "-t", "--rm", "--", "sh", "-c", "echo out; exit 3")
        assert p.returncode == 3, p.stderr
        # the output waits for the CLI's attach (stdio.attach): never gone before it
        assert "out" in p.stdout and p.stderr == "", (p.stdout, p.stderr)
        assert "no such workload" not in p.stderr


def test_run_d_of_a_command_that_cannot_run_fails_as_docker_does(
    wagent: Agent,  # noqa: F811
    host_cgroup: str,
) -> None:
    """docker run -d answers 127/126 when the command is missing or not executable (its create
    fails); the agent now answers a create once the exec happened, not when set-up began."""
    wagent.start(wagent.config(host_cgroup))
    p = cli(wagent.sock, "run", "-d", "--name", "nf", "--", "/no/such/command")
    assert p.returncode == 127 and p.stdout == "", (p.returncode, p.stdout, p.stderr)
    assert "nf: command not found: '/no/such/command'" in p.stderr, p.stderr
    p = cli(wagent.sock, "run", "-d", "--name", "nx", "--", "/etc/hostname")
    assert p.returncode == 126 and "'/etc/hostname'" in p.stderr, (p.returncode, p.stderr)
    assert WorkloadClient(wagent.sock).inspect("nf")["exit_code"] == 127  # kept, as docker's
    p = cli(wagent.sock, "run", "-d", "--name", "ok", "--", "sleep", "100")
    assert (p.returncode, p.stdout) == (0, "ok\n"), p.stderr
    info = WorkloadClient(wagent.sock).inspect("ok")
    assert info["state"] == "running", info


def test_a_missing_workdir_on_the_read_only_host_root_is_named(
    wagent: Agent,  # noqa: F811
    host_cgroup: str,
) -> None:
    wagent.start(wagent.config(host_cgroup))
    p = cli(wagent.sock, "run", "-d", "--name", "wd", "-w", "/no-such-dir-here", "--", "true")
    assert p.returncode == 126, (p.returncode, p.stderr)
    assert "'/no-such-dir-here': it does not exist and the root file system is read-only" in (
        p.stderr
    ), p.stderr
    assert not os.path.exists("/no-such-dir-here")
