"""Generated documentation stays in step with the code and the verdicts."""

from __future__ import annotations

from click.testing import CliRunner

from mmcheck.report import docgen
from mmcheck.cli import main


def test_generated_doc_sections_are_fresh():
    assert docgen.main(["--check"]) == 0, "run python -m mmcheck.report.docgen"


SCRIPTED = ["scenarios/classics", "scenarios/anon", "scenarios/shared", "scenarios/cow",
            "scenarios/paths", "scenarios/uffd"]


def test_verdict_tables_are_fresh():
    r = CliRunner().invoke(main, ["table", "scenarios/classics", "--update", "README.md",
                                  "--check"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["table", *SCRIPTED, "--differences",
                                  "--update", "docs/verdicts.md", "--check"])
    assert r.exit_code == 0, r.output


def test_readme_starts_with_setup_and_test_commands():
    text = open("README.md").read()
    blocks = [b.split("\n", 1)[1] for b in text.split("```sh")[1:3]]
    assert "apt-get install -y graphviz" in blocks[0] and "mmcheck run scenarios/" in blocks[0]
    assert "pytest" in blocks[1]
    ci = open(".ci/run").read()
    assert ".venv/bin/python -m pytest -q" in ci and ".venv/bin/python -m pytest -q" in blocks[1]
