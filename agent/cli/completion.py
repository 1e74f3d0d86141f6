"""`pystats completion bash|zsh|fish`: shell completion generated from the parser by shtab.

    pystats completion bash > /usr/share/bash-completion/completions/pystats
    pystats completion --install          # all three, into the system's completion folders

Workload NAME arguments complete from `pystats ps -aq` (bash and zsh).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

SHELLS = ("bash", "zsh", "fish")
INSTALL_PATHS = {
    "bash": "share/bash-completion/completions/pystats",
    "zsh": "share/zsh/vendor-completions/_pystats",
    "fish": "share/fish/vendor_completions.d/pystats.fish",
}
PREAMBLE = {
    "bash": '_pystats_names() {\n  compgen -W "$(pystats ps -aq 2>/dev/null)" -- "$1"\n}\n',
    "zsh": "_pystats_names() {\n"
    "  local -a names\n"
    '  names=(${(f)"$(pystats ps -aq 2>/dev/null)"})\n'
    "  _describe workload names\n"
    "}\n",
}
NAME_COMPLETE = {"bash": "_pystats_names", "zsh": "_pystats_names"}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "completion",
        help="print (or --install) shell completion for bash, zsh or fish",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("shell", nargs="?", choices=SHELLS)
    p.add_argument(
        "--install",
        action="store_true",
        help="write all three into PREFIX/share's completion folders",
    )
    p.add_argument("--prefix", default="/usr", help="for --install (default /usr)")
    p.set_defaults(func=cmd_completion)


def _mark_names(parser: argparse.ArgumentParser) -> None:
    """Workload-name positionals complete from the agent's list."""
    from agent.argv import walk_actions

    for action in walk_actions(parser):
        if not action.option_strings and action.dest in ("name", "names"):
            action.complete = NAME_COMPLETE  # type: ignore[attr-defined]


def script(shell: str) -> str:
    import shtab

    from agent.cli import build_parser

    parser = build_parser()
    _mark_names(parser)
    return str(shtab.complete(parser, shell, preamble=PREAMBLE.get(shell, "")))


def cmd_completion(args: argparse.Namespace) -> int:
    try:
        import shtab  # noqa: F401
    except ImportError:
        print("pystats: error: completion needs shtab (pip install shtab)", file=sys.stderr)
        return 1
    if args.install:
        for shell, rel in INSTALL_PATHS.items():
            path = os.path.join(args.prefix, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(script(shell))
            os.replace(tmp, path)
            print(path)
        return 0
    if args.shell is None:
        from agent.cli.common import usage_error

        return usage_error(args, "name a shell (bash, zsh, fish) or --install")
    sys.stdout.write(script(args.shell))
    return 0
