"""An image's config applied to a run, as docker does.

argv = entrypoint + cmd, where ``--entrypoint`` replaces the image's Entrypoint and drops its
Cmd, and a command given to ``run`` replaces Cmd. Env: the image's, then the user's on top.
WorkingDir, User and StopSignal come from the image unless the user set them.
"""

from __future__ import annotations

from dataclasses import dataclass

from workloads.images.errors import ImageError
from workloads.images.manifest import ImageConfig


@dataclass(frozen=True)
class RunConfig:
    argv: list[str]
    env: dict[str, str]
    workdir: str | None
    user: str | None
    stop_signal: str | None


def apply(
    cfg: ImageConfig,
    cmd: list[str],
    *,
    entrypoint: list[str] | None = None,
    env: dict[str, str] | None = None,
    workdir: str | None = None,
    user: str | None = None,
) -> RunConfig:
    """``entrypoint`` None: the image's; [] (``--entrypoint ""``): none."""
    if entrypoint is not None:
        argv = list(entrypoint) + list(cmd)
    else:
        argv = list(cfg.entrypoint or ()) + (list(cmd) if cmd else list(cfg.cmd or ()))
    if not argv:
        raise ImageError("no command: the image has no Entrypoint or Cmd; give one after IMAGE")
    merged: dict[str, str] = {}
    for item in cfg.env:
        key, sep, value = item.partition("=")
        if sep and key:
            merged[key] = value
    merged.update(env or {})
    return RunConfig(
        argv=argv,
        env=merged,
        workdir=workdir or cfg.working_dir,
        user=user or cfg.user,
        stop_signal=cfg.stop_signal,
    )
