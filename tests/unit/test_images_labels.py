"""The `image` label: a workload run from an image carries it beside `workload`, on the
per-cgroup series (pystats and cAdvisor naming) and on pystats_workload_state."""

from __future__ import annotations

from agent.exporter import Exporter
from agent.exporter.agentinfo import AgentInfo
from agent.parts import _labeler
from tests.unit.test_exporter_golden import fixed_store


class _Manager:
    """What _labeler asks of the workload manager."""

    def labels_for_cgroup(self, rel: str) -> str | None:
        parts = rel.split("/")
        return parts[1] if len(parts) > 1 and parts[0] == "workloads" else None

    def workload_images(self) -> dict[str, str]:
        return {"web": "127.0.0.1:5000/test/app:1"}


def test_labeler_adds_the_image_of_a_workload_run_from_one() -> None:
    labels = _labeler("pystats/", _Manager())  # type: ignore[arg-type]
    assert labels("pystats/workloads/web") == {
        "workload": "web",
        "image": "127.0.0.1:5000/test/app:1",
    }
    assert labels("pystats/workloads/job") == {"workload": "job"}  # run without an image
    assert labels("pystats/policies/batch") == {"policy": "batch"}
    assert labels("other/workloads/web") == {}


def _info() -> AgentInfo:
    labels = {"workloads/web": {"workload": "web", "image": "busybox:1", "pid": "dropped"}}
    return AgentInfo(
        version="t",
        labels=lambda p: labels.get(p, {}),
        workload_states=lambda: {"web": "running", "job": "exited"},
        workload_images=lambda: {"web": "busybox:1"},
    )


def test_metrics_carry_the_image_label_beside_workload() -> None:
    text = Exporter(fixed_store(), _info(), naming="both").render().decode()
    lines = text.splitlines()
    web = [ln for ln in lines if 'cgroup="workloads/web"' in ln]
    assert web and all('workload="web",image="busybox:1"' in ln for ln in web), web[:3]
    assert not any("pid=" in ln for ln in lines)  # only known keys are exported
    root = [ln for ln in lines if ln.startswith("pystats_") and 'cgroup="/"' in ln]
    assert root and not any("image=" in ln for ln in root)
    cadv = [ln for ln in lines if ln.startswith("container_") and 'name="web"' in ln]
    assert cadv and all('image="busybox:1"' in ln for ln in cadv), cadv[:3]
    cadv_root = [ln for ln in lines if ln.startswith("container_") and 'id="/"' in ln]
    assert cadv_root and not any("image=" in ln for ln in cadv_root)
    assert 'pystats_workload_state{image="busybox:1",state="running",workload="web"} 1' in lines
    assert 'pystats_workload_state{state="exited",workload="job"} 1' in lines


async def test_stats_rows_name_the_image_of_a_workload() -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from agent.api.stats_routes import add_stats_routes
    from agent.statsview.fake import demo_store
    from cgroupfs.paths import CgroupRoot

    app = web.Application()
    add_stats_routes(
        app,
        demo_store(),
        CgroupRoot("/sys/fs/cgroup"),
        names=lambda: {"pystats.slice/web": "web"},
        images=lambda: {"pystats.slice/web": "busybox:1"},
    )
    async with TestClient(TestServer(app)) as client:
        rows = (await (await client.get("/v1/stats?all=1")).json())["rows"]
    by_path = {r["path"]: r for r in rows}
    assert by_path["pystats.slice/web"]["extra"] == {"image": "busybox:1"}
    assert by_path["pystats.slice/web"]["workload"] == "web"
    assert by_path["pystats.slice/batch"]["extra"] == {}
