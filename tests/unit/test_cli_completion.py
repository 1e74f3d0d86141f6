"""Issue 17.6: shell completion generated from the parser (shtab), checked in a real bash."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from agent.cli import main
from agent.cli.completion import script


def _bash_complete(script_path: Path, words: list[str], env: dict[str, str] | None = None) -> str:
    shell = (
        f"source {script_path}; COMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1};"
        ' _shtab_pystats; echo "${COMPREPLY[@]}"'
    )
    return subprocess.run(
        ["bash", "-c", shell], capture_output=True, text=True, check=True, env=env
    ).stdout.split()


def test_bash_completes_commands_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "pystats.bash"
    path.write_text(script("bash"))
    assert set(_bash_complete(path, ["pystats", "st"])) == {"stats", "stop", "start"}
    assert _bash_complete(path, ["pystats", "run", "--stop-t"]) == ["--stop-timeout"]
    assert "paused" not in _bash_complete(path, ["pystats", "container", ""])
    assert _bash_complete(path, ["pystats", "container", ""]) == ["prune"]


def test_bash_completes_workload_names_from_ps(tmp_path: Path) -> None:
    path = tmp_path / "pystats.bash"
    path.write_text(script("bash"))
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "pystats").write_text(
        "#!/bin/sh\n[ \"$1 $2\" = 'ps -aq' ] && printf 'web\\nworker\\ndb\\n'\n"
    )
    (fake / "pystats").chmod(0o755)
    env = {"PATH": f"{fake}:/usr/bin:/bin"}
    assert _bash_complete(path, ["pystats", "stop", "w"], env) == ["web", "worker"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_name_every_command(shell: str) -> None:
    text = script(shell)
    for cmd in ("run", "pause", "unpause", "wait", "top", "completion", "policy"):
        assert cmd in text
    checker = shutil.which(shell)
    if checker:  # a syntax check where the shell is installed
        subprocess.run([checker, "-n" if shell == "zsh" else "--no-execute"], input=text,
                       text=True, check=True)  # fmt: skip


def test_install_writes_the_three_files(tmp_path: Path) -> None:
    assert main(["completion", "--install", "--prefix", str(tmp_path)]) == 0
    assert (tmp_path / "share/bash-completion/completions/pystats").read_text().startswith("#")
    assert "_pystats" in (tmp_path / "share/zsh/vendor-completions/_pystats").read_text()
    assert (
        "complete -c pystats"
        in (tmp_path / "share/fish/vendor_completions.d/pystats.fish").read_text()
    )
