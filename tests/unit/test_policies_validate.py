"""Policy validation: a corpus of broken policies with their exact FILE:LINE:COL messages, the
examples pass, and no input of any shape raises anything but a ValidationError list."""

from __future__ import annotations

import glob
import os

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.schema import IMPLICIT_LEAF
from policies.validate import check_file, check_text
from policies.yamlpos import ValidationError, YMap, YScalar, load_with_positions

HERE = os.path.dirname(__file__)
CORPUS = sorted(glob.glob(os.path.join(HERE, "fixtures_policies", "*.yaml")))
EXAMPLES = sorted(glob.glob(os.path.join(HERE, "..", "..", "policies", "examples", "*.yaml")))


def _expected(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [
            f"{path}:{line.split('# expect: ', 1)[1].rstrip(chr(10))}"
            for line in f
            if line.startswith("# expect: ")
        ]


def test_corpus_is_not_empty() -> None:
    assert len(CORPUS) >= 20


@pytest.mark.parametrize("path", CORPUS, ids=os.path.basename)
def test_broken_policy_reports_exact_errors(path: str) -> None:
    want = _expected(path)
    assert want, f"{path} has no '# expect:' line"
    policy, errors = check_file(path)
    assert policy is None
    assert [str(e) for e in errors] == want


def test_binary_garbage_is_one_positioned_error() -> None:
    path = os.path.join(HERE, "fixtures_policies", "binary.bin")
    policy, errors = check_file(path)
    assert policy is None
    assert [str(e) for e in errors] == [f"{path}:1:1: not UTF-8 text (byte 0xff): is this YAML?"]


def test_missing_file_is_an_error_not_a_traceback() -> None:
    policy, errors = check_file("/nonexistent/policy.yaml")
    assert policy is None
    assert str(errors[0]).startswith("/nonexistent/policy.yaml:1:1: cannot read the file")


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_examples_are_valid(path: str) -> None:
    policy, errors = check_file(path)
    assert errors == []
    assert policy is not None and policy.all_groups()


def test_units_and_structure_of_a_valid_policy() -> None:
    text = """
exclude: [{comm: sshd}]
groups:
  - name: build
    limits:
      cpu.max: 1.5
      memory.max: 512MiB
      memory.high: 1000000
      io.weight: 50
      pids.max: max
    match:
      - {comm: [make, ninja], user: builder}
    children:
      - name: ci
        limits: {cpu.max: "50%", memory.min: 1G}
        sticky: yes
        match: [{cmdline: 'pytest\\b'}]
  - name: raw
    limits: {cpu.max: "20000 50000"}
"""
    policy, errors = check_text(text, "t.yaml")
    assert errors == []
    assert policy is not None
    build, ci, raw = policy.all_groups()
    assert build.limits.as_dict() == {
        "cpu.max": "150000 100000",
        "memory.max": str(512 << 20),
        "memory.high": str(1000000 // 4096 * 4096),  # rounded down to pages, as the kernel does
        "io.weight": "default 50",
        "pids.max": "max",
    }
    assert ci.path == "build/ci" and ci.sticky
    assert ci.limits.as_dict()["cpu.max"] == "50000 100000"  # 50% of one core
    assert build.leaf == f"build/{IMPLICIT_LEAF}" and ci.leaf == "build/ci"
    assert raw.limits.as_dict() == {"cpu.max": "20000 50000"}
    assert [g.path for g in policy.match_order()] == ["build/ci", "build", "raw"]
    assert build.match[0].comm == ("make", "ninja") and build.match[0].user == ("builder",)


def test_yaml_positions_are_one_based() -> None:
    tree = load_with_positions("a: 1\nbb:\n  c: x\n", "f")
    assert isinstance(tree, YMap)
    (ka, va), (kb, vb) = tree.items
    assert (kb.line, kb.col) == (2, 1)
    assert (ka.line, ka.col, va.line, va.col) == (1, 1, 1, 4)
    assert isinstance(vb, YMap)
    kc, vc = vb.items[0]
    assert (kc.line, kc.col) == (3, 3) and isinstance(vc, YScalar) and vc.text == "x"


def test_validation_error_str() -> None:
    assert str(ValidationError("p.yaml", 3, 7, "bad")) == "p.yaml:3:7: bad"


# -- never anything but validation errors -------------------------------------------------------

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["512M", "1.5", "50%", "max", "..", "a/b", "(", "[x", "memory.max", "_"]),
)
_keys = st.sampled_from(
    [
        "groups",
        "name",
        "limits",
        "match",
        "exclude",
        "children",
        "sticky",
        "version",
        "comm",
        "cmdline",
        "uid",
        "user",
        "memory.max",
        "memory.min",
        "cpu.max",
        "cpu.weight",
        "pids.max",
        "io.weight",
        "exe",
        "cgroup",
        "parent",
        "gid",
        "grop",
        "memory.swap.max",
    ]
)
_doc = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=5)),
    max_leaves=30,
)


def _checked(data: bytes | str) -> None:
    policy, errors = check_text(data, "h.yaml")
    assert (policy is None) == bool(errors)
    for e in errors:
        assert isinstance(e, ValidationError)
        assert str(e).startswith("h.yaml:") and e.line >= 1 and e.col >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_doc)
def test_structured_documents_never_raise(doc: object) -> None:
    _checked(yaml.safe_dump(doc))


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("ab:-[]{}&*!|>#'\"\n %@`,?.\t\\0\x00\x85\ufeff")), max_size=80
    )
)
def test_yaml_like_text_never_raises(text: str) -> None:
    _checked(text)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_binary_never_raises(data: bytes) -> None:
    _checked(data)


def test_deep_nesting_and_size_limits() -> None:
    _checked("[" * 5000 + "]" * 5000)
    _checked("a: " + "x" * (2 << 20))
    _checked("a: &a [*a]\ngroups: *a\n")
