"""Rendering of `mmcheck-trace/1` documents (see docs/trace-format.md).

Everything here works on the JSON snapshots only, never on the model's internal state:

- `snapshot_diff(before, after)`: the human-readable changes between two snapshots;
- `text_trace(trace)`: the plain-text trace printed on the terminal;
- `trace_to_dot(trace)`: a Graphviz digraph, one HTML-table node per state, changed cells
  highlighted, the violating state framed in red;
- `render(trace, out)`: writes `.dot`, `.svg`, `.png` (or `.pdf`);
- `load_trace(path)` / `save_trace(trace, path)`: JSON I/O with a format check.

Snapshots are flattened into *cells*: a path (a tuple of strings such as
`("proc", "A", "page", "X", "pte", "writable")`) mapped to a display string.  Diffs and
highlighting compare cells, so the order of processes, frames, references, flags or legit
values inside a snapshot never shows up as a change.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
from typing import Iterable

FORMATS = ("mmcheck-trace/1", "mmcheck-trace/2")  # both are read; 2 is written

MISSING = "-"  # display of an absent / null value

DOT_NOT_FOUND = ("Graphviz 'dot' program not found: install the graphviz Debian package "
                 "(apt-get install graphviz)")

# Colours of the DOT rendering.
CHANGED_BG = "#fff176"  # yellow: cell changed by the step into this state
HEADER_BG = "#e8e8e8"
SECTION_BG = "#f4f4f4"
MUTED = "#8a8a8a"
BAD = "#d32f2f"  # violating state

Path = tuple  # tuple[str, ...]


# --------------------------------------------------------------------------------------------
# Trace I/O


_VALIDATOR = None


def _check_trace(trace: object, where: str) -> dict:
    """The trace if it is a valid `mmcheck-trace/1` document (docs/trace.schema.json),
    else ValueError naming the first problem on one line."""
    global _VALIDATOR
    if not isinstance(trace, dict):
        raise ValueError(f"{where}: not an mmcheck trace (expected a JSON object)")
    fmt = trace.get("format")
    if fmt not in FORMATS:
        raise ValueError(f"{where}: not an mmcheck trace (format is {_short(repr(fmt))}, "
                         f"expected one of {', '.join(FORMATS)})")
    if _VALIDATOR is None:
        import jsonschema

        from ..scenario.json_schema import trace_schema

        _VALIDATOR = jsonschema.Draft202012Validator(trace_schema())
    error = next(iter(sorted(_VALIDATOR.iter_errors(trace), key=lambda e: list(e.path))), None)
    if error is not None:
        at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
        raise ValueError(f"{where}: invalid trace: {at.lstrip('.') or 'document'}: "
                         f"{_short(error.message, 120)}")
    if len(trace["labels"]) != len(trace["steps"]) - 1:
        raise ValueError(f"{where}: invalid trace: {len(trace['labels'])} labels for "
                         f"{len(trace['steps'])} steps (one label per step after the first)")
    return trace


def _short(value, limit: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def load_trace(path: str | os.PathLike) -> dict:
    """Read a trace file; ValueError (one line) if it is not JSON or not `mmcheck-trace/1`."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as fh:
            trace = json.load(fh)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not valid JSON (not UTF-8 text)") from None
    except RecursionError:
        raise ValueError(f"{path}: not valid JSON (nested too deeply)") from None
    except ValueError as err:  # e.g. an integer longer than Python converts
        raise ValueError(f"{path}: not valid JSON ({_short(str(err))})") from None
    except OSError as err:
        raise ValueError(f"{path}: cannot read file: {err.strerror or err}") from None
    return _check_trace(trace, path)


def save_trace(trace: dict, path: str | os.PathLike) -> str:
    """Write a trace as JSON (small objects kept on one line); returns the path."""
    path = os.fspath(path)
    _check_trace(trace, "trace")
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(dumps(trace) + "\n")
    return path


def dumps(obj: object, width: int = 100) -> str:
    """JSON text indented by 2, where every object/list that fits on the rest of its line
    (up to `width` columns) stays on one line."""

    def one(o):
        return json.dumps(o, ensure_ascii=False)

    def rec(o, indent: int, used: int) -> str:
        flat = one(o)
        if not isinstance(o, (dict, list)) or not o or used + len(flat) <= width:
            return flat
        pad = " " * (indent + 2)
        if isinstance(o, dict):
            items = []
            for k, v in o.items():
                key = f"{pad}{one(k)}: "
                items.append(key + rec(v, indent + 2, len(key) + 1))
        else:
            items = [pad + rec(v, indent + 2, len(pad) + 1) for v in o]
        return "{[" [isinstance(o, list)] + "\n" + ",\n".join(items) + "\n" + " " * indent + "}]"[isinstance(o, list)]

    return rec(obj, 0, 0)


# --------------------------------------------------------------------------------------------
# Value formatting


def _natural_key(s: str):
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(s))]


def fmt_value(v: object) -> str:
    """A scalar as displayed: None/"" -> '-', booleans -> yes/no, lists -> comma list."""
    if v is None or v == "":
        return MISSING
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return ", ".join(sorted((fmt_value(x) for x in v), key=_natural_key)) or MISSING
    if isinstance(v, dict):
        return " ".join(f"{k}={fmt_value(x)}" for k, x in sorted(v.items()))
    return str(v)


_PTE_ORDER = ("kind", "frame", "writable", "dirty", "slot", "exclusive", "soft_dirty", "uffd_wp")
_PTE_FLAG_NAMES = {"exclusive": "excl", "soft_dirty": "soft-dirty", "uffd_wp": "uffd-wp"}


def _pte_keys(pte: dict) -> list[str]:
    keys = [k for k in _PTE_ORDER if k in pte]
    return keys + sorted(k for k in pte if k not in _PTE_ORDER)


def fmt_pte(pte: dict | None) -> str:
    """`present f0 rw dirty`, `present f0 ro`, `zero ro`, `swap slot=3 excl`, `none`."""
    if not pte:
        return "none"
    kind = pte.get("kind", "none")
    parts = [str(kind)]
    if pte.get("frame") is not None:
        parts.append(str(pte["frame"]))
    if kind in ("present", "zero"):
        parts.append("rw" if pte.get("writable") else "ro")
    for key in _pte_keys(pte):
        if key in ("kind", "frame", "writable"):
            continue
        value = pte[key]
        if isinstance(value, bool):
            if value:
                parts.append(_PTE_FLAG_NAMES.get(key, key))
        elif value is not None:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def _pte_cell(key: str, pte: dict) -> str:
    value = pte.get(key)
    if key == "writable":
        if pte.get("kind") not in ("present", "zero") and value is None:
            return MISSING
        return "rw" if value else "ro"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return fmt_value(value)


def fmt_frame(frame: dict) -> str:
    parts = [str(frame.get("kind", "?")), f"ref {fmt_value(frame.get('ref'))}",
             f"map {fmt_value(frame.get('map'))}"]
    if frame.get("pins"):
        parts.append(f"pins {frame['pins']}")
    if frame.get("flags"):
        parts.append(f"[{fmt_value(frame['flags'])}]")
    parts.append(f"content {fmt_value(frame.get('content'))}")
    return " ".join(parts)


def fmt_ref_kind(ref: dict) -> str:
    """`get read`, `pin write longterm`, ..."""
    parts = [fmt_value(ref.get("type")), fmt_value(ref.get("access"))]
    if ref.get("longterm"):
        parts.append("longterm")
    return " ".join(parts)


# --------------------------------------------------------------------------------------------
# Flattening into cells


def _by_key(items: Iterable[dict] | None, key: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for item in items or ():
        if isinstance(item, dict) and item.get(key) is not None:
            out[str(item[key])] = item
    return out


_MM_ORDER = ("has_pinned", "write_protect_seq", "mmap_lock")
_THREAD_FIELDS = ("pc", "op", "step", "status")
_FRAME_FIELDS = ("kind", "ref", "map", "pins", "flags", "content")
_REF_FIELDS = ("owner", "page", "type", "access", "longterm", "coherent", "frame", "sees")
_TRACKING_FIELDS = ("vma", "wp", "soft_dirty", "pagemap")
_TRACKING_HEADS = {"vma": "vma tracking", "wp": "uffd-wp", "soft_dirty": "soft-dirty",
                   "pagemap": "pagemap read"}


def flatten(snapshot: dict) -> dict[Path, str]:
    """Snapshot -> ordered {cell path: display value}.

    Paths:
      ("proc", P, "status"), ("proc", P, "mm", field), ("proc", P, "legit"),
      ("proc", P, "page", V, "vma" | "ideal"), ("proc", P, "page", V, "pte", field),
      ("proc", P, "uffd"), ("proc", P, "page", V, "tracking", field) (write tracking),
      ("proc", P, "thread", T, "pc" | "op" | "step" | "status"),
      ("frame", F, field), ("ref", R, field), ("object", O, "entry" | "ideal" | "legit").
    Lists that are sets (frame flags, legit) are sorted, so their order never matters.
    """
    cells: dict[Path, str] = {}
    for pname, proc in _by_key(snapshot.get("processes"), "name").items():
        base = ("proc", pname)
        cells[base + ("status",)] = fmt_value(proc.get("status"))
        mm = proc.get("mm") or {}
        for key in [k for k in _MM_ORDER if k in mm] + sorted(k for k in mm if k not in _MM_ORDER):
            cells[base + ("mm", key)] = fmt_value(mm[key])
        if "uffd" in proc:
            cells[base + ("uffd",)] = fmt_value(proc["uffd"])
        for vname, vp in _by_key(proc.get("vpages"), "page").items():
            vbase = base + ("page", vname)
            cells[vbase + ("vma",)] = fmt_value(vp.get("vma"))
            if vp.get("mapping", "anonymous") != "anonymous":
                cells[vbase + ("mapping",)] = fmt_value(vp["mapping"])
            pte = vp.get("pte") or {"kind": "none"}
            for key in _pte_keys(pte):
                cells[vbase + ("pte", key)] = _pte_cell(key, pte)
            cells[vbase + ("ideal",)] = fmt_value(vp.get("ideal"))
            tracking = vp.get("tracking")
            for key in _TRACKING_FIELDS if isinstance(tracking, dict) else ():
                cells[vbase + ("tracking", key)] = fmt_value(tracking.get(key))
        for tname, th in _by_key(proc.get("threads"), "name").items():
            for key in _THREAD_FIELDS:
                cells[base + ("thread", tname, key)] = fmt_value(th.get(key))
        cells[base + ("legit",)] = fmt_value(list(proc.get("legit") or []))
    frames = _by_key(snapshot.get("frames"), "id")
    for fid in sorted(frames, key=_natural_key):
        frame = frames[fid]
        for key in _FRAME_FIELDS:
            cells[("frame", fid, key)] = fmt_value(frame.get(key))
    for rname, ref in _by_key(snapshot.get("refs"), "name").items():
        for key in _REF_FIELDS:
            cells[("ref", rname, key)] = fmt_value(ref.get(key))
    for oname, obj in _by_key(snapshot.get("objects"), "name").items():
        cells[("object", oname, "entry")] = fmt_pte(obj.get("entry"))
        cells[("object", oname, "ideal")] = fmt_value(obj.get("ideal"))
        cells[("object", oname, "legit")] = fmt_value(sorted(obj.get("legit") or []))
    return cells


def changed_cells(before: dict | None, after: dict) -> set[Path]:
    """Cell paths of `after` whose value differs from `before` (or is new); these are the
    cells `trace_to_dot` highlights.  With no previous state (`before` None) nothing
    counts as changed."""
    if before is None:
        return set()
    old, new = flatten(before), flatten(after)
    return {path for path, value in new.items() if old.get(path) != value}


# --------------------------------------------------------------------------------------------
# snapshot_diff


def _label(path: Path) -> tuple[str, str]:
    """(group label, group kind) of a cell path: cells of one group make one diff line."""
    if path[0] == "proc":
        p = path[1]
        if path[2] == "status":
            return f"{p} status", "cell"
        if path[2] == "mm":
            return f"{p} mm.{path[3]}", "cell"
        if path[2] == "legit":
            return f"{p} legit", "set"
        if path[2] == "uffd":
            return f"{p} uffd", "cell"
        if path[2] == "page":
            if path[4] == "pte":
                return f"{p}.{path[3]} pte", "pte"
            if path[4] == "tracking":
                return f"{p}.{path[3]} {_TRACKING_HEADS[path[5]]}", "cell"
            return f"{p}.{path[3]} {path[4]}", "cell"
        if path[2] == "thread":
            return f"{path[3]} {path[4]}", "cell"
    if path[0] == "ref":
        if path[2] == "frame":
            return f"ref {path[1]}", "cell"
        return f"ref {path[1]} {path[2]}", "cell"
    if path[0] == "object":
        return f"object {path[1]} {path[2]}", "cell"
    return " ".join(path[1:]) if path[0] == "frame" else " ".join(path), "cell"


def _index(snapshot: dict):
    procs = _by_key(snapshot.get("processes"), "name")
    vpages = {(p, v): vp for p, proc in procs.items()
              for v, vp in _by_key(proc.get("vpages"), "page").items()}
    return procs, vpages, _by_key(snapshot.get("frames"), "id")


def snapshot_diff(before: dict, after: dict) -> list[str]:
    """What changed from `before` to `after`, one line per changed item, e.g.

        A.X pte: present f0 rw dirty -> present f0 ro dirty
        f0 ref: 2 -> 3
        ref pipe: - -> f0
        A.main pc: 1 -> 2
        B legit: + X@0
        f1: new anon ref 1 map 1 content A.main#3
        f0: freed

    Deterministic: processes, their pages and threads in the order of `after` (then those
    only in `before`), frames in natural id order, references in order of `after`.
    """
    old, new = flatten(before), flatten(after)
    _, old_vp, old_frames = _index(before)
    _, new_vp, new_frames = _index(after)

    # Union of paths: order of `after`, then paths only in `before`.  Frames are re-sorted.
    paths = list(new) + [p for p in old if p not in new]
    frame_ids = sorted({p[1] for p in paths if p[0] == "frame"}, key=_natural_key)
    ordered = [p for p in paths if p[0] == "proc"]
    ordered += [p for f in frame_ids for p in paths if p[0] == "frame" and p[1] == f]
    ordered += [p for p in paths if p[0] == "ref"]

    lines: list[str] = []
    done: set[str] = set()
    for path in ordered:
        if old.get(path) == new.get(path):
            continue
        if path[0] == "frame":
            fid = path[1]
            if fid in done:
                continue
            if fid not in old_frames:
                done.add(fid)
                lines.append(f"{fid}: new {fmt_frame(new_frames[fid])}")
                continue
            if fid not in new_frames:
                done.add(fid)
                lines.append(f"{fid}: freed")
                continue
        label, kind = _label(path)
        if label in done:
            continue
        done.add(label)
        if kind == "pte":
            key = (path[1], path[3])
            b = fmt_pte(old_vp[key].get("pte")) if key in old_vp else MISSING
            a = fmt_pte(new_vp[key].get("pte")) if key in new_vp else MISSING
            lines.append(f"{label}: {b} -> {a}")
        elif kind == "set":
            b = _legit(before, path[1])
            a = _legit(after, path[1])
            change = [f"+ {v}" for v in sorted(a - b, key=_natural_key)]
            change += [f"- {v}" for v in sorted(b - a, key=_natural_key)]
            lines.append(f"{label}: {', '.join(change)}")
        else:
            lines.append(f"{label}: {old.get(path, MISSING)} -> {new.get(path, MISSING)}")
    return lines


def _legit(snapshot: dict, pname: str) -> set[str]:
    proc = _by_key(snapshot.get("processes"), "name").get(pname) or {}
    return {str(v) for v in proc.get("legit") or []}


# --------------------------------------------------------------------------------------------
# Text trace


def _policy_name(trace: dict) -> tuple[str, str]:
    policy = trace.get("policy")
    if isinstance(policy, dict):
        knobs = policy.get("knobs") or {}
        shown = ", ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                          for k, v in knobs.items())
        return str(policy.get("name", "?")), shown
    return fmt_value(policy), ""


def step_title(step: dict) -> str:
    """`step N  thread  action  [op]  — kernel` (or `step 0  initial`)."""
    parts = [f"step {step.get('index', '?')}"]
    if step.get("thread"):
        parts.append(str(step["thread"]))
    parts.append(str(step.get("action") or "?"))
    if step.get("op"):
        parts.append(f"[{step['op']}]")
    title = "  ".join(parts)
    if step.get("kernel"):
        title += f"  — {step['kernel']}"
    return title


def state_summary(snapshot: dict) -> list[str]:
    """A whole snapshot as text lines (used for the initial state)."""
    lines: list[str] = []
    for proc in snapshot.get("processes") or []:
        mm = proc.get("mm") or {}
        mm_s = " ".join(f"{k}={fmt_value(v)}" for k, v in mm.items())
        uffd = f"  uffd: {fmt_value(proc['uffd'])}" if "uffd" in proc else ""
        lines.append(f"{proc.get('name')} ({fmt_value(proc.get('status'))})  mm: {mm_s}{uffd}")
        for vp in proc.get("vpages") or []:
            mapping = vp.get("mapping", "anonymous")
            mapping = "" if mapping == "anonymous" else f" ({mapping})"
            tracking = vp.get("tracking")
            tracking = ("  " + "  ".join(f"{_TRACKING_HEADS[k]} {fmt_value(tracking.get(k))}"
                                         for k in _TRACKING_FIELDS)
                        if isinstance(tracking, dict) else "")
            lines.append(f"  {vp.get('page')}: vma {fmt_value(vp.get('vma'))}{mapping}  "
                         f"pte {fmt_pte(vp.get('pte'))}  ideal {fmt_value(vp.get('ideal'))}"
                         f"{tracking}")
        for th in proc.get("threads") or []:
            step = f" <{th['step']}>" if th.get("step") else ""
            lines.append(f"  {th.get('name')}: pc {fmt_value(th.get('pc'))} "
                         f"{fmt_value(th.get('op'))}{step}  {fmt_value(th.get('status'))}")
        lines.append(f"  legit: {fmt_value(list(proc.get('legit') or []))}")
    for frame in sorted(snapshot.get("frames") or [], key=lambda f: _natural_key(f.get("id"))):
        lines.append(f"{frame.get('id')}: {fmt_frame(frame)}")
    for ref in snapshot.get("refs") or []:
        held = (f"holds {ref['frame']}, sees {fmt_value(ref.get('sees'))}"
                if ref.get("frame") else "not held")
        coherent = ", coherent" if ref.get("coherent") else ""
        lines.append(f"ref {ref.get('name')} ({ref.get('owner')}.{ref.get('page')} "
                     f"{fmt_ref_kind(ref)}{coherent}): {held}")
    for obj in snapshot.get("objects") or []:
        lines.append(f"object {obj.get('name')} ({obj.get('type')}): page cache "
                     f"{fmt_pte(obj.get('entry'))}  ideal {fmt_value(obj.get('ideal'))}  "
                     f"legit {fmt_value(sorted(obj.get('legit') or []))}")
    return lines


def text_trace(trace: dict, indent: str = "    ") -> str:
    """The trace as plain text (no ANSI codes): header, then one block per step."""
    name, knobs = _policy_name(trace)
    scenario = trace.get("scenario_name") or trace.get("scenario") or "?"
    if trace.get("scenario") and trace.get("scenario_name"):
        scenario += f" ({trace['scenario']})"
    out = [f"scenario: {scenario}", f"policy:   {name}" + (f" ({knobs})" if knobs else "")]
    if trace.get("property"):
        verdict = "  VIOLATED" if trace.get("reason") else ""
        out.append(f"property: {trace['property']}{verdict}")
    if trace.get("reason"):
        out.append(f"reason:   {trace['reason']}")
    steps = trace.get("steps") or []
    prev = None
    for step in steps:
        out.append("")
        out.append(step_title(step))
        state = step.get("state") or {}
        if prev is None:
            body = state_summary(state)
        else:
            body = snapshot_diff(prev, state) or ["(no visible change)"]
        out.extend(indent + line for line in body)
        prev = state
    if trace.get("reason") and steps:
        out.append("")
        out.append(f"=> {trace.get('property', 'property')} violated after step "
                   f"{steps[-1].get('index', len(steps) - 1)}: {trace['reason']}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# DOT


def esc(text: object) -> str:
    """Escape text for a Graphviz HTML-like label."""
    s = str(text)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace('"', "&quot;").replace("'", "&#39;")


def _wrap_left(text: str, width: int) -> str:
    """Like `_wrap`, every line (including the last) left-aligned."""
    lines = textwrap.wrap(str(text), width=width, break_long_words=False,
                          break_on_hyphens=False) or [""]
    return "".join(esc(line) + '<BR ALIGN="LEFT"/>' for line in lines)


def cell_id(state: int, path: Path) -> str:
    """The ID attribute of a value cell (appears in the DOT text and SVG element ids)."""
    return f"s{state}:" + "/".join(str(p) for p in path)


class _Node:
    """Builds the HTML label of one state."""

    def __init__(self, index: int, cells: dict[Path, str], changed: set[Path]):
        self.index = index
        self.cells = cells
        self.changed = changed

    def td(self, path: Path | None, text: object = None, *, align: str = "LEFT",
           muted: bool = False, bold: bool = False, span: int = 1, bg: str | None = None,
           strike: bool = False, prefix: str = "") -> str:
        if text is None:
            text = self.cells.get(path, MISSING) if path is not None else ""
        body = esc(text)
        if bold:
            body = f"<B>{body}</B>"
        if strike:
            body = f"<S>{body}</S>"
        if muted:
            body = f'<FONT COLOR="{MUTED}">{body}</FONT>'
        if prefix:
            body = f'<FONT COLOR="{MUTED}">{esc(prefix)}</FONT>{body}'
        attrs = [f'ALIGN="{align}"']
        if span > 1:
            attrs.append(f'COLSPAN="{span}"')
        if path is not None:
            attrs.append(f'ID="{esc(cell_id(self.index, path))}"')
        if path is not None and path in self.changed:
            attrs.append(f'BGCOLOR="{CHANGED_BG}"')
        elif bg:
            attrs.append(f'BGCOLOR="{bg}"')
        return f"<TD {' '.join(attrs)}>{body}</TD>"

    @staticmethod
    def head(*names: str) -> str:
        return "<TR>" + "".join(
            f'<TD BGCOLOR="{SECTION_BG}"><FONT POINT-SIZE="9"><I>{esc(n)}</I></FONT></TD>'
            for n in names) + "</TR>"

    @staticmethod
    def table(rows: list[str], border: int = 0) -> str:
        return (f'<TABLE BORDER="{border}" CELLBORDER="1" CELLSPACING="0" CELLPADDING="2" '
                'COLOR="black">'
                + "".join(rows) + "</TABLE>")


def _process_block(node: _Node, proc: dict, dim: bool) -> str:
    pname = str(proc.get("name"))
    base = ("proc", pname)
    mm = proc.get("mm") or {}
    header = [node.td(None, f"process {pname}", bold=True, bg=HEADER_BG, muted=dim),
              node.td(base + ("status",), muted=dim)]
    mm_keys = [k for k in _MM_ORDER if k in mm] + sorted(k for k in mm if k not in _MM_ORDER)
    short = {"has_pinned": "has_pinned", "write_protect_seq": "wp_seq", "mmap_lock": "mmap_lock"}
    for key in mm_keys:
        header.append(node.td(None, short.get(key, key), muted=True, align="RIGHT"))
        header.append(node.td(base + ("mm", key), muted=dim))
    if "uffd" in proc:
        header.append(node.td(None, "uffd", muted=True, align="RIGHT"))
        header.append(node.td(base + ("uffd",), muted=dim))
    parts = [node.table(["<TR>" + "".join(header) + "</TR>"])]

    vpages = list(proc.get("vpages") or [])
    if vpages:
        pte_keys: list[str] = []
        for vp in vpages:
            for k in _pte_keys(vp.get("pte") or {"kind": "none"}):
                if k not in pte_keys:
                    pte_keys.append(k)
        pte_keys = [k for k in _PTE_ORDER if k in pte_keys] + [
            k for k in pte_keys if k not in _PTE_ORDER]
        names = {"kind": "pte", "frame": "frame", "writable": "w", "dirty": "dirty"}
        tracked = any(isinstance(vp.get("tracking"), dict) for vp in vpages)
        track_heads = [_TRACKING_HEADS[k] for k in _TRACKING_FIELDS] if tracked else []
        rows = [node.head("page", "vma", *(names.get(k, k) for k in pte_keys), "ideal",
                          *track_heads)]
        for vp in vpages:
            vbase = base + ("page", str(vp.get("page")))
            mapping = vp.get("mapping", "anonymous")
            pname_text = str(vp.get("page")) + ("" if mapping == "anonymous" else f" ({mapping})")
            row = [node.td(None, pname_text, bold=True, muted=dim),
                   node.td(vbase + ("vma",), muted=dim)]
            for k in pte_keys:
                path = vbase + ("pte", k)
                row.append(node.td(path, node.cells.get(path, MISSING), muted=dim))
            row.append(node.td(vbase + ("ideal",), muted=dim))
            if tracked:
                row += [node.td(vbase + ("tracking", k), muted=dim) for k in _TRACKING_FIELDS]
            rows.append("<TR>" + "".join(row) + "</TR>")
        parts.append(node.table(rows))

    threads = list(proc.get("threads") or [])
    if threads:
        rows = [node.head("thread", "pc", "op", "next step", "status")]
        for th in threads:
            tbase = base + ("thread", str(th.get("name")))
            row = [node.td(None, th.get("name"), bold=True, muted=dim)]
            row += [node.td(tbase + (k,), muted=dim) for k in _THREAD_FIELDS]
            rows.append("<TR>" + "".join(row) + "</TR>")
        parts.append(node.table(rows))

    legit = node.td(base + ("legit",), muted=dim, prefix="legit: ")
    parts.append(node.table([f"<TR>{legit}</TR>"]))
    inner = "".join(f'<TR><TD ALIGN="LEFT" BORDER="0">{p}</TD></TR>' for p in parts)
    return ('<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="2" CELLPADDING="1" COLOR="black">'
            f"{inner}</TABLE>")


def _frames_block(node: _Node, frames: list[dict], new: set[str], freed: list[str]) -> str:
    rows = [node.head("frame", "kind", "ref", "map", "pins", "flags", "content")]
    for frame in frames:
        fid = str(frame.get("id"))
        fbase = ("frame", fid)
        row = [node.td(None, fid, bold=True, bg=CHANGED_BG if fid in new else None)]
        row += [node.td(fbase + (k,)) for k in _FRAME_FIELDS]
        rows.append("<TR>" + "".join(row) + "</TR>")
    for fid in freed:
        rows.append("<TR>" + node.td(None, fid, strike=True, muted=True, bg=CHANGED_BG)
                    + node.td(None, "freed", muted=True, span=6, bg=CHANGED_BG) + "</TR>")
    return node.table(rows, border=1)


def _refs_block(node: _Node, refs: list[dict]) -> str:
    rows = [node.head("ref", "owner", "page", "type", "access", "longterm", "coherent",
                      "frame", "sees")]
    for ref in refs:
        rbase = ("ref", str(ref.get("name")))
        held = ref.get("frame") is not None
        row = [node.td(None, ref.get("name"), bold=True, muted=not held)]
        row += [node.td(rbase + (k,), muted=not held) for k in _REF_FIELDS]
        rows.append("<TR>" + "".join(row) + "</TR>")
    return node.table(rows, border=1)


def _objects_block(node: _Node, objects: list[dict]) -> str:
    rows = [node.head("object", "type", "page cache", "ideal", "legit")]
    for obj in objects:
        obase = ("object", str(obj.get("name")))
        row = [node.td(None, obj.get("name"), bold=True), node.td(None, obj.get("type"))]
        row += [node.td(obase + (k,)) for k in ("entry", "ideal", "legit")]
        rows.append("<TR>" + "".join(row) + "</TR>")
    return node.table(rows, border=1)


def _touched(changed: set[Path], kind: str, name: str) -> bool:
    return any(p[0] == kind and p[1] == name for p in changed)


def state_label(trace: dict, i: int, *, compact: bool = True, violating: bool = False) -> str:
    """The HTML-like label (without the outer < >) of state i."""
    steps = trace["steps"]
    step = steps[i]
    snap = step.get("state") or {}
    prev = steps[i - 1].get("state") if i > 0 else None
    cells = flatten(snap)
    changed = changed_cells(prev, snap)
    node = _Node(i, cells, changed)

    title = f"state {i}" if i == 0 else f"state {i}: after step {step.get('index', i)}"
    sub = ("initial state" if i == 0 else
           f"{step.get('thread') or ''} {step.get('action') or ''}".strip()
           + (f"  [{step['op']}]" if step.get("op") else ""))
    header = f'<B>{esc(title)}</B><BR ALIGN="LEFT"/>{esc(sub)}<BR ALIGN="LEFT"/>'
    if step.get("kernel"):
        header += f'<FONT POINT-SIZE="9" COLOR="#555555">{_wrap_left(step["kernel"], 72)}</FONT>'
    rows = [f'<TR><TD ALIGN="LEFT" BGCOLOR="{HEADER_BG}">{header}</TD></TR>']
    if violating:
        rows.append(f'<TR><TD ALIGN="LEFT" BGCOLOR="{BAD}"><FONT COLOR="white"><B>'
                    f'VIOLATED: {esc(trace.get("property") or "property")}</B>'
                    f'<BR ALIGN="LEFT"/>{_wrap_left(trace.get("reason") or "", 60)}'
                    "</FONT></TD></TR>")

    for proc in snap.get("processes") or []:
        pname = str(proc.get("name"))
        unborn = proc.get("status") == "unborn"
        if compact and unborn and not _touched(changed, "proc", pname):
            continue
        block = _process_block(node, proc, dim=unborn or proc.get("status") == "exited")
        rows.append(f'<TR><TD ALIGN="LEFT" BORDER="0">{block}</TD></TR>')

    frames = sorted(snap.get("frames") or [], key=lambda f: _natural_key(f.get("id")))
    now = {str(f.get("id")) for f in frames}
    before = {str(f.get("id")) for f in (prev or {}).get("frames") or []}
    freed = sorted(before - now, key=_natural_key)
    new = now - before if prev is not None else set()
    if frames or freed:
        block = _frames_block(node, frames, new, freed)
        rows.append(f'<TR><TD ALIGN="LEFT" BORDER="0">{block}</TD></TR>')

    refs = [r for r in snap.get("refs") or []
            if not compact or r.get("frame") is not None
            or _touched(changed, "ref", str(r.get("name")))]
    if refs:
        rows.append(f'<TR><TD ALIGN="LEFT" BORDER="0">{_refs_block(node, refs)}</TD></TR>')
    if snap.get("objects"):
        block = _objects_block(node, snap["objects"])
        rows.append(f'<TR><TD ALIGN="LEFT" BORDER="0">{block}</TD></TR>')

    border = f'BORDER="3" COLOR="{BAD}"' if violating else 'BORDER="1"'
    return (f'<TABLE {border} CELLBORDER="0" CELLSPACING="3" CELLPADDING="2" '
            f'ID="{esc(f"state{i}")}">' + "".join(rows) + "</TABLE>")


def _edge_label(step: dict) -> str:
    """`N: thread action` in bold, then the kernel function (the kernel text up to its first
    ':'), at most two short lines: the node header shows the full kernel text."""
    head = f"{step.get('index', '?')}: {step.get('thread') or ''} {step.get('action') or ''}"
    label = f"<B>{esc(head.strip())}</B>"
    kernel = str(step.get("kernel") or "")
    func = kernel.split(":", 1)[0].strip()
    if func and func != step.get("action"):
        lines = textwrap.wrap(func, width=32, break_long_words=False, break_on_hyphens=False)
        if len(lines) > 2:
            lines = lines[:2]
            lines[1] += " …"
        label += '<BR/><FONT POINT-SIZE="9">' + "<BR/>".join(esc(x) for x in lines) + "</FONT>"
    return label


def trace_to_dot(trace: dict, *, compact: bool = True, layout: str = "grid",
                 columns: int = 4, no_return: int | None = None) -> str:
    """The trace as a Graphviz digraph.

    layout: "grid" (states in rows of `columns`, read left to right, then down),
            "LR" (one row) or "TB" (one column).
    compact: hide unborn processes, references not held, unless the step changed them.
    no_return: the step after which the violation is unavoidable (mmcheck.report.graph),
               drawn as a thick red edge and named in the title.
    """
    if layout not in ("grid", "LR", "TB"):
        raise ValueError(f"unknown layout {layout!r} (expected grid, LR or TB)")
    steps = trace.get("steps") or []
    n = len(steps)
    violating = bool(trace.get("reason"))
    name, knobs = _policy_name(trace)
    scenario = trace.get("scenario_name") or trace.get("scenario") or "?"
    L = '<BR ALIGN="LEFT"/>'
    title = f"<B>{esc(scenario)}</B>   policy {esc(name)}"
    if trace.get("property"):
        title += f"   property {esc(trace['property'])}"
        if violating:
            title += f'   <FONT COLOR="{BAD}"><B>VIOLATED</B></FONT>'
    title += L
    if knobs:
        title += f'<FONT POINT-SIZE="10">{_wrap_left(knobs, 150)}</FONT>'
    if violating:
        title += f'<FONT COLOR="{BAD}">{esc(trace["reason"])}</FONT>{L}'
    if no_return is not None:
        title += (f'<FONT COLOR="{BAD}"><B>point of no return: step {no_return}</B> (from '
                  f"the state it leads to, every interleaving violates the property)</FONT>{L}")
    title += (f'<FONT POINT-SIZE="9" COLOR="{MUTED}">yellow: changed by the step into '
              f"the state</FONT>{L} ")

    out = ["digraph trace {",
           f'  rankdir={"LR" if layout == "LR" else "TB"};',
           "  newrank=true;",
           '  graph [fontname="Helvetica", fontsize=12, labelloc=t, labeljust=l, '
           "nodesep=0.6, ranksep=0.5, pad=0.3];",
           '  node [shape=plain, fontname="Helvetica", fontsize=10];',
           '  edge [fontname="Helvetica", fontsize=10, color="#555555"];',
           f"  label=<{title}>;"]
    for i in range(n):
        label = state_label(trace, i, compact=compact, violating=violating and i == n - 1)
        out.append(f"  s{i} [label=<{label}>];")
    for i in range(1, n):
        if i == no_return:
            out.append(f'  s{i - 1} -> s{i} [label=<<FONT COLOR="{BAD}"><B>point of no '
                       f"return</B></FONT>{L}{_edge_label(steps[i])}>, color=\"{BAD}\", "
                       f"penwidth=3];")
        else:
            out.append(f"  s{i - 1} -> s{i} [label=<{_edge_label(steps[i])}>];")
    if layout == "grid" and n > 1:
        columns = max(1, columns)
        rows = [list(range(r, min(r + columns, n))) for r in range(0, n, columns)]
        for row in rows:
            out.append("  { rank=same; " + " ".join(f"s{i};" for i in row) + " }")
        # Stack the rows: an invisible edge from each row's first state to the next row's.
        for above, below in zip(rows, rows[1:]):
            out.append(f"  s{above[0]} -> s{below[0]} [style=invis, weight=10];")
    out.append("}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# render


_FORMATS = ("dot", "svg", "png", "pdf")


def render(trace: dict, out: str | os.PathLike, fmt: str | None = None, **dot_options) -> str:
    """Write the trace as .dot, .svg, .png or .pdf (from the extension unless `fmt`);
    `dot_options` go to `trace_to_dot` (compact, layout, columns).  Returns the path."""
    out = os.fspath(out)
    if fmt is None:
        fmt = os.path.splitext(out)[1].lstrip(".").lower()
    fmt = (fmt or "").lower()
    if fmt == "gv":
        fmt = "dot"
    if fmt not in _FORMATS:
        raise ValueError(f"{out}: cannot render to format {fmt!r} (use one of {', '.join(_FORMATS)})")
    dot = trace_to_dot(trace, **dot_options)
    parent = os.path.dirname(out)
    if parent:
        os.makedirs(parent, exist_ok=True)
    if fmt == "dot":
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(dot)
        return out
    data = _run_dot(dot, fmt)
    with open(out, "wb") as fh:
        fh.write(data)
    return out


def _run_dot(dot: str, fmt: str) -> bytes:
    """Lay out `dot` with Graphviz; RuntimeError if the `dot` program is missing."""
    if shutil.which("dot") is None:
        raise RuntimeError(DOT_NOT_FOUND)
    try:
        import graphviz
    except ImportError:  # the Python package is a convenience: call `dot` directly
        proc = subprocess.run(["dot", f"-T{fmt}"], input=dot.encode("utf-8"),
                              capture_output=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"dot failed: {proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout
    try:
        return graphviz.Source(dot).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise RuntimeError(DOT_NOT_FOUND) from None
    except graphviz.CalledProcessError as err:
        stderr = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else err.stderr
        raise RuntimeError(f"dot failed: {(stderr or str(err)).strip()}") from None
