"""A workload's (or network's, pod's) name: its rule alone, so the CLI checks a name with `re`
only (workloads.runtime.values brings dataclasses and its inspect/ast chain, 14 modules)."""

from __future__ import annotations

import re

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
