"""Live view (`pystats` with no command) and `pystats stats`. Placeholder until the TUI lands."""

from __future__ import annotations

import argparse
from typing import Any


def register(parser: argparse.ArgumentParser, sub: Any) -> None:
    parser.add_argument("--root", help="cgroup root to show (default: the cgroup2 mount)")


def default_handler(args: argparse.Namespace) -> int:
    print("the live view is not built yet; see `pystats --help`")
    return 1
