"""pytest plugin (entry point ``pytest11``): scenario files as tests.

``pytest scenarios/`` collects every YAML file with a top-level ``expect:`` as one test item
per policy it has expectations for (``basic_cow.yaml::v5.7``), runs that search, and fails
the item when a verdict is not the expected one; the failure message is the shortest
counterexample (or, for a violation that was expected but not found, the search's bound).
``-k`` selects by file, scenario or policy name, ``-x`` stops at the first failure. A
scenario file that does not load is one failing item with mmcheck's one-line error.
"""

from __future__ import annotations

import re

import pytest

_EXPECT = re.compile(r"^expect\s*:", re.MULTILINE)


def pytest_collect_file(parent, file_path):
    if file_path.suffix in (".yaml", ".yml"):
        try:
            text = file_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        if _EXPECT.search(text):
            return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self):
        from .errors import ScenarioError
        from .scenario.loader import load_scenario

        try:
            sc = load_scenario(str(self.path))
        except ScenarioError as e:
            yield BrokenScenario.from_parent(self, name="load", message=str(e))
            return
        seen = []
        for e in sc.expect:
            if e.policy not in seen:
                seen.append(e.policy)
        for policy in seen:
            yield PolicyItem.from_parent(self, name=policy, scenario=sc, policy=policy)


class UnexpectedVerdicts(Exception):
    """The verdicts of one search that were not the expected ones."""


class PolicyItem(pytest.Item):
    def __init__(self, *, scenario, policy, **kw):
        super().__init__(**kw)
        self.scenario, self.policy = scenario, policy
        self.add_marker(pytest.mark.mmcheck)

    def runtest(self):
        from .report.runner import run_policy

        run = run_policy(self.scenario, self.policy)
        bad = [v for v in run.verdicts if v.unexpected]
        if bad:
            raise UnexpectedVerdicts(run, bad)

    def repr_failure(self, excinfo):
        if not isinstance(excinfo.value, UnexpectedVerdicts):
            return super().repr_failure(excinfo)
        from .report.render import text_trace

        run, bad = excinfo.value.args
        lines = []
        for v in bad:
            got = v.verdict + (f" at depth {v.depth}" if v.depth is not None else "")
            lines.append(f"{self.scenario.path} under {self.policy}: {v.name} expected "
                         f"{v.expected}, got {got}")
            if v.trace is not None:
                lines += [f"  {v.reason}", text_trace(v.trace)]
            elif not run.complete:
                lines.append(f"  (the search was bounded by {run.bounded_by} at depth "
                             f"{run.depth}, {run.states:,} states)")
        return "\n".join(lines)

    def reportinfo(self):
        return self.path, None, f"{self.scenario.name} [{self.policy}]"


class BrokenScenario(pytest.Item):
    def __init__(self, *, message, **kw):
        super().__init__(**kw)
        self.message = message

    def runtest(self):
        raise UnexpectedVerdicts(self.message)

    def repr_failure(self, excinfo):
        return self.message

    def reportinfo(self):
        return self.path, None, "scenario file"


def pytest_configure(config):
    config.addinivalue_line("markers", "mmcheck: a scenario file's expectations under one "
                                       "policy (mmcheck's pytest plugin)")
