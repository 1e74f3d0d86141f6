"""`pystats-agent`: the daemon's entry point. Placeholder until the daemon lands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pystats-agent", description="pystats agent daemon")
    parser.parse_args(argv)
    print("pystats-agent: not built yet", file=sys.stderr)
    return 1
