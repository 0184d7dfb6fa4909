"""Verdicts and expectations: the one place that decides whether a result is what a
scenario expects (used by `mmcheck run`, `compare` and `table`).

A property's verdict after a search: HOLDS (the search was complete and found no
violation), VIOLATED (a counterexample exists; its depth is the shortest), UNKNOWN (the
search was bounded and found nothing), or, across a compare range, INTERRUPTED.
"""

from __future__ import annotations

HOLDS, VIOLATED, UNKNOWN, INTERRUPTED = "holds", "violated", "unknown", "interrupted"
EXPECTABLE = (HOLDS, VIOLATED)


def unexpected(verdict: str, expected: str | None) -> bool:
    """A verdict contradicts an expectation.  A bounded search that found nothing is
    consistent with an expected "holds"."""
    if expected is None or (verdict == UNKNOWN and expected == HOLDS):
        return False
    return verdict != expected


def failure(verdict: str, expected: str | None) -> bool:
    """What makes `mmcheck run` exit 1: an unexpected verdict, or, without an expectation,
    a violation."""
    if expected is None:
        return verdict == VIOLATED
    return unexpected(verdict, expected)


def judge_range(status: str, expected: str | None, *, violation_depth=None, found_at=None,
                hi=None, bounded_by_states=False) -> tuple[bool, str]:
    """(ok, why not) of a property over a compare range of depth bounds.  Expectations are
    about complete runs: a violation at any bound contradicts "holds", and "violated" must
    be found somewhere in the range.  Without an expectation a violation is not ok (as in
    `mmcheck run`)."""
    if status == VIOLATED:
        if expected == VIOLATED:
            return True, ""
        return False, (f"violated at depth {violation_depth} (found with depth bound "
                       f"{found_at})" + (", expected holds" if expected == HOLDS
                                         else ", no expectation"))
    if expected != VIOLATED:
        return True, ""
    if status == HOLDS:
        return False, "expected violated, but holds (the search was complete)"
    if status == INTERRUPTED:
        return False, "expected violated, not found before the interruption"
    why = " (state bound)" if bounded_by_states else ""
    return False, f"expected violated, not found up to depth {hi}{why}"
