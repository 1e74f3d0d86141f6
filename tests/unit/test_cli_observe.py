"""Issue 17.5: docker's STATUS/CREATED wording, filters and the --format template subset."""

from __future__ import annotations

import pytest

from agent.cli.observe import docker_view, human_duration, matches, parse_filters, status_text
from agent.cli.template import TemplateError, render, render_rows

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
ISO = "2027-01-15T08:00:00.000000Z"


def rec(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "web",
        "state": "running",
        "argv": ["sleep", "9"],
        "created_at": ISO,
        "started_at": ISO,
        "finished_at": None,
        "exit_code": None,
        "pid": 42,
        "restart_count": 0,
        "restart_policy": "on-failure:3",
        "limits": {"memory_bytes": 1 << 20, "cpus": 0.5, "pids": None},
        "env": {"A": "1"},
    }
    base.update(kw)
    return base


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
        (180, "3 minutes"), (3600, "About an hour"), (5 * 3600, "5 hours"),
        (3 * 86400, "3 days"), (20 * 86400, "2 weeks"), (90 * 86400, "3 months"),
        (800 * 86400, "2 years"),
    ],
)  # fmt: skip
def test_human_duration_is_dockers(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_status_reads_like_dockers() -> None:
    assert status_text(rec(), T0 + 180) == "Up 3 minutes"
    assert status_text(rec(state="paused"), T0 + 5) == "Up 5 seconds (Paused)"
    done = rec(state="exited", exit_code=3, finished_at=ISO)
    assert status_text(done, T0 + 120) == "Exited (3) 2 minutes ago"
    again = rec(state="restarting", exit_code=1, finished_at=ISO)
    assert status_text(again, T0 + 3) == "Restarting (1) 3 seconds ago"
    backoff = rec(state="restarting", exit_code=1, finished_at=ISO, restart_in_s=2.0)
    assert status_text(backoff, T0 + 3) == "Restarting (1) 3 seconds ago (next try in 2 seconds)"
    oom = rec(state="exited", exit_code=137, finished_at=ISO, oom_killed=True)
    assert status_text(oom, T0 + 1) == "Exited (137) 1 second ago (OOM killed)"
    assert status_text(rec(state="created", started_at=None), T0) == "Created"


def test_filters_or_within_a_key_and_across_keys() -> None:
    f = parse_filters(["status=running", "status=paused", "name=we"])
    assert matches(rec(), f) and matches(rec(state="paused"), f)
    assert not matches(rec(state="exited"), f) and not matches(rec(name="db"), f)
    lab = rec(labels={"tier": "front", "x": ""})
    assert matches(lab, parse_filters(["label=tier"]))
    assert matches(lab, parse_filters(["label=tier=front"]))
    assert not matches(lab, parse_filters(["label=tier=back"]))
    with pytest.raises(ValueError, match="invalid filter 'color=red'"):
        parse_filters(["color=red"])


def test_inspect_format_with_dockers_fields() -> None:
    view = docker_view(rec())
    text = "{{.Name}} {{.State.Status}} {{.State.Pid}} {{.State.Running}} {{.HostConfig.Memory}}"
    assert render(text, view) == "/web running 42 true 1048576"
    assert render("{{.HostConfig.NanoCpus}} {{json .Config.Cmd}}", view) == (
        '500000000 ["sleep","9"]'
    )
    assert (
        render(
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            view,
        )
        == "on-failure:3"
    )
    assert render('{{.Config.Env | json}} {{join .Args ","}} {{.Nope}}', view) == (
        '["A=1"] 9 <no value>'
    )
    assert render("{{.limits.cpus}} {{upper .state}}", view) == "0.5 RUNNING"  # pystats' keys
    with pytest.raises(TemplateError, match="unknown function 'range'"):
        render("{{range .Args}}", view)


def test_table_format_has_a_header_and_aligned_columns() -> None:
    rows = [{"Names": "a", "Status": "Up 1 second"}, {"Names": "long-name", "Status": "Created"}]
    assert render_rows("table {{.Names}}\\t{{.Status}}", rows) == [
        "NAMES       STATUS",
        "a           Up 1 second",
        "long-name   Created",
    ]
    assert render_rows("{{.Names}}", rows) == ["a", "long-name"]
