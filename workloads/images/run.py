"""Running a workload from an image: the spec filled in from the image (argv, env, workdir,
user, stop signal, layers), and its snapshot mounted before each run and removed at rm."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from workloads.images import config, snapshot, users
from workloads.images.service import ImageService
from workloads.runtime.imagespec import ImageSpec
from workloads.runtime.spec import WorkloadSpec


@dataclass(frozen=True)
class ImageRequest:
    """What `run IMAGE` asks for besides the spec: the image, and docker's overrides."""

    ref: str
    entrypoint: list[str] | None = None  # --entrypoint ([] clears the image's)
    user: str | None = None  # --user


def prepare(
    images: ImageService, spec: WorkloadSpec, req: ImageRequest, state_dir: str
) -> WorkloadSpec:
    """The spec to record: the image's config applied under the user's flags, the rootfs the
    snapshot's mount point. ImageNotFound if the image is not local (the CLI pulls first)."""
    rec = images.get(req.ref)
    cfg = images.config(rec)
    layers = images.layer_dirs(rec)
    run = config.apply(
        cfg,
        spec.argv,
        entrypoint=req.entrypoint,
        env=spec.env,
        workdir=spec.workdir,
        user=req.user,
    )
    ids = users.resolve(layers, run.user) if run.user else None
    snap = snapshot.paths_for(state_dir, spec.name)
    image = ImageSpec(
        ref=req.ref,
        id=rec.id,
        digest=rec.manifest_digest,
        layers=tuple(layers),
        snapshot=snap.base,
        owner="chown" if spec.userns else "image",
        user=run.user,
        uid=None if ids is None else ids.uid,
        gid=None if ids is None else ids.gid,
        groups=() if ids is None else ids.groups,
        stop_signal=run.stop_signal,
    )
    user = spec.user  # --group-add's names are the image's groups
    if user is not None and user.group_add:
        user = replace(user, extra_groups=users.group_ids(layers, user.group_add))
    return replace(
        spec,
        argv=run.argv,
        env=run.env,
        workdir=run.workdir,
        rootfs=snap.rootfs,
        image=image,
        user=user,
    )


def mount(spec: WorkloadSpec) -> None:
    """Mount the workload's snapshot if it is not (the first run, or after a reboot)."""
    img = spec.image
    assert img is not None
    snapshot.mount(
        snapshot.SnapshotPaths(img.snapshot),
        list(img.layers),
        read_only=spec.mounts.read_only,
        id_offset=spec.userns_base if spec.userns else 0,
    )


def remove(spec: WorkloadSpec) -> None:
    if spec.image is not None and spec.image.snapshot:
        snapshot.remove(snapshot.SnapshotPaths(spec.image.snapshot))


def upper_size(spec: WorkloadSpec) -> int | None:
    if spec.image is None or spec.mounts.read_only:
        return None
    return snapshot.upper_size(snapshot.SnapshotPaths(spec.image.snapshot))


def describe(spec: WorkloadSpec) -> dict[str, Any] | None:
    """inspect's ``image``: which image, its digest, and how the rootfs is owned."""
    img = spec.image
    if img is None:
        return None
    return {
        "ref": img.ref,
        "id": img.id,
        "digest": img.digest,
        "snapshot": img.snapshot,
        "rootfs_owner": img.owner,
        "read_only": spec.mounts.read_only,
        "user": img.user,
    }
