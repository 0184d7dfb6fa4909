"""Run a scenario under its policies: one exhaustive exploration per policy, a verdict per
property, expectations compared, counterexample traces built."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..engine import explorer, memory
from ..errors import ModelError, ScenarioError
from ..model.model import MMModel
from ..model.policy import resolve
from ..scenario.spec import Scenario
from .trace import build_trace
from .verdict import HOLDS, UNKNOWN, VIOLATED, failure, unexpected


# what to say when a search stops at the memory limit (or on MemoryError)
MEMORY_ADVICE = ("continue with --store fingerprints (about 20 bytes a state instead of "
                 "~1 KB), a larger --max-memory, or bound it with --max-states or --depth")


@dataclass
class PropertyVerdict:
    name: str
    verdict: str  # holds | violated | unknown (search bounded and no violation found)
    depth: int | None = None  # depth of the shortest counterexample
    reason: str | None = None
    trace: dict | None = None
    expected: str | None = None

    @property
    def unexpected(self) -> bool:
        return unexpected(self.verdict, self.expected)

    @property
    def failure(self) -> bool:
        """Counts against the exit status of `mmcheck run` (mmcheck.report.verdict)."""
        return failure(self.verdict, self.expected)


@dataclass
class PolicyRun:
    scenario: Scenario
    policy: str
    states: int
    transitions: int
    depth: int
    seconds: float
    rate: float
    complete: bool
    bounded_by: str | None
    copies: int
    unnecessary_copies: int
    pin_lost_copies: int
    final_states: int
    stuck_states: int
    stuck_trace: dict | None
    never_started: list[str]
    verdicts: list[PropertyVerdict] = field(default_factory=list)
    symmetry: str | None = None  # menus: what was treated as interchangeable
    notes: list[str] = field(default_factory=list)  # model bounds reached, and the like
    coverage: dict = field(default_factory=dict)  # outcome id -> transitions taken
    store: dict = field(default_factory=dict)  # how states were stored (explorer.Result)
    max_frontier: int = 0  # the largest BFS level
    resident: int = 0  # bytes this process had resident when the search ended
    por: dict | None = None  # partial-order reduction's statistics (explorer.Result.por)

    @property
    def vacuous(self) -> bool:
        """A scripted scenario none of whose interleavings completes every program (a
        menu has no program to complete: its processes may always start another op)."""
        return self.complete and self.final_states == 0 and self.scenario.menu is None

    @property
    def unexpected(self) -> list[PropertyVerdict]:
        return [v for v in self.verdicts if v.unexpected]


def policy_defs(scenario: Scenario, extra_defs=()) -> dict:
    defs = {d.name: d for d in extra_defs}
    defs.update({d.name: d for d in scenario.policy_defs})
    return defs


def run_policy(scenario: Scenario, policy_name: str, *, defs=None, properties=None,
               depth=None, max_states=None, canonicalize=True, progress=None,
               with_traces=True, symmetry=True, workers=1, store="exact",
               max_memory=None, checkpoint=None, resume=None, backend="processes",
               address=None, por=False) -> PolicyRun:
    """`canonicalize=False`: no state reduction at all; `symmetry=False`: frames and swap
    slots are still renamed, but not interchangeable menu processes and pages;
    `workers > 1`: the multi-process search (mmcheck.engine.parallel); `store`: "exact" or
    "fingerprints" (mmcheck.engine.fingerprints); `max_memory`: bytes the search may use;
    `checkpoint` / `resume`: mmcheck.engine.checkpoint.Checkpointer (fingerprint store);
    `backend` "ray" (with `address`, a cluster's HOST:PORT): mmcheck.engine.ray_backend;
    `por`: partial-order reduction (mmcheck.engine.por, mmcheck.model.reduction)."""
    policy = resolve(policy_name, defs or policy_defs(scenario))
    if por and depth is None and scenario.depth is not None:
        raise ScenarioError(scenario.path, scenario.depth_line,
                            "depth: a depth bound and --por do not go together (a reduced "
                            "search may reach a violation only deeper); run it without --por")
    model = MMModel(scenario, policy, properties, symmetry=symmetry and canonicalize)
    result = explorer.explore(
        model, max_depth=depth if depth is not None else scenario.depth,
        max_states=max_states if max_states is not None else scenario.max_states,
        canonicalize=canonicalize, progress=progress, workers=workers, store=store,
        max_memory=max_memory, checkpoint=checkpoint, resume=resume, backend=backend,
        address=address, por=por)
    copies = model.copy_counts(result.label_counts)
    expected = {(e.policy, e.prop): e.verdict for e in scenario.expect}
    run = PolicyRun(
        scenario=scenario, policy=policy_name, states=result.states,
        transitions=result.transitions, depth=result.max_depth, seconds=result.elapsed,
        rate=result.states_per_second, complete=result.complete,
        bounded_by=result.bounded_by, copies=copies["copy"],
        unnecessary_copies=copies["unnecessary"], pin_lost_copies=copies["pin_lost"],
        final_states=result.final_states, stuck_states=result.stuck_states,
        stuck_trace=(build_trace(model, _labels(model, result.stuck_trace, canonicalize), None,
                                 "no thread can move")
                     if result.stuck_trace and with_traces else None),
        never_started=([model.describe_goal(g) for g in result.unreached.get("op-started", ())]
                       if result.complete else []),
        symmetry=(model.symmetry.describe()
                  if model.symmetry is not None and not model.symmetry.trivial else None),
        coverage=model.outcome_counts(result.label_counts),
        store=result.store,
        max_frontier=max(result.level_sizes, default=0),
        resident=memory.rss_bytes(),
        por=result.por,
    )
    run.notes.extend(model.bound_notes(result.label_counts))
    for sm in model.sometimes():
        if sm.name == "wp-exemptions":
            missed = set(result.unreached.get(sm.name, ()))
            used = [g for g in sm.goals if g not in missed]
            if used:
                run.notes.append("wp-reported: exemptions that applied (stores not required "
                                 "to be reported): " + "; ".join(used))
    asked = set(properties or ()) | (set(scenario.properties) if scenario.properties_given
                                     else set())
    for name in model.property_names:
        if name in model.not_applicable and name not in asked:
            continue  # nothing to judge here (e.g. write-tracking properties, no uffd ops)
        cex = result.violations.get(name)
        if cex is not None:
            # the execution itself (not the canonical path): its reason names processes,
            # pages and frames as the trace shows them
            concrete = explorer.concretize(model, cex) if canonicalize else cex
            reason = model.judge(name, concrete.states, concrete.labels)
            if reason is None:
                raise ModelError(
                    f"{scenario.path} under {policy_name}: the search found {name} violated "
                    f"at depth {cex.depth} ({cex.reason}), but that execution re-run from the "
                    f"initial state does not violate it: the state reduction is unsound here "
                    f"(compare with --symmetry none)")
            trace = (build_trace(model, concrete.labels, name, reason) if with_traces
                     else None)
            v = PropertyVerdict(name, VIOLATED, cex.depth, reason, trace)
        else:
            v = PropertyVerdict(name, HOLDS if result.complete else UNKNOWN)
        v.expected = expected.get((policy_name, name))
        run.verdicts.append(v)
    return run


def _labels(model, trace, canonicalize):
    """Labels that replay from the model's initial state (a canonical path's may not)."""
    return explorer.concretize(model, trace).labels if canonicalize else trace.labels


def run_scenario(scenario: Scenario, *, policies=None, extra_defs=(), properties=None,
                 depth=None, max_states=None, canonicalize=True, progress=None, symmetry=True,
                 workers=1, store="exact", max_memory=None, checkpoint=None,
                 backend="processes", address=None, started=None, por=False):
    """Yield one PolicyRun per policy (the scenario's own list unless `policies`);
    `checkpoint` (one policy only): see run_policy; `started(policy)` is called before
    each search (a progress display)."""
    defs = policy_defs(scenario, extra_defs)
    names = tuple(policies) if policies else scenario.policies
    for name in names:
        try:
            resolve(name, defs)
        except KeyError:
            raise ScenarioError(scenario.path, None, f"unknown policy '{name}'") from None
    for prop in properties or ():
        if prop not in scenario.properties and prop not in _all_properties():
            raise ScenarioError(scenario.path, None, f"unknown property '{prop}'")
    for name in names:
        if started is not None:
            started(name)
        yield run_policy(scenario, name, defs=defs, properties=properties, depth=depth,
                         max_states=max_states, canonicalize=canonicalize, progress=progress,
                         symmetry=symmetry, workers=workers, store=store,
                         max_memory=max_memory, checkpoint=checkpoint, backend=backend,
                         address=address, por=por)


def _all_properties():
    from ..properties import NAMES

    return NAMES
