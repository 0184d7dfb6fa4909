"""JSON Schemas (draft 2020-12) for scenario and policy files, generated from the op table
(`mmcheck.scenario.ops.OPS`), the policy knobs and presets, and the property names.

The schemas serve editors (completion, hover docs) and quick structural checks; the loader
(`mmcheck.scenario.loader`) is the authority and also checks what a schema cannot express (names
that must be declared, per-thread ordering, events signalled once, ...).

`python -m mmcheck.scenario.json_schema` (re)writes docs/scenario.schema.json and docs/policy.schema.json;
`python -m mmcheck.scenario.json_schema --check` exits 1 if they are out of date.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import loader
from ..model import policy as policy_mod
from .ops import OPS, Field, OpSpec
from ..properties import NAMES as PROPERTY_NAMES

DIALECT = "https://json-schema.org/draft/2020-12/schema"
_NAME = "^" + loader.NAME_PATTERN + "$"
_POLICY_NAME = "^" + loader.POLICY_NAME_PATTERN + "$"

_NAME_FIELD_DOCS = {
    "page": "name of a page declared under `pages:`",
    "ref": "name of a GUP reference declared by some op's `as:`",
    "newref": "declares a GUP reference name (unique in the scenario)",
    "process": "name of a process (declared at top level or by a fork)",
    "newproc": "declares a process name (unique in the scenario)",
    "event": "name of a one-shot event (signal / await)",
    "object": "name of a memory object declared in `objects:`",
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/$defs/{name}"}


def _field_schema(f: Field) -> dict:
    if f.type in _NAME_FIELD_DOCS:
        s: dict = {"type": "string", "pattern": _NAME}
        doc = f.doc or _NAME_FIELD_DOCS[f.type]
    elif f.type == "bool":
        s = {"type": "boolean"}
        doc = f.doc
    elif f.type == "choice":
        s = {"enum": list(f.choices)}
        doc = f.doc
    elif f.type == "flags":
        s = {"type": "array", "items": {"enum": list(f.choices)}, "uniqueItems": True}
        doc = f.doc
    elif f.type == "threads":
        s = _ref("threads")
        doc = f.doc
    else:  # pragma: no cover - a new field type needs a schema here
        raise AssertionError(f"field type {f.type!r} has no schema")
    if doc:
        s["description"] = doc
    if f.default is not None and f.type != "threads":
        s["default"] = f.default
    return s


def _op_schema(spec: OpSpec) -> dict:
    fixed = dict(spec.fixed)
    props: dict = {}
    required: list[str] = []
    for f in spec.fields:
        if f.name in fixed:
            continue
        props[f.name] = _field_schema(f)
        if f.required:
            required.append(f.name)
    forms: list[dict] = []
    if spec.bare:
        forms.append({"type": "null"})
    if spec.scalar is not None:
        forms.append(_field_schema(spec.field(spec.scalar)))
    if props:
        obj: dict = {"type": "object", "properties": props, "additionalProperties": False}
        if any(f.type == "threads" for f in spec.fields):
            props["program"] = {**_ref("program"),
                                "description": "shorthand: the program of one thread `main`"}
            obj["not"] = {"required": ["threads", "program"]}
        if required:
            obj["required"] = required
        forms.append(obj)
    doc = spec.doc
    if spec.alias_of:
        shown = ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}"
                          for k, v in spec.fixed)
        doc += f" Alias of `{spec.alias_of}` with {shown}."
    value = forms[0] if len(forms) == 1 else {"anyOf": forms}
    out = {
        "type": "object",
        "description": f"{doc} Kernel: {spec.kernel}",
        "properties": {spec.name: value},
        "required": [spec.name],
        "additionalProperties": False,
    }
    if spec.example:
        out["examples"] = [spec.example]
    return out


def _page_schema() -> dict:
    states = {"enum": list(loader.PAGE_STATES),
              "description": "none: never touched; zero: read-faulted (shared zero page, huge "
                             "zero page for a THP); present: written (exclusive anonymous "
                             "page) or, mapping an object, read-faulted"}
    long_props = {"state": states}
    required = ["state"]
    for name, f in loader.PAGE_EXTRA_FIELDS.items():
        long_props[name] = _field_schema(f)
        if f.required:
            required.append(name)
    return {
        "anyOf": [
            states,
            {"type": "object", "properties": long_props, "required": required,
             "additionalProperties": False},
        ]
    }


def _policy_defs() -> dict:
    knobs = {}
    for k in policy_mod.KNOBS.values():
        knobs[k.name] = {"enum": list(k.values), "description": k.doc}
    builtin = [*policy_mod.PRESETS, *policy_mod.ALIASES]
    return {
        "policy_name": {
            "anyOf": [
                {"enum": builtin, "description": "a preset or an alias of one"},
                {"type": "string", "pattern": _POLICY_NAME,
                 "description": "a policy from `define_policies:`"},
            ]
        },
        "policy_def": {
            "type": "object",
            "description": "a preset (or another defined policy) plus knob overrides",
            "properties": {
                "base": {**_ref("policy_name"),
                         "description": "the preset, alias or defined policy this starts from"},
                "knobs": {"type": "object", "properties": knobs, "additionalProperties": False},
                "description": {"type": "string"},
            },
            "required": ["base"],
            "additionalProperties": False,
        },
        "policy_defs": {
            "type": "object",
            "propertyNames": {"pattern": _POLICY_NAME, "not": {"enum": builtin}},
            "additionalProperties": _ref("policy_def"),
        },
    }


def _common_defs() -> dict:
    defs: dict = {}
    bare = [name for name, spec in OPS.items() if spec.bare]
    op_forms: list[dict] = []
    if bare:
        op_forms.append({"enum": bare, "description": "an operation without arguments"})
    for name, spec in OPS.items():
        defs[f"op-{name}"] = _op_schema(spec)
        op_forms.append(_ref(f"op-{name}"))
    defs["op"] = {"oneOf": op_forms}
    defs["program"] = {"type": "array", "items": _ref("op"),
                       "description": "the operations of one thread, in order"}
    defs["threads"] = {"type": "object", "propertyNames": {"pattern": _NAME},
                       "additionalProperties": _ref("program"),
                       "description": "thread name -> program"}
    defs["page"] = _page_schema()
    defs["process"] = {
        "type": "object",
        "properties": {
            "threads": {**_ref("threads"), "minProperties": 1},
            "program": {**_ref("program"),
                        "description": "shorthand: the program of one thread `main`"},
        },
        "oneOf": [{"required": ["threads"]}, {"required": ["program"]}],
        "additionalProperties": False,
    }
    defs.update(_policy_defs())
    return defs


def scenario_schema() -> dict:
    """The JSON Schema of scenario files."""
    verdict = {"enum": list(loader.VERDICTS)}
    return {
        "$schema": DIALECT,
        "title": "mmcheck scenario",
        "description": "A scenario for mmcheck: pages, processes with their threads' programs, "
                       "the policies and properties to check, and the expected verdicts.",
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "objects": {"type": "object",
                        "propertyNames": {"pattern": _NAME},
                        "additionalProperties": {
                            "type": "object",
                            "properties": {
                                "type": {"enum": list(loader.OBJECT_TYPES), "description": "; ".join(
                                    f"{k}: {v}" for k, v in loader.OBJECT_TYPES.items())},
                                "state": {"enum": list(loader.OBJECT_STATES), "default": "present",
                                          "description": "present: the page holds the object's "
                                                         "data; none: a hole"}},
                            "required": ["type"], "additionalProperties": False},
                        "description": "memory objects (one page of a file, memfd, shmem or "
                                       "hugetlb memfd) that pages map with `object:`"},
            "pages": {"type": "object", "minProperties": 1,
                      "propertyNames": {"pattern": _NAME},
                      "additionalProperties": _ref("page"),
                      "description": "virtual page name -> initial state"},
            "processes": {"type": "object", "minProperties": 1,
                          "propertyNames": {"pattern": _NAME},
                          "additionalProperties": _ref("process"),
                          "description": "the processes that exist at the start"},
            "define_policies": _ref("policy_defs"),
            "policies": {"type": "array", "items": _ref("policy_name"), "minItems": 1,
                         "uniqueItems": True,
                         "description": "policies to run (default: "
                                        f"{', '.join(policy_mod.DEFAULT_POLICIES)})"},
            "properties": {"type": "array", "items": {"enum": list(PROPERTY_NAMES)},
                           "minItems": 1, "uniqueItems": True,
                           "description": "properties to check (default: all)"},
            "expect": {
                "type": "object",
                "propertyNames": _ref("policy_name"),
                "additionalProperties": {
                    "type": "object",
                    "properties": {name: verdict for name in PROPERTY_NAMES},
                    "additionalProperties": False,
                },
                "description": "policy -> property -> holds | violated",
            },
            "depth": {"type": "integer", "minimum": 1, "description": "BFS depth bound"},
            "max_states": {"type": "integer", "minimum": 1,
                           "description": "bound on the number of states explored"},
            "menu": {
                "type": "object",
                "description": "bug discovery: every process may run any enabled instantiation "
                               "of these operation templates (instead of `processes`)",
                "properties": {
                    "processes": {"type": "integer", "minimum": 1, "maximum": 4},
                    "references": {"type": "integer", "minimum": 0, "maximum": 4},
                    "ops": {"type": "array", "minItems": 1, "items": {"oneOf": [
                        {"type": "string", "enum": list(loader.MENU_OPS)},
                        {"type": "object", "minProperties": 1, "maxProperties": 1,
                         "propertyNames": {"enum": list(loader.MENU_OPS)},
                         "additionalProperties": {"type": ["object", "null"]}},
                    ]}},
                },
                "required": ["ops"],
                "additionalProperties": False,
            },
            "background": {
                "type": "object",
                "description": "kernel activity that may strike between any two steps",
                "properties": {
                    name: ({"type": "boolean", "description": doc} if kind == "bool" else
                           {"type": "integer", "minimum": 0, "maximum": 8, "description": doc})
                    for name, (kind, doc) in loader.BACKGROUND_FIELDS.items()},
                "additionalProperties": False,
            },
        },
        "required": ["name", "pages"],
        "oneOf": [{"required": ["processes"]}, {"required": ["menu"]}],
        "additionalProperties": False,
        "$defs": _common_defs(),
    }


def policy_file_schema() -> dict:
    """The JSON Schema of `--policy-file` files: `define_policies: {...}` or the mapping
    name -> definition directly."""
    return {
        "$schema": DIALECT,
        "title": "mmcheck policy file",
        "description": "User-defined policies: name -> {base, knobs, description}, either at "
                       "the top level or under `define_policies:`.",
        "oneOf": [
            {"type": "object", "properties": {"define_policies": _ref("policy_defs")},
             "required": ["define_policies"], "additionalProperties": False},
            {**_ref("policy_defs"), "minProperties": 1,
             "not": {"required": ["define_policies"]}},
        ],
        "$defs": _policy_defs(),
    }


def trace_schema() -> dict:
    """JSON Schema of a saved trace (docs/trace-format.md).  `mmcheck replay` and `mmcheck
    render` validate a trace against it before using anything in it."""
    string, integer, boolean = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
    opt_string = {"type": ["string", "null"]}

    def obj(props: dict, required=None, extra=True) -> dict:
        return {"type": "object", "properties": props,
                "required": list(props) if required is None else required,
                "additionalProperties": extra}

    def array(items: dict, **kw) -> dict:
        return {"type": "array", "items": items, **kw}

    pte = {"type": "object", "required": ["kind"], "properties": {
        "kind": {"enum": ["none", "present", "zero", "swap", "marker"]},
        "frame": string, "slot": string, "writable": boolean, "dirty": boolean,
        "exclusive": boolean, "soft_dirty": boolean, "uffd_wp": boolean}}
    thread = obj({"name": string, "pc": integer, "op": opt_string, "step": string,
                  "status": string})
    process = obj({
        "name": string, "status": string,
        "mm": obj({"has_pinned": boolean, "write_protect_seq": integer, "mmap_lock": string}),
        "vpages": array(obj({"page": string, "vma": string, "mapping": string, "pte": pte,
                             "ideal": string, "tracking": obj({
                                 "vma": string, "wp": string, "soft_dirty": string,
                                 "pagemap": string})},
                            required=["page", "vma", "pte", "ideal"])),
        "threads": array(thread),
        "legit": array(string), "uffd": string},
        required=["name", "status", "mm", "vpages", "threads", "legit"])
    frame = obj({"id": string, "kind": string, "ref": integer, "map": integer,
                 "pins": integer, "flags": array(string), "content": string})
    ref = obj({"name": string, "owner": string, "page": string, "type": string,
               "access": string, "longterm": boolean, "coherent": boolean,
               "frame": opt_string, "sees": opt_string})
    slot = obj({"id": string, "swap_count": integer, "swapcache": boolean, "content": string})
    memobj = obj({"name": string, "type": string, "entry": pte, "ideal": string,
                   "legit": array(string)})
    snapshot = obj({"processes": array(process), "frames": array(frame), "refs": array(ref),
                    "swap_slots": array(slot), "objects": array(memobj)},
                   required=["processes", "frames", "refs"])
    step = obj({"index": integer, "thread": opt_string, "action": string, "op": opt_string,
                "kernel": opt_string, "function": opt_string, "outcome": opt_string,
                "state": snapshot},
               required=["index", "thread", "action", "op", "kernel", "state"])
    label_v1 = {"type": "array", "prefixItems": [integer, integer, string], "minItems": 3,
                "maxItems": 3}
    label_v2 = {"type": "array", "prefixItems": [integer, integer, string, string, opt_string],
                "minItems": 5, "maxItems": 5}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://mmcheck.invalid/trace.schema.json",
        "title": "mmcheck trace (mmcheck-trace/2; format 1 is still read)",
        "description": "A saved counterexample or execution: see docs/trace-format.md.",
        **obj({
            "format": {"enum": ["mmcheck-trace/1", "mmcheck-trace/2"]},
            "scenario": string,
            "scenario_name": string,
            "policy": obj({"name": string, "base": opt_string,
                           "knobs": {"type": "object"}}, required=["name"]),
            "property": opt_string,
            "reason": opt_string,
            "labels": array({"anyOf": [label_v1, label_v2]}),
            "steps": array(step, minItems=1),
        }, required=["format", "scenario", "policy", "labels", "steps"]),
        "if": {"properties": {"format": {"const": "mmcheck-trace/1"}}},
        "then": {"properties": {"labels": array(label_v1)}},
        "else": {"properties": {"labels": array(label_v2)}},
    }


SCHEMA_FILES = {
    "scenario.schema.json": scenario_schema,
    "policy.schema.json": policy_file_schema,
    "trace.schema.json": trace_schema,
}


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def default_docs_dir() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mmcheck.scenario.json_schema",
                                 description="Write (or check) the JSON Schemas in docs/.")
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if a schema file is missing or out of date")
    ap.add_argument("--out-dir", default=default_docs_dir(), help="default: the repo's docs/")
    args = ap.parse_args(argv)
    stale = []
    for fname, make in SCHEMA_FILES.items():
        target = os.path.join(args.out_dir, fname)
        text = render(make())
        try:
            with open(target, encoding="utf-8") as fh:
                current = fh.read()
        except FileNotFoundError:
            current = None
        if current == text:
            continue
        if args.check:
            stale.append(target)
        else:
            os.makedirs(args.out_dir, exist_ok=True)
            with open(target, "w", encoding="utf-8") as fh:
                fh.write(text)
            print(f"wrote {target}")
    if stale:
        print("out of date (run `python -m mmcheck.scenario.json_schema`): " + ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
