"""Generate the dashboards' JSON: ``python -m dashboards.build [--check] [--out DIR]``.

The JSON in dashboards/json/ is checked in (import it into Grafana, or provision the folder);
tests/unit/test_dashboards_build.py fails when it differs from what this module generates.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import agent, cgroup, overview

JSON_DIR = Path(__file__).parent / "json"
# file name -> builder; listed by hand, never discovered.
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "pystats-overview.json": overview.build,
    "pystats-cgroup.json": cgroup.build,
    "pystats-agent.json": agent.build,
}


def render(build: Callable[[], Dashboard]) -> str:
    """The dashboard as stable JSON text (sorted keys, two-space indent, final newline)."""
    model = build().build()
    return json.dumps(model, cls=JSONEncoder, sort_keys=True, indent=2) + "\n"


def generate() -> dict[str, str]:
    return {name: render(build) for name, build in DASHBOARDS.items()}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dashboards.build", description=__doc__)
    p.add_argument("--out", type=Path, default=JSON_DIR, help="output folder (%(default)s)")
    p.add_argument("--check", action="store_true", help="only report files that are out of date")
    args = p.parse_args(argv)
    stale = []
    for name, text in generate().items():
        path = args.out / name
        if path.exists() and path.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.check and stale:
        print(f"out of date: {', '.join(stale)} (run python -m dashboards.build)", file=sys.stderr)
        return 1
    for name in stale:
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
