"""The fuzzer in the suite (issue 14): a fixed-seed run over mutated scenario, policy and
trace files plus ~100 command lines; every input is accepted (and a bounded search of an
accepted scenario runs cleanly) or refused with mmcheck's own one-line error.  The long
run (>= 100,000 inputs) is `python -m mmcheck.fuzzing --record docs/fuzzing.md`."""

from __future__ import annotations

from mmcheck import fuzzing


def test_fixed_seed_fuzz_run_has_no_crash(tmp_path):
    report = fuzzing.fuzz(inputs=14000, seed=20261130, run_share=0.2, cli_every=140,
                          workdir=str(tmp_path))
    assert report.counts["cli"], "no command line was tried"
    assert sum(report.counts["cli"].values()) >= 95
    # the mutants reach every layer, not only the YAML parser
    assert report.counts["scenario"].get("loaded", 0) > 100
    assert report.counts["search"].get("ran", 0) > 20
    assert report.counts["trace"].get("replayed", 0) > 10
    assert not report.crashes, "\n\n".join(f"{t}: {w}\n{tb}\ninput:\n{text}"
                                           for t, w, tb, text in report.crashes[:3])


def test_the_fuzzer_reports_a_crash():
    """A checker that raises something else than mmcheck's own errors is a crash."""
    report = fuzzing.Report()
    fuzzing._guard("scenario", "x", report, lambda: {}["missing"])
    assert report.crashes and report.crashes[0][1].startswith("KeyError")
