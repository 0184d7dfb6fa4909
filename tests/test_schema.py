"""Tests for mmcheck.schema: the generated JSON Schemas accept what the loader accepts (for the
structural part), reject some bad files, and the committed docs/*.schema.json are fresh."""

from __future__ import annotations

import copy
import glob
import os
import textwrap

import pytest
import yaml

from mmcheck.scenario import json_schema as schema
from mmcheck.scenario.ops import OPS

try:
    from test_loader import POLICY_TEXT, VALID_SCENARIO
except ImportError:  # pragma: no cover - tests/ imported as a package
    from tests.test_loader import POLICY_TEXT, VALID_SCENARIO

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "docs")

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def scenario_validator():
    s = schema.scenario_schema()
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)


@pytest.fixture(scope="module")
def policy_validator():
    s = schema.policy_file_schema()
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)


def errors(validator, doc):
    return sorted(e.message for e in validator.iter_errors(doc))


def test_committed_schemas_are_fresh():
    for fname, make in schema.SCHEMA_FILES.items():
        path = os.path.join(DOCS, fname)
        with open(path, encoding="utf-8") as fh:
            assert fh.read() == schema.render(make()), \
                f"{path} is stale: run `python -m mmcheck.scenario.json_schema`"


def test_main_check_and_write(tmp_path, capsys):
    assert schema.main(["--check"]) == 0
    out = str(tmp_path / "out")
    assert schema.main(["--check", "--out-dir", out]) == 1
    assert schema.main(["--out-dir", out]) == 0
    assert sorted(os.listdir(out)) == sorted(schema.SCHEMA_FILES)
    assert schema.main(["--check", "--out-dir", out]) == 0


def test_valid_scenario(scenario_validator):
    assert errors(scenario_validator, yaml.safe_load(VALID_SCENARIO)) == []


def test_minimal_scenario(scenario_validator):
    doc = yaml.safe_load("name: n\npages: {X: none}\nprocesses: {A: {program: [exit]}}\n")
    assert errors(scenario_validator, doc) == []


def test_every_op_example_validates():
    sch = schema.scenario_schema()
    op_validator = jsonschema.Draft202012Validator(
        {"$schema": sch["$schema"], "$defs": sch["$defs"], "$ref": "#/$defs/op"})
    for name, spec in OPS.items():
        (item,) = yaml.safe_load(spec.example)
        assert errors(op_validator, item) == [], name


SCENARIO_FILES = sorted(glob.glob(os.path.join(REPO, "scenarios", "**", "*.yaml"), recursive=True))


@pytest.mark.skipif(not SCENARIO_FILES, reason="no scenarios/**/*.yaml in the repository")
@pytest.mark.parametrize("path", SCENARIO_FILES,
                         ids=[os.path.relpath(p, REPO) for p in SCENARIO_FILES])
def test_repo_scenarios_validate(scenario_validator, path):
    with open(path, encoding="utf-8") as fh:
        assert errors(scenario_validator, yaml.safe_load(fh)) == []


def _mutate(fn):
    doc = yaml.safe_load(VALID_SCENARIO)
    fn(doc)
    return doc


def _main(doc):
    return doc["processes"]["A"]["threads"]["main"]


INVALID = {
    "unknown-top-key": lambda d: d.update(nmae="x"),
    "missing-pages": lambda d: d.pop("pages"),
    "no-pages": lambda d: d.update(pages={}),
    "bad-page-state": lambda d: d["pages"].update(X="presnt"),
    "bad-page-name": lambda d: d["pages"].update({"1X": "none"}),
    "unknown-op": lambda d: _main(d).append({"wirte": "X"}),
    "non-bare-op-as-string": lambda d: _main(d).append("write"),
    "op-two-keys": lambda d: _main(d).append({"fork": None, "child": "B"}),
    "missing-field": lambda d: _main(d).append({"gup": {"page": "X", "as": "R"}}),
    "unknown-field": lambda d: _main(d).append({"gup": {"page": "X", "as": "R", "type": "pin",
                                                        "acess": "write"}}),
    "bool-type": lambda d: _main(d).append({"gup": {"page": "X", "as": "R", "type": "pin",
                                                    "longterm": 1}}),
    "choice": lambda d: _main(d).append({"mprotect": {"page": "X", "prot": "rwx"}}),
    "alias-fixed-field": lambda d: _main(d).append({"vmsplice": {"page": "X", "as": "p",
                                                                 "type": "pin"}}),
    "no-short-form": lambda d: _main(d).append({"mprotect": "X"}),
    "fork-both-forms": lambda d: _main(d).append({"fork": {"child": "Q", "program": [],
                                                           "threads": {"main": []}}}),
    "process-both-forms": lambda d: d["processes"]["E"].update(threads={"main": []}),
    "process-neither": lambda d: d["processes"].update(F={}),
    "bad-verdict": lambda d: d["expect"]["v5.7"].update({"no-leak": "violate"}),
    "unknown-property": lambda d: d.update(properties=["no-lek"]),
    "unknown-knob": lambda d: d["define_policies"]["precise-mapcount"]["knobs"].update(x=1),
    "bad-knob-value": lambda d: d["define_policies"]["precise-mapcount"]["knobs"].update(
        wp_reuse="pagecount"),
    "shadow-preset": lambda d: d["define_policies"].update({"v5.7": {"base": "v5.9"}}),
    "depth-zero": lambda d: d.update(depth=0),
    "depth-bool": lambda d: d.update(depth=True),
    "max-states-string": lambda d: d.update(max_states="10"),
}


@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_scenarios_rejected(scenario_validator, name):
    doc = _mutate(INVALID[name])
    assert errors(scenario_validator, doc), name


def test_policy_file_schema(policy_validator):
    doc = yaml.safe_load(POLICY_TEXT)
    assert errors(policy_validator, doc) == []
    assert errors(policy_validator, copy.deepcopy(doc["define_policies"])) == []
    bad = [
        {},
        {"define_policies": doc["define_policies"], "policies": ["x"]},
        {"mine": {"knobs": {}}},
        {"mine": {"base": "v5.7", "knobs": {"wp_reuse": "nope"}}},
        {"v5.9": {"base": "v5.7"}},
        yaml.safe_load(textwrap.dedent("""\
            define_policies:
              mine: {base: v5.7, colour: red}
            """)),
    ]
    for doc in bad:
        assert errors(policy_validator, doc), doc
