"""Path safety: cgroup names are validated and every path is resolved beneath the configured root.

A *rel* is a cgroup's path relative to the root, "/"-separated, with "" for the root itself
(leading and trailing "/" are tolerated and stripped). Nothing outside the root can be named:
"..", "." and empty components are refused, and the resolved path's realpath must stay beneath
the root's realpath, so a symlink inside the tree cannot lead out of it.
"""

from __future__ import annotations

import os

from cgroupfs.errors import UnsafePath

# Interface-file prefixes of cgroup v2 (core and controllers). A cgroup named "memory.max" or
# "cgroup.procs" would be confused with (or collide with) the kernel's control files.
CONTROL_PREFIXES = frozenset(
    {"cgroup", "cpu", "cpuset", "io", "memory", "pids", "hugetlb", "rdma", "misc", "irq", "dmem"}
)
NAME_MAX = 255  # bytes, the kernel's limit for one path component


def validate_name(name: str, *, strict: bool = True) -> str:
    """Return ``name`` if it is a safe cgroup directory name, else raise UnsafePath saying why.

    Always refused: empty, ".", "..", names containing "/", NUL or a newline (a newline would
    break the line format of /proc/<pid>/cgroup), names longer than 255 bytes.
    ``strict`` (the default, for names we create or write to) also refuses names that look like
    control files: "<controller>.<anything>" such as "memory.max", "cpu.stat", "cgroup.procs".
    Readers pass ``strict=False`` so that existing cgroups named e.g. "cpu.service" are seen.
    """
    if not isinstance(name, str):
        raise UnsafePath(f"cgroup name must be a string, got {type(name).__name__}")
    if name == "":
        raise UnsafePath("empty cgroup name (a path with '//' or an empty name?)")
    if name in (".", ".."):
        raise UnsafePath(f"cgroup name {name!r} would leave the cgroup: use a plain name")
    if "/" in name:
        raise UnsafePath(f"cgroup name {name!r} contains '/': give one path component per name")
    if "\0" in name:
        raise UnsafePath(f"cgroup name {name!r} contains a NUL byte")
    if "\n" in name:
        raise UnsafePath(f"cgroup name {name!r} contains a newline")
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise UnsafePath(f"cgroup name {name[:40]!r}... is longer than {NAME_MAX} bytes")
    if strict:
        prefix, dot, _rest = name.partition(".")
        if dot and prefix in CONTROL_PREFIXES:
            raise UnsafePath(
                f"cgroup name {name!r} looks like a control file: names starting with "
                f"{prefix + '.'!r} are reserved for the kernel's {prefix} interface files "
                f"(e.g. {prefix}.max); choose another name, e.g. {name.replace('.', '-', 1)!r}"
            )
    return name


def split_rel(rel: str, *, strict: bool = True) -> list[str]:
    """The validated components of a rel ("" -> [])."""
    if not isinstance(rel, str):
        raise UnsafePath(f"cgroup path must be a string, got {type(rel).__name__}")
    stripped = rel.strip("/")
    if stripped == "":
        if "\0" in rel:
            raise UnsafePath(f"cgroup path {rel!r} contains a NUL byte")
        return []
    return [validate_name(part, strict=strict) for part in stripped.split("/")]


def _beneath(real: str, real_root: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip("/") + "/")


class CgroupRoot:
    """The configured cgroup root; every path cgroupfs touches is resolved through it."""

    __slots__ = ("_real", "path")

    def __init__(self, path: str) -> None:
        if not path or "\0" in path:
            raise UnsafePath(f"cgroup root {path!r} is not a usable path")
        self.path = os.path.normpath(os.path.abspath(path))
        self._real = os.path.realpath(self.path)

    def __repr__(self) -> str:
        return f"CgroupRoot({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CgroupRoot) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def resolve(self, rel: str, *, strict: bool = True) -> str:
        """Absolute path of cgroup ``rel``, guaranteed beneath the root (UnsafePath otherwise).

        Each component is validated (see validate_name; ``strict=False`` for reading cgroups
        that already exist), and the realpath of the result must not escape the root through
        a symlink. A path that does not exist yet is fine (create() resolves before mkdir).
        """
        parts = split_rel(rel, strict=strict)
        if not parts:
            return self.path
        path = os.path.join(self.path, *parts)
        real = os.path.realpath(path)
        if not _beneath(real, self._real):
            raise UnsafePath(
                f"cgroup path {rel!r} resolves to {real}, outside the cgroup root {self.path} "
                "(a symlink in the tree?)"
            )
        return path

    def file(self, rel: str, filename: str, *, strict: bool = True) -> str:
        """Absolute path of interface file ``filename`` of cgroup ``rel``."""
        return os.path.join(self.resolve(rel, strict=strict), check_filename(filename))

    def rel_of(self, abs_path: str) -> str:
        """The rel of an absolute path beneath the root ("" for the root); UnsafePath otherwise."""
        if not isinstance(abs_path, str) or not os.path.isabs(abs_path) or "\0" in abs_path:
            raise UnsafePath(f"{abs_path!r} is not an absolute path")
        norm = os.path.normpath(abs_path)
        if norm == self.path:
            return ""
        prefix = self.path.rstrip("/") + "/"
        if not norm.startswith(prefix):
            raise UnsafePath(f"{abs_path} is not beneath the cgroup root {self.path}")
        rel = norm[len(prefix) :]
        split_rel(rel, strict=False)
        return rel


def check_filename(filename: str) -> str:
    """An interface file name: one plain component (e.g. "memory.max"), never a path."""
    if (
        not isinstance(filename, str)
        or filename in ("", ".", "..")
        or "/" in filename
        or "\0" in filename
    ):
        raise UnsafePath(f"{filename!r} is not a cgroup interface file name (e.g. 'memory.max')")
    return filename


def request_rel(rel: object, *, allow_root: bool = False) -> str:
    """A cgroup path received in a request (API body, query, CLI), checked before any write.

    It must be a string relative to the agent's root ("workloads/web"): a leading "/" is
    refused rather than stripped (someone who sends "/sys/fs/cgroup/x" meant a host path),
    and so are ".", ".." and empty components, NUL and newlines. The root itself ("") only
    with ``allow_root``: freezing or killing it would reach every workload and possibly the
    agent. Resolving the result (CgroupRoot.resolve) then refuses a symlink leading out.
    """
    if not isinstance(rel, str):
        raise UnsafePath(f"cgroup path must be a string, got {type(rel).__name__}")
    if rel.startswith("/"):
        raise UnsafePath(
            f"cgroup path {rel!r} is absolute: give it relative to the agent's cgroup root, "
            "as `pystats stats` lists it (e.g. 'workloads/web')"
        )
    parts = split_rel(rel, strict=False)
    if not parts and not allow_root:
        raise UnsafePath("refusing to act on the agent's cgroup root itself: name a cgroup below")
    if rel != "/".join(parts):
        raise UnsafePath(f"cgroup path {rel!r} is not in canonical form: use {'/'.join(parts)!r}")
    return rel


def join_rel(parent: str, name: str) -> str:
    """The rel of child ``name`` of cgroup ``parent``."""
    parent = parent.strip("/")
    return f"{parent}/{name}" if parent else name
