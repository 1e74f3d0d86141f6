"""`pystats pull/load/images/rmi/image prune`, and the image part of `pystats run`.

Only argparse at import time; the handlers import the small client (agent.api.wire).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from agent.api.socketpath import SOCKET_HELP
from agent.cli.common import confirmed

RUN_EPILOG = (
    "Images: `pystats run [OPTIONS] IMAGE [CMD [ARG...]]` runs CMD (default: the image's "
    "Entrypoint and Cmd, as docker) on an overlayfs snapshot of IMAGE, pulled first if missing; "
    "everything after IMAGE is the command, flags included (pystats run -d --name web busybox "
    "httpd -f -p 80). `pystats run [OPTIONS] -- CMD [ARG...]` runs without an image (the "
    "host's / read-only, or --rootfs)."
)


def _socket_default() -> str:
    from agent.api.socketpath import default_socket

    return default_socket()


def _add_socket(p: argparse.ArgumentParser) -> None:
    p.add_argument("--socket", default=_socket_default(), help=SOCKET_HELP)


def _add_registry(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
        help="talk plain HTTP to this registry (default: HTTPS only)",
    )  # fmt: skip
    p.add_argument(
        "--authfile",
        default=os.environ.get("REGISTRY_AUTH_FILE") or os.path.expanduser("~/.docker/config.json"),
        help="registry credentials, docker's config.json format (default: $REGISTRY_AUTH_FILE "
        "or ~/.docker/config.json)",
    )


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """`pystats run`'s image flags."""
    p.epilog = RUN_EPILOG
    g = p.add_argument_group("images")
    g.add_argument("--image", metavar="IMAGE", help="the image (else the first word after the "
                   "options, unless it is --)")  # fmt: skip
    g.add_argument("--entrypoint", metavar="CMD", help="replace the image's Entrypoint (and "
                   "drop its Cmd); '' clears it")  # fmt: skip
    g.add_argument(
        "-u", "--user", metavar="USER[:GROUP]",
        help="the user inside: names from the image's /etc/passwd and /etc/group (without an"
        " image: --rootfs's, or the host's); numeric ids need no entry",
    )  # fmt: skip
    g.add_argument(
        "--group-add", action="append", default=[], metavar="GROUP",
        help="another supplementary group (a name there, or a gid); repeatable",
    )  # fmt: skip
    g.add_argument(
        "--pull", choices=("missing", "always", "never"), default="missing",
        help="pull the image before running (default: when missing)",
    )  # fmt: skip
    _add_registry(g)  # type: ignore[arg-type]


def split_run_args(args: argparse.Namespace) -> tuple[list[str], dict[str, Any]]:
    """(argv, the request's image fields) from `run`'s words: IMAGE [CMD...], or -- CMD..."""
    cmd = list(args.cmd)
    image = getattr(args, "image", None)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    elif image is None and cmd and not cmd[0].startswith("-"):
        image, cmd = cmd[0], cmd[1:]
    if cmd and cmd[0].startswith("-") and image is None:
        raise ValueError(f"unknown option {cmd[0]!r} (put the command after --)")
    if image is None:
        if not cmd:
            raise ValueError(
                "no command given: pystats run [OPTIONS] IMAGE [CMD...] or -- CMD [ARG...]"
            )
        if getattr(args, "entrypoint", None) is not None:
            raise ValueError("--entrypoint needs an image")
        return cmd, _user_body(args)
    if image.startswith("-"):
        raise ValueError(f"unknown option {image!r}")
    if getattr(args, "rootfs", None):
        raise ValueError("--rootfs and an image exclude each other (a command goes after --)")
    extra: dict[str, Any] = {"image": image}
    if args.entrypoint is not None:
        extra["entrypoint"] = [args.entrypoint] if args.entrypoint else []
    return cmd, {**extra, **_user_body(args)}


def _user_body(args: argparse.Namespace) -> dict[str, Any]:
    """-u and --group-add: resolved by the agent in the image or the rootfs."""
    out: dict[str, Any] = {}
    if getattr(args, "user", None):
        out["user"] = args.user
    if getattr(args, "group_add", None):
        out["group_add"] = list(args.group_add)
    return out


def register(sub: Any) -> None:
    p = sub.add_parser("pull", help="fetch an image from a registry")
    p.add_argument("ref", metavar="IMAGE", help="e.g. busybox, localhost:5000/app:1")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
    _add_registry(p)
    _add_socket(p)
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("load", help="load images from a docker-save or OCI archive or layout")
    p.add_argument("-i", "--input", required=True, metavar="PATH",
                   help="a tar archive (docker save, OCI) or an OCI layout directory")  # fmt: skip
    p.add_argument("--tag", help="name for an image the archive leaves unnamed")
    _add_socket(p)
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("images", help="list images and their disk usage")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="print only ids")
    _add_socket(p)
    p.set_defaults(func=cmd_images)

    p = sub.add_parser("rmi", help="remove images (refused while a workload uses one)")
    p.add_argument("refs", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--force", action="store_true", help="remove an image of several names")
    _add_socket(p)
    p.set_defaults(func=cmd_rmi)

    p = sub.add_parser("image", help="image housekeeping")
    isub = p.add_subparsers(dest="image_command", metavar="COMMAND", required=True)
    q = isub.add_parser("prune", help="remove unnamed unused images and unreferenced layers")
    q.add_argument("-a", "--all", action="store_true", help="every image no workload uses")
    q.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    _add_socket(q)
    q.set_defaults(func=cmd_prune)
    q = isub.add_parser("inspect", help="an image's record and config as JSON")
    q.add_argument("ref", metavar="IMAGE")
    _add_socket(q)
    q.set_defaults(func=cmd_image_inspect)


def _err(msg: str) -> None:
    print(f"pystats: error: {msg}", file=sys.stderr)


def _client(args: argparse.Namespace) -> Any:
    from agent.api.image_client import ImageClient

    return ImageClient(args.socket, timeout=None)


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000
    return f"{n}"


def add_sizes(socket: str, rows: list[dict[str, Any]]) -> None:
    """`ps --size`: each row's size_rw (bytes in its snapshot's upper layer) and size_root_fs
    (those and its image's), as docker's SizeRw and SizeRootFs; None for a workload run
    without an image."""
    from agent.api.image_client import ImageClient

    usage = ImageClient(socket).usage()
    for r in rows:
        image = r.get("image") or {}
        if not image:
            r["size_rw"] = r["size_root_fs"] = None
            continue
        rw = usage["workloads"].get(r["name"]) or 0  # None: --read-only, nothing written
        r["size_rw"] = rw
        r["size_root_fs"] = rw + usage["images"].get(image.get("id"), 0)


def size_text(row: dict[str, Any]) -> str:
    """docker ps's SIZE column: "12B (virtual 4.3MB)"; "-" without an image."""
    if row.get("size_rw") is None:
        return "-"
    return f"{human(row['size_rw'])} (virtual {human(row['size_root_fs'])})"


def pull_body(args: argparse.Namespace, ref: str) -> dict[str, Any]:
    from agent.api.client import ApiError
    from workloads.images.auth import load_credentials
    from workloads.images.reference import BadReference, parse

    try:
        host = parse(ref).registry_host
    except BadReference as e:
        raise ApiError(400, str(e)) from None
    body: dict[str, Any] = {"ref": ref}
    if host in args.insecure_registry or parse(ref).domain in args.insecure_registry:
        body["insecure"] = True
    try:
        creds = load_credentials(args.authfile, host)
    except Exception as e:  # an unreadable credentials file: say so, no traceback
        raise ApiError(400, str(e)) from None
    if creds is not None:
        body["username"], body["password"] = creds.username, creds.password
    return body


class _Progress:
    """docker pull's per-layer lines: redrawn in place on a terminal, one per step else."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.order: list[str] = []
        self.lines: dict[str, str] = {}
        self.last = 0.0

    def show(self, item: dict[str, Any]) -> None:
        if self.quiet or "status" not in item:
            return
        key, status = item.get("id", ""), item["status"]
        text = f"{key}: {status}" if key else status
        if status == "Downloading" and item.get("total"):
            text += f" {human(item['current'])}/{human(item['total'])}"
        if not self.tty:
            if status != "Downloading" or item.get("current") == 0:
                print(text, file=sys.stderr)
            return
        if key not in self.lines:
            self.order.append(key)
        self.lines[key] = text
        now = time.monotonic()
        if status == "Downloading" and now - self.last < 0.1:
            return
        self.last = now
        up = len(self.order) - 1
        sys.stderr.write((f"\x1b[{up}A" if up > 0 else "") + "\r")
        sys.stderr.write("\n".join(f"\x1b[2K{self.lines[k]}" for k in self.order))
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty and self.order and not self.quiet:
            sys.stderr.write("\n")


def do_pull(args: argparse.Namespace, ref: str, quiet: bool = False) -> dict[str, Any]:
    client = _client(args)
    prog = _Progress(quiet)
    result: dict[str, Any] = {}
    try:
        for item in client.pull(pull_body(args, ref)):
            if "result" in item:
                result = item["result"]
            else:
                prog.show(item)
    finally:
        prog.done()
    return result


def cmd_pull(args: argparse.Namespace) -> int:
    from agent.api.client import ApiError

    try:
        result = do_pull(args, args.ref, args.quiet)
    except ApiError as e:
        _err(str(e))
        return 1
    print(result.get("id", "") if args.quiet else f"pulled {args.ref} ({result.get('id', '')})")
    return 0


def create_pulling(client: Any, args: argparse.Namespace, body: dict[str, Any]) -> Any:
    """`run`'s create: pull first (--pull always), or when the agent has no such image."""
    from agent.api.client import ApiError

    image = body.get("image")
    if image is None:
        return client.create(body)
    if args.pull == "always":
        do_pull(args, image)
    try:
        return client.create(body)
    except ApiError as e:
        if e.status != 404 or args.pull != "missing" or "no such image" not in str(e):
            raise
    print(f"Unable to find image '{image}' locally", file=sys.stderr)
    do_pull(args, image)
    return client.create(body)


def cmd_load(args: argparse.Namespace) -> int:
    from agent.api.client import ApiError

    body: dict[str, Any] = {"path": os.path.abspath(args.input)}
    if not os.path.exists(body["path"]):  # the agent reads it as root: say it here, plainly
        _err(f"load: {args.input}: no such file or directory")
        return 1
    if args.tag:
        body["tag"] = args.tag
    prog = _Progress(False)
    try:
        for item in _client(args).load(body):
            if "result" in item:
                for name in item["result"]["loaded"]:
                    print(f"Loaded image: {name}")
            else:
                prog.show(item)
    except ApiError as e:
        _err(str(e))
        return 1
    finally:
        prog.done()
    return 0


def _ago(ts: float) -> str:
    s = max(0.0, time.time() - ts)
    for unit, n in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if s >= n:
            return f"{int(s // n)} {unit} ago"
    return "just now"


def images_table(doc: dict[str, Any]) -> str:
    head = ("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "USED BY")
    rows = [head]
    for img in doc["images"]:
        names = img["names"] or ["<none>:<none>"]
        for name in names:
            repo, _, tag = name.rpartition(":")
            if "/" in tag:  # a port, not a tag
                repo, tag = name, "<none>"
            rows.append(
                (
                    repo,
                    tag,
                    img["id"].removeprefix("sha256:")[:12],
                    _ago(img["created_at"]),
                    human(img["size"]),
                    ",".join(img["used_by"]) or "-",
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    disk = doc.get("disk") or {}
    lines.append(
        f"total: {human(disk.get('layers', 0))} in layers, {human(disk.get('blobs', 0))} in blobs"
    )
    return "\n".join(lines)


def _simple(args: argparse.Namespace, action: str) -> int:
    import json

    from agent.api.client import ApiError

    client = _client(args)
    try:
        if action == "images":
            doc = client.images()
            if args.json:
                print(json.dumps(doc, indent=2))
            elif args.quiet:
                print("\n".join(i["id"] for i in doc["images"]))
            else:
                print(images_table(doc))
        elif action == "inspect":
            print(json.dumps(client.inspect_image(args.ref), indent=2))
        elif action == "prune":
            r = client.prune(all_=args.all)
            for d in r["deleted"]:
                print(f"Deleted: {d}")
            print(f"Total reclaimed space: {human(r['freed_bytes'])}")
        elif action == "rmi":
            failed = 0
            for ref in args.refs:
                try:
                    r = client.rmi(ref, force=args.force)
                except ApiError as e:
                    _err(str(e))
                    failed = 1
                    continue
                for n in r["untagged"]:
                    print(f"Untagged: {n}")
                for d in r["deleted"]:
                    print(f"Deleted: {d}")
            return failed
    except ApiError as e:
        _err(str(e))
        return 1
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    return _simple(args, "images")


def cmd_image_inspect(args: argparse.Namespace) -> int:
    return _simple(args, "inspect")


def cmd_prune(args: argparse.Namespace) -> int:
    what = "every image no workload uses" if args.all else "every unnamed image no workload uses"
    if not args.force and not confirmed(
        f"This removes {what}, and the layers only they held. Go on?", "image prune cancelled"
    ):
        return 0
    return _simple(args, "prune")


def cmd_rmi(args: argparse.Namespace) -> int:
    return _simple(args, "rmi")
