"""`pystats run [-t|-it] --rm` of a command done at once still prints its output: the workload's
output (and so its exit, and the removal --rm asks for) waits until the run's own client has
attached, as docker's run attaches before it starts (workloads.supervisor.console). The race
went either way before; each loop makes it many times."""

from __future__ import annotations

import time

import pytest

from agent.api.client import WorkloadClient
from tests.host.test_agent_host import Agent, agent  # noqa: F401 (a fixture)
from tests.host.test_interactive_host import Term, cli, wagent  # noqa: F401 (a fixture)

pytestmark = pytest.mark.host
RUNS = 30


@pytest.mark.parametrize("flags", [("-t",), ()], ids=["tty", "pipes"])
def test_run_rm_of_a_quick_command_always_prints_its_output(
    wagent: Agent,  # noqa: F811 (the imported fixture)
    flags: tuple[str, ...],
) -> None:
    for n in range(RUNS):
        p = cli(wagent.sock, "run", *flags, "--rm", "--", "sh", "-c", f"echo out-{n}; exit 3")
        assert (p.returncode, p.stdout.split()) == (3, [f"out-{n}"]), (n, p.stdout, p.stderr)
        assert p.stderr == "", (n, p.stderr)
    assert WorkloadClient(wagent.sock).listing(all_=True) == []  # each removed before it returned


def test_run_it_rm_through_a_terminal_always_prints_its_output(wagent: Agent) -> None:  # noqa: F811
    for n in range(RUNS):
        t = Term(wagent.sock, "run", "-it", "--rm", "--", "echo", f"hi-{n}")
        assert t.wait() == 0, (n, t.seen)
        assert f"hi-{n}".encode() in t.seen and b"error" not in t.seen, (n, t.seen)


def test_a_detached_terminal_run_is_not_held_for_a_client(wagent: Agent) -> None:  # noqa: F811
    """-dit: nobody attaches first, so nothing waits (the hold is ATTACH_WAIT_S, 30 s)."""
    p = cli(wagent.sock, "run", "-dit", "--rm", "--name", "gone", "--", "echo", "x")
    assert p.returncode == 0, p.stderr
    deadline = time.monotonic() + 10
    while WorkloadClient(wagent.sock).listing(all_=True):
        assert time.monotonic() < deadline, "a -dit --rm workload waited for a client"
        time.sleep(0.1)


def test_only_the_first_run_waits_for_a_client(wagent: Agent) -> None:  # noqa: F811
    """`start` of a workload made by an attached run: its second run has no client to wait for."""
    c = WorkloadClient(wagent.sock)
    p = cli(wagent.sock, "run", "-t", "--name", "again", "--", "echo", "x")
    assert (p.returncode, p.stdout.split()) == (0, ["x"]), p.stderr
    assert c._json("POST", c._path("again", "/wait"))["run"] == 1
    assert cli(wagent.sock, "start", "again").returncode == 0
    t0 = time.monotonic()
    info = c._json("POST", c._path("again", "/wait"))
    assert info["run"] == 2 and time.monotonic() - t0 < 10, info  # not ATTACH_WAIT_S (30 s)
