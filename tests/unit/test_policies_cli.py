"""`pystats policy check|plan|explain` exit codes and output, run as the user would."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from agent.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(REPO, "policies", "examples", "build-farm.yaml")
BROKEN = os.path.join(REPO, "tests", "unit", "fixtures_policies", "many_errors.yaml")


def test_check_ok_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", EXAMPLE]) == 0
    assert capsys.readouterr().out == f"{EXAMPLE}: ok (4 groups, 5 match rules)\n"


def test_check_errors_exit_1_every_error_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", EXAMPLE, BROKEN]) == 1
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert lines[0].endswith("ok (4 groups, 5 match rules)")
    assert [line.split(": ", 1)[0] for line in lines[1:]] == [
        f"{BROKEN}:3:11",
        f"{BROKEN}:4:23",
        f"{BROKEN}:4:39",
    ]
    assert out.err == f"{BROKEN}: 3 errors\n"


@pytest.mark.parametrize(
    "content", [b"\x00\x01\x02", b"[[[[", b"groups: {a: 1}", b"", b"- - -", b"groups: *x"]
)
def test_check_garbage_exit_1_no_traceback(tmp_path: str, content: bytes) -> None:
    path = os.path.join(tmp_path, "p.yaml")
    with open(path, "wb") as f:
        f.write(content)
    r = subprocess.run(
        [sys.executable, "-m", "agent.cli", "policy", "check", path],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert r.returncode == 1
    assert "Traceback" not in r.stderr + r.stdout
    assert r.stdout.startswith(f"{path}:")


def test_check_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", "/nonexistent.yaml"]) == 1
    assert "/nonexistent.yaml:1:1: cannot read the file" in capsys.readouterr().out


def test_plan_invalid_policy_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "plan", BROKEN, "--root", "/tmp/nowhere"]) == 1
    assert f"{BROKEN}:3:11:" in capsys.readouterr().out


def test_plan_root_not_cgroup2_exit_2(tmp_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "plan", EXAMPLE, "--root", os.path.join(tmp_path, "x")]) == 2
    assert "not on a cgroup2 filesystem" in capsys.readouterr().err


def test_explain_needs_a_policy(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["policy", "explain", "1", "--policy", BROKEN])
    assert rc == 1


def test_policy_check_does_not_import_heavy_modules() -> None:
    code = (
        f"import sys; from agent.cli import main; main(['policy', 'check', {EXAMPLE!r}]); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('textual', 'aiohttp', 'prometheus_client', 'psutil')))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.stdout.strip().endswith("[]"), r.stdout + r.stderr


def test_every_command_starts_without_asyncio() -> None:
    """The parser of every subcommand (built for any command) imports no asyncio, ssl or stdio
    protocol: -i/-t/exec options live in agent.cli.stdioopts, the sessions are imported by the
    handlers that run one (70 -> 32 ms of imports for `pystats ps` here)."""
    code = (
        "import sys; from agent.cli import build_parser; build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('asyncio', 'ssl', 'aiohttp') "
        "or m == 'workloads.runtime.stdio_proto'))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.stdout.strip().endswith("[]"), r.stdout + r.stderr


def test_run_checks_its_flags_without_the_runtime() -> None:
    """`pystats run -d` with limits checks them with workloads.runtime.values: the spec, the
    mount and security code, ctypes and the cgroup records stay unloaded (190 -> 100 ms here)."""
    code = (
        "import sys; from agent.cli import main; "
        "main(['run', '-d', '--cpus', '1', '--memory', '1G', '--pids-limit', '9', "
        "'--restart', 'on-failure:3', '--name', 'x', '--socket', '/nonexistent.sock', "
        "'--', 'true']); "
        "print(sorted(m for m in sys.modules if m in ('ctypes', 'cgroupfs.types', "
        "'workloads.runtime.spec', 'workloads.runtime.security', 'workloads.runtime.mounts')))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert "no pystats agent socket at /nonexistent.sock" in r.stderr, r.stderr
    assert r.stdout.strip().endswith("[]"), r.stdout + r.stderr
