"""--userns=auto: distinct ranges, release, persistence, concurrent allocation, the CLI and API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent import cli
from agent.api.server import spec_from_body
from agent.cli.workloads import run_body
from workloads.lifecycle import idalloc
from workloads.lifecycle.idalloc import POOL_END, POOL_FIRST, IdAllocator, IdAllocError
from workloads.runtime.spec import USERNS_SIZE, SpecError, WorkloadSpec, check_spec

REPO = Path(__file__).resolve().parents[2]
SIZE = USERNS_SIZE


@pytest.fixture
def id_files(tmp_path: Path) -> dict[str, Path]:
    """Account and subordinate-id files as this test writes them (empty at first)."""
    files = {name: tmp_path / name for name in ("passwd", "group", "subuid", "subgid")}
    for f in files.values():
        f.write_text("")
    return files


@pytest.fixture
def alloc(tmp_path: Path, id_files: dict[str, Path]) -> IdAllocator:
    kinds = {"passwd": "account", "group": "account", "subuid": "range", "subgid": "range"}
    checked = tuple((str(id_files[n]), kind) for n, kind in kinds.items())
    return IdAllocator(str(tmp_path / "state"), id_files=checked)


def test_distinct_aligned_ranges_in_the_pool_and_stable_per_name(alloc: IdAllocator) -> None:
    a, b, c = (alloc.allocate(n) for n in ("a", "b", "c"))
    assert (a, b, c) == (POOL_FIRST, POOL_FIRST + SIZE, POOL_FIRST + 2 * SIZE)
    assert alloc.allocate("b") == b  # asking again gives the same range
    assert all(x % SIZE == 0 and x >= POOL_FIRST and x + SIZE <= POOL_END for x in (a, b, c))
    assert [(x.name, x.base, x.last) for x in alloc.allocations()] == [
        ("a", a, a + SIZE - 1),
        ("b", b, b + SIZE - 1),
        ("c", c, c + SIZE - 1),
    ]


def test_ranges_of_accounts_subuid_and_fixed_workloads_are_skipped(
    alloc: IdAllocator, id_files: dict[str, Path]
) -> None:
    id_files["passwd"].write_text(f"odd:x:{POOL_FIRST + 5}:100::/:/bin/sh\n")
    id_files["subuid"].write_text(f"alice:{POOL_FIRST + SIZE}:{SIZE}\n")
    fixed = [(POOL_FIRST + 2 * SIZE + 1, POOL_FIRST + 2 * SIZE + 1)]
    assert alloc.allocate("w", exclude=fixed) == POOL_FIRST + 3 * SIZE


def test_release_gives_the_range_back_and_the_lowest_is_reused(alloc: IdAllocator) -> None:
    a, b = alloc.allocate("a"), alloc.allocate("b")
    assert alloc.release("a") is True and alloc.release("a") is False
    assert [x.name for x in alloc.allocations()] == ["b"]
    assert alloc.allocate("c") == a and alloc.allocate("d") == b + SIZE


def test_allocations_persist_in_an_atomic_versioned_file(alloc: IdAllocator) -> None:
    base = alloc.allocate("keep")
    again = IdAllocator(os.path.dirname(alloc.path), id_files=alloc.id_files)  # restarted
    assert again.allocate("keep") == base and again.allocate("new") == base + SIZE
    doc = json.loads(Path(alloc.path).read_text())
    assert doc == {"version": 1, "size": SIZE, "ranges": {"keep": base, "new": base + SIZE}}
    assert sorted(os.listdir(os.path.dirname(alloc.path))) == [
        idalloc.ALLOC_FILE,
        idalloc.LOCK_FILE,
    ]  # no temporary file left behind


def test_an_exhausted_pool_is_a_clear_error(tmp_path: Path) -> None:
    small = IdAllocator(str(tmp_path), first=POOL_FIRST, end=POOL_FIRST + 2 * SIZE, id_files=())
    small.allocate("a")
    small.allocate("b")
    with pytest.raises(IdAllocError, match=r"no free range .* \(2 workloads hold one\)"):
        small.allocate("c")


def test_a_corrupt_file_refuses_allocation_and_reconcile_rebuilds_it(alloc: IdAllocator) -> None:
    alloc.allocate("a")
    Path(alloc.path).write_text("{not json")
    with pytest.raises(IdAllocError, match="rebuilds it from the workload records"):
        alloc.allocate("b")
    assert alloc.release("a") is False
    notes = alloc.reconcile({"a": POOL_FIRST})
    assert any("rebuilt" in n for n in notes)
    assert alloc.allocate("b") == POOL_FIRST + SIZE


def test_reconcile_follows_the_workload_records(alloc: IdAllocator) -> None:
    alloc.allocate("gone")  # its record was lost: the range comes back
    notes = alloc.reconcile({"kept": POOL_FIRST + 3 * SIZE})
    assert [(x.name, x.base) for x in alloc.allocations()] == [("kept", POOL_FIRST + 3 * SIZE)]
    assert any("gone" in n for n in notes) and any("kept" in n for n in notes)
    assert alloc.reconcile({"kept": POOL_FIRST + 3 * SIZE}) == []  # nothing to change


def test_concurrent_allocations_by_separate_processes_are_distinct(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    code = (
        "import sys; from workloads.lifecycle.idalloc import IdAllocator; "
        "print(IdAllocator(sys.argv[1], id_files=()).allocate(sys.argv[2]))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, state, f"w{i}"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    bases = [int(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(bases) == [POOL_FIRST + i * SIZE for i in range(6)]
    held = {a.name: a.base for a in IdAllocator(state).allocations()}
    assert held == {f"w{i}": bases[i] for i in range(6)}


def test_assign_allocates_for_auto_and_guards_fixed_bases(alloc: IdAllocator) -> None:
    auto = WorkloadSpec(name="a", argv=["x"], userns=True, userns_auto=True)
    check_spec(auto)  # the default base is not checked for an auto workload
    got = idalloc.assign(alloc, auto, [])
    assert got.userns_auto and got.userns_base == POOL_FIRST
    assert got.id_map() == f"0 {POOL_FIRST} {SIZE}"
    fixed = WorkloadSpec(name="f", argv=["x"], userns=True, userns_base=POOL_FIRST + 10)
    with pytest.raises(IdAllocError, match=r"workload 'a'.s \(--userns=auto\)"):
        idalloc.assign(alloc, fixed, [got])
    # An auto range avoids the fixed ranges of the agent's other workloads.
    other = WorkloadSpec(name="o", argv=["x"], userns=True, userns_base=POOL_FIRST + SIZE)
    second = idalloc.assign(alloc, WorkloadSpec(**{**auto.__dict__, "name": "b"}), [got, other])
    assert second.userns_base == POOL_FIRST + 2 * SIZE
    plain = WorkloadSpec(name="p", argv=["x"])
    assert idalloc.assign(alloc, plain, []) is plain
    assert idalloc.held_ranges([got, second, other, plain]) == {
        "a": POOL_FIRST,
        "b": POOL_FIRST + 2 * SIZE,
    }


def test_assign_releases_a_range_the_rootfs_cannot_use(alloc: IdAllocator, tmp_path: Path) -> None:
    rootfs = tmp_path / "locked" / "rootfs"
    rootfs.mkdir(parents=True)
    os.chmod(tmp_path / "locked", 0o700)  # root's, no search for others
    spec = WorkloadSpec(name="r", argv=["x"], rootfs=str(rootfs), userns=True, userns_auto=True)
    with pytest.raises(SpecError, match="not reachable from the user namespace"):
        idalloc.assign(alloc, spec, [])
    assert alloc.allocations() == []


def test_spec_json_keeps_auto_and_old_records_read_as_fixed() -> None:
    spec = WorkloadSpec(name="w", argv=["x"], userns=True, userns_base=POOL_FIRST, userns_auto=True)
    stored = json.loads(json.dumps(spec.to_json()))  # as config.json holds it
    assert WorkloadSpec.from_json(stored) == spec
    old = dict(stored)
    del old["userns_auto"]
    assert WorkloadSpec.from_json(old).userns_auto is False
    with pytest.raises(SpecError, match="userns is not"):
        check_spec(WorkloadSpec(name="w", argv=["x"], userns_auto=True))


def _parse(*argv: str) -> dict[str, object]:
    return run_body(cli.build_parser().parse_args(["run", *argv]))


def test_cli_userns_auto_besides_bare_userns(capsys: pytest.CaptureFixture[str]) -> None:
    assert _parse("--userns", "--", "true")["userns"] is True
    assert _parse("--userns=auto", "--", "true")["userns"] == "auto"
    assert "userns_base" not in _parse("--userns=auto", "--", "true")
    with pytest.raises(ValueError, match="drop --userns-base"):
        _parse("--userns=auto", "--userns-base", "200000", "--", "true")
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "--userns=sometimes", "--", "true"])
    assert e.value.code == 125  # a usage error, as docker's CLI
    err = capsys.readouterr().err
    assert "--userns=auto" in err and "Traceback" not in err


def test_api_body_userns_auto() -> None:
    spec = spec_from_body({"argv": ["x"], "userns": "auto"})
    assert spec.userns and spec.userns_auto
    plain = spec_from_body({"argv": ["x"], "userns": True})
    assert plain.userns and not plain.userns_auto
    with pytest.raises(SpecError, match='true or false, or "auto"'):
        spec_from_body({"argv": ["x"], "userns": "sometimes"})
    with pytest.raises(SpecError, match="userns is not true"):
        spec_from_body({"argv": ["x"], "userns": "auto", "userns_base": 200000})
