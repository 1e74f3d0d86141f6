"""The policy file's problems as users read them: one check for the agent's start, SIGHUP and
``--check-config``."""

from __future__ import annotations


def policy_problems(path: str) -> list[str]:
    """Every problem of the policy in ``path`` as ``FILE:LINE:COL: message``; [] if it is valid."""
    from policies.validate import check_file  # YAML and the schema load only for a policy

    _policy, errors = check_file(path)
    return [str(e) for e in errors]
