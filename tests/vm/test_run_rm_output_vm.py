"""In the VM (a busybox rootfs, the API's dev server): `pystats run [-t|-it] --rm` of a command
done at once prints its output every time, its exit code too, and leaves nothing behind: the
shim holds the output until the run's CLI has attached (tests/host/test_run_rm_output_host.py
makes the race more often; here the CLI starts slowly under emulation)."""

from __future__ import annotations

import pytest

from tests.host.test_interactive_host import Term
from tests.vm.test_interactive_vm import agent, rootfs  # noqa: F401 (fixtures)
from tests.vm.wlagent import Agent

pytestmark = pytest.mark.vm
RUNS = 8  # each CLI start takes seconds under the VM's emulation


@pytest.mark.parametrize("flags", [("-t",), ()], ids=["tty", "pipes"])
def test_run_rm_of_a_quick_command_prints_its_output(
    agent: Agent,  # noqa: F811 (the imported fixtures)
    rootfs: str,  # noqa: F811
    flags: tuple[str, ...],
) -> None:
    for n in range(RUNS):
        r = agent.cli("run", *flags, "--rm", "--rootfs", rootfs, "--", "sh", "-c", f"echo o{n}")
        assert (r.returncode, r.stdout.split(), r.stderr) == (0, [f"o{n}"], ""), (n, r)
    assert agent.client.listing(all_=True) == []


def test_run_it_rm_through_a_terminal_prints_its_output(agent: Agent, rootfs: str) -> None:  # noqa: F811
    for n in range(RUNS):
        t = Term(
            agent.sock, "run", "-it", "--rm", "--rootfs", rootfs, "--", "sh", "-c", f"echo i{n}"
        )
        assert t.wait(timeout=120) == 0, (n, t.seen)
        assert f"i{n}".encode() in t.seen and b"error" not in t.seen, (n, t.seen)
