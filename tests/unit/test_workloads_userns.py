"""--userns: the spec field, its validation, the command line and the API body."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent import cli
from agent.api.server import spec_from_body
from agent.cli.workloads import run_body
from workloads.lifecycle.manager import _userns_info
from workloads.runtime import idranges
from workloads.runtime.spec import (
    USERNS_DEFAULT_BASE,
    USERNS_MAX_BASE,
    USERNS_SIZE,
    SpecError,
    WorkloadSpec,
    check_spec,
    parse_userns_base,
)


@pytest.fixture(autouse=True)
def id_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The host's account and subordinate-id files, as this test writes them (empty at first)."""
    files = {name: tmp_path / name for name in ("passwd", "group", "subuid", "subgid")}
    for f in files.values():
        f.write_text("")
    kinds = {"passwd": "account", "group": "account", "subuid": "range", "subgid": "range"}
    monkeypatch.setattr(idranges, "ID_FILES", tuple((str(files[n]), kinds[n]) for n in kinds))
    return files


def _parse(*argv: str) -> dict[str, object]:
    return run_body(cli.build_parser().parse_args(["run", *argv]))


def test_default_range_is_100000_and_65536_ids() -> None:
    assert (USERNS_DEFAULT_BASE, USERNS_SIZE) == (100_000, 65_536)
    spec = WorkloadSpec(name="w", argv=["true"], userns=True)
    assert spec.id_map() == "0 100000 65536"
    assert WorkloadSpec(name="w", argv=["true"]).id_map() is None


@pytest.mark.parametrize(
    ("value", "want"), [(1, 1), ("200000", 200000), (" 65536 ", 65536), (USERNS_MAX_BASE,) * 2]
)
def test_good_bases(value: object, want: int) -> None:
    assert parse_userns_base(value) == want


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (0, "must lie within host ids 1..4294967294"),  # would map root inside to host root
        (USERNS_MAX_BASE + 1, "4294901760..4294967295 must lie within"),
        (-5, "expected an integer"),
        ("1e5", "expected an integer"),
        ("", "expected an integer"),
        (True, "expected an integer"),  # JSON true is not a number
        (1.5, "expected an integer"),
        (None, "expected an integer"),
    ],
)
def test_bad_bases_name_the_flag(value: object, needle: str) -> None:
    with pytest.raises(SpecError, match="--userns-base") as e:
        parse_userns_base(value)
    assert needle in str(e.value)


def test_check_spec_validates_the_base_only_with_userns() -> None:
    check_spec(WorkloadSpec(name="w", argv=["x"], userns_base=0))  # ignored without userns
    with pytest.raises(SpecError, match="--userns-base"):
        check_spec(WorkloadSpec(name="w", argv=["x"], userns=True, userns_base=0))


def test_rootfs_must_be_searchable_by_the_mapped_root(open_dir: Path) -> None:
    top = open_dir / "top"
    rootfs = top / "rootfs"
    rootfs.mkdir(parents=True)
    os.chmod(rootfs, 0o755)
    spec = WorkloadSpec(name="w", argv=["x"], rootfs=str(rootfs), userns=True)
    os.chmod(top, 0o700)  # root-owned (or the test user's), no search for others
    with pytest.raises(SpecError, match="not reachable from the user namespace") as e:
        check_spec(spec)
    assert f"{top} has mode 0700" in str(e.value) and "100000..165535" in str(e.value)
    check_spec(WorkloadSpec(name="w", argv=["x"], rootfs=str(rootfs)))  # fine without userns
    os.chmod(top, 0o711)
    check_spec(spec)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_rootfs_owned_by_the_range_needs_only_owner_search(open_dir: Path) -> None:
    rootfs = open_dir / "rootfs"
    rootfs.mkdir(mode=0o700)
    os.chown(rootfs, 200_000, 200_000)
    spec = WorkloadSpec(name="w", argv=["x"], rootfs=str(rootfs), userns=True)
    with pytest.raises(SpecError, match="not reachable"):
        check_spec(spec)  # owner 200000 is outside 100000..165535: "others" bits apply
    check_spec(WorkloadSpec(**{**spec.__dict__, "userns_base": 200_000}))


def test_spec_json_round_trip_and_old_records() -> None:
    spec = WorkloadSpec(name="w", argv=["x"], userns=True, userns_base=300_000)
    back = WorkloadSpec.from_json(spec.to_json())
    assert back == spec and back.id_map() == "0 300000 65536"
    old = spec.to_json()
    del old["userns"], old["userns_base"]  # a record written before the option existed
    assert WorkloadSpec.from_json(old).userns is False


def test_inspect_shows_the_maps_as_proc_does() -> None:
    spec = WorkloadSpec(name="w", argv=["x"], userns=True, userns_base=200_000)
    assert _userns_info(spec) == {"uid_map": "0 200000 65536", "gid_map": "0 200000 65536"}
    assert _userns_info(WorkloadSpec(name="w", argv=["x"])) is None


def test_cli_flags() -> None:
    assert "userns" not in _parse("--", "true")
    assert _parse("--userns", "--", "true")["userns"] is True
    body = _parse("--userns-base", "200000", "--", "id")  # the base implies --userns
    assert body["userns"] is True and body["userns_base"] == 200_000
    assert _parse("--userns", "--userns-base", "7", "--", "id")["userns_base"] == 7


@pytest.mark.parametrize(
    ("value", "needle"),
    [("0", "must lie within host ids"), ("lots", "expected an integer"), ("-1", "expected")],
)
def test_cli_bad_base_exits_125_without_traceback(
    value: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "--userns-base", value, "--", "true"])
    assert e.value.code == 125  # a usage error, as docker's CLI
    err = capsys.readouterr().err
    assert "argument --userns-base" in err and needle in err and "Traceback" not in err


def test_help_documents_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--userns" in out and "--userns-base BASE" in out and "100000" in out


def test_api_body() -> None:
    assert spec_from_body({"argv": ["x"]}).userns is False
    spec = spec_from_body({"argv": ["x"], "userns": True})
    assert spec.userns and spec.userns_base == USERNS_DEFAULT_BASE
    spec = spec_from_body({"argv": ["x"], "userns": True, "userns_base": 200_000})
    assert spec.userns_base == 200_000
    for body, msg in [
        ({"argv": ["x"], "userns": "yes"}, "userns must be true or false"),
        ({"argv": ["x"], "userns": 1}, "userns must be true or false"),
        ({"argv": ["x"], "userns_base": 200_000}, "userns is not true"),
        ({"argv": ["x"], "userns": True, "userns_base": 0}, "--userns-base"),
        ({"argv": ["x"], "userns": True, "userns_base": "x"}, "--userns-base"),
    ]:
        with pytest.raises(SpecError, match=msg):
            spec_from_body(body)


def test_a_range_that_is_someone_elses_is_refused_with_a_free_one_named(
    id_files: dict[str, Path],
) -> None:
    id_files["passwd"].write_text(
        "root:x:0:0::/root:/bin/sh\n# a comment\n\nnobody:x:65534:65534::/:/bin/false\n"
        "broken line\n"
    )
    id_files["subuid"].write_text("alice:100000:65536\nbob:165536:65536\n")
    id_files["subgid"].write_text("alice:100000:65536\n")
    spec = WorkloadSpec(name="w", argv=["x"], userns=True)  # the default base, 100000
    with pytest.raises(SpecError) as e:
        check_spec(spec)
    assert str(e.value) == (
        "--userns-base 100000: host ids 100000..165535 are already in use: ids 100000..165535 of"
        f" 'alice' ({id_files['subuid']}:1) and 1 more; --userns-base 262144 is free"
    )
    check_spec(WorkloadSpec(name="w", argv=["x"], userns=True, userns_base=262_144))
    with pytest.raises(SpecError, match=r"id 65534 of 'nobody' \(.*passwd:4\)"):
        check_spec(WorkloadSpec(name="w", argv=["x"], userns=True, userns_base=1_000))
    # one id is enough: a group at the range's last id
    id_files["group"].write_text("edge:x:327679:\n")
    with pytest.raises(SpecError, match=r"id 327679 of 'edge'.*--userns-base 327680 is free"):
        check_spec(WorkloadSpec(name="w", argv=["x"], userns=True, userns_base=262_144))


def test_free_base_skips_every_clash() -> None:
    used = [
        idranges.Taken("f", 1, "a", 0, 0),
        idranges.Taken("f", 2, "b", 100_000, 165_535),
        idranges.Taken("f", 3, "c", 200_000, 200_000),
    ]
    assert idranges.free_base(65_536, used, at_least=100_000) == 262_144
    assert idranges.free_base(65_536, used, at_least=1) == 262_144  # past b, then past c
    assert idranges.free_base(65_536, [], at_least=100_000) == 131_072
