"""`pystats-agent`: parse flags, load and check the configuration, set up logging, run."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.config import AgentConfig

DESCRIPTION = """\
The pystats agent: collects every cgroup's state, serves Prometheus /metrics, places processes
by policy, and launches and supervises workloads. Runs in the foreground; under systemd use
deploy/systemd/pystats-agent.service (Type=notify, Delegate=yes).

Signals: SIGTERM/SIGINT stop cleanly (workloads keep running in their supervisors);
SIGHUP re-reads this configuration and the policy: an invalid file is rejected and the previous
one stays in force; log_level, policy, reconcile_interval and memory_budget apply at once, other
changes are logged as waiting for a restart.
Exit status: 0 clean stop, 1 a part failed, 2 invalid configuration or flags.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pystats-agent",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-c", "--config", help="configuration file (default /etc/pystats/agent.yaml if present)"
    )
    p.add_argument(
        "--check-config",
        action="store_true",
        help="validate the configuration (and policy), print what the agent would use, and exit",
    )
    p.add_argument("--root", help="the agent's writable cgroup (overrides `root:`)")
    p.add_argument("--collect-root", help="cgroup tree to monitor (overrides `collect_root:`)")
    p.add_argument("--state-dir", help="state directory (overrides `state_dir:`)")
    p.add_argument("--socket", help="API Unix socket path (overrides `socket:`)")
    p.add_argument("--metrics-listen", help="HOST:PORT for /metrics (overrides `metrics_listen:`)")
    p.add_argument("--policy", help="policy YAML file (overrides `policy:`)")
    p.add_argument("--interval", help="collection interval, e.g. 1s or 500ms")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    return p


def _load(args: argparse.Namespace) -> AgentConfig:
    """The config file with the flags over it, each flag checked as its setting would be;
    ConfigError lists every problem."""
    from agent.config import KEYS, ConfigError, load_config

    cfg = load_config(args.config)
    flags = {  # setting -> flag value
        "root": args.root,
        "collect_root": args.collect_root,
        "state_dir": args.state_dir,
        "socket": args.socket,
        "metrics_listen": args.metrics_listen,
        "policy": args.policy,
        "log_level": args.log_level,
        "interval": args.interval,
    }
    values: dict[str, Any] = {}
    errors: list[str] = []
    for key, raw in flags.items():
        if raw is None:
            continue
        name, convert = KEYS[key]
        try:
            values[name] = convert(raw)
        except (ValueError, TypeError) as e:
            errors.append(f"--{key.replace('_', '-')}: {e}")
    if errors:
        raise ConfigError(errors)
    return replace(cfg, **values)


def main(argv: Sequence[str] | None = None) -> int:
    from agent.argv import join_negative_values, value_options

    parser = build_parser()
    raw = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(join_negative_values(raw, value_options(parser)))
    from agent.config import ConfigError

    try:
        cfg = _load(args)
    except ConfigError as e:
        for line in e.errors:
            print(line, file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"pystats-agent: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=cfg.log_level.upper(),
        stream=sys.stderr,
        # journald adds its own timestamps; <N> prefixes give it the level.
        format="<%(levelno_sd)s>%(name)s: %(message)s"
        if os.environ.get("JOURNAL_STREAM")
        else "%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _install_sd_levels()
    if args.check_config:
        from agent.checkconfig import check

        return check(cfg)
    if cfg.policy is not None and _policy_rejected(cfg.policy):
        return 2
    from agent.daemon import Agent
    from cgroupfs.reader import raise_fd_limit

    raise_fd_limit()  # the collector keeps fds open per cgroup file: as many as allowed
    try:
        return asyncio.run(Agent(cfg, reread=lambda: _load(args)).run())
    except KeyboardInterrupt:
        return 0
    except Exception as e:  # start-up errors (root not usable...) are the user's to fix
        from agent.api.access import AccessError
        from agent.pidlock import AlreadyRunning
        from agent.rootsetup import RootError
        from cgroupfs.errors import CgroupError

        if isinstance(e, RootError | CgroupError | OSError | AlreadyRunning | AccessError):
            logging.getLogger("pystats.agent").error("cannot start: %s", e)
            return 2
        raise


def _policy_rejected(path: str) -> bool:
    """A policy that does not validate stops the start, as a bad configuration does (running
    without it would leave its cgroups unplaced and unlimited with nothing said)."""
    from agent.policycheck import policy_problems

    problems = policy_problems(path)
    for problem in problems:
        print(f"pystats-agent: {problem}", file=sys.stderr)
    return bool(problems)


def _install_sd_levels() -> None:
    sd = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3}
    old = logging.getLogRecordFactory()

    def factory(*a: object, **kw: object) -> logging.LogRecord:
        rec = old(*a, **kw)
        rec.levelno_sd = sd.get(rec.levelno, 2)
        return rec

    logging.setLogRecordFactory(factory)


if __name__ == "__main__":
    sys.exit(main())
