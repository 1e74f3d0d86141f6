"""A YAML syntax error in the agent's configuration or a policy names FILE:LINE:COL and, for
the mistakes people make by hand, what they most likely mean."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import ConfigError, parse_config
from policies.validate import check_file


@pytest.mark.parametrize(
    ("text", "where", "hint"),
    [
        ("\troot: auto\n", "a.yaml:1:1:", "YAML indents with spaces, not tabs"),
        ("root: /x\n  state_dir: /y\n", "a.yaml:2:12:", "a line indented too far"),
        ("root /x\nsocket: /y\n", "a.yaml:2:7:", "a line above without its ':'"),
        ('root: "/x\nsocket: /y\n', "a.yaml:3:1:", "a quote opened and never closed"),
    ],
)
def test_a_config_syntax_error_says_where_and_what_it_likely_is(
    text: str, where: str, hint: str
) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text, "a.yaml")
    (msg,) = e.value.errors
    assert msg.startswith(f"{where} YAML: ") and hint in msg and msg.endswith(")"), msg


def test_a_policy_indented_wrong_gets_the_same_hint(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\ngroups:\n  - name: g\n   match:\n      - comm: x\n")
    _policy, errors = check_file(str(path))
    assert [str(e) for e in errors] == [
        f"{path}:4:4: YAML: while parsing a block collection: expected <block end>, but found "
        "'<block mapping start>' (this line's indentation matches none of the lines above it)"
    ]
