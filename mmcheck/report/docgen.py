"""Generated parts of the docs: the operation reference (from mmcheck.scenario.ops), the knob and
preset tables (from mmcheck.model.policy) and the property list (from mmcheck.properties).

`python -m mmcheck.report.docgen` rewrites the marked sections in docs/; `--check` exits 1 when a
section is out of date (the test suite runs that).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..scenario.ops import OPS
from ..model.policy import ALIASES, KNOBS, PRESETS
from ..properties import REGISTRY


def _fmt(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def operations_md() -> str:
    out = []
    for name, spec in OPS.items():
        out.append(f"### `{name}`\n")
        if spec.alias_of:
            fixed = ", ".join(f"`{k}: {_fmt(v)}`" for k, v in spec.fixed)
            out.append(f"Alias of `{spec.alias_of}` with {fixed}.\n")
        out.append(f"{spec.doc}\n\nKernel path: {spec.kernel}.\n")
        fields = [f for f in spec.fields if f.name not in dict(spec.fixed)]
        if fields:
            out.append("| field | type | required | default | meaning |")
            out.append("|---|---|---|---|---|")
            for f in fields:
                kind = f.type + (f" ({' / '.join(f.choices)})" if f.choices else "")
                default = "" if f.required or f.default is None else f"`{_fmt(f.default)}`"
                out.append(f"| `{f.name}` | {kind} | {'yes' if f.required else ''} | "
                           f"{default} | {f.doc} |")
            out.append("")
        forms = []
        if spec.scalar:
            forms.append(f"short form `- {name}: <{spec.scalar}>`")
        if spec.bare:
            forms.append(f"bare form `- {name}`")
        if forms:
            out.append("Also written as: " + ", ".join(forms) + ".\n")
        out.append(f"```yaml\n{spec.example}\n```\n")
    return "\n".join(out)


def knobs_md() -> str:
    names = list(PRESETS)
    out = ["| knob | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for knob in KNOBS:
        out.append(f"| `{knob}` | " + " | ".join(_fmt(getattr(PRESETS[n], knob)) for n in names)
                   + " |")
    out.append("")
    for knob in KNOBS.values():
        out.append(f"- **`{knob.name}`**: {knob.doc}.")
        for value, source in knob.sources.items():
            out.append(f"  - `{_fmt(value)}`: {source}")
    out.append("")
    for p in PRESETS.values():
        out.append(f"- **{p.name}**: {p.description}")
    out.append("- aliases: " + ", ".join(f"`{a}` = {t}" for a, t in ALIASES.items()))
    return "\n".join(out) + "\n"


def properties_md() -> str:
    out = ["| property | catches | meaning |", "|---|---|---|"]
    for name, cls in REGISTRY.items():
        out.append(f"| `{name}` | {cls.catches} | {cls.description} |")
    return "\n".join(out) + "\n"


SECTIONS = {
    "docs/scenarios.md": ("operations", operations_md),
    "docs/policies.md": ("knobs", knobs_md),
    "docs/properties.md": ("properties", properties_md),
}


def splice(text: str, marker: str, body: str) -> str:
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}{end}{tail}"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    root = Path(__file__).resolve().parent.parent.parent
    stale = []
    for rel, (marker, make) in SECTIONS.items():
        path = root / rel
        old = path.read_text()
        new = splice(old, marker, make())
        if new != old:
            stale.append(rel)
            if not check:
                path.write_text(new)
    if check and stale:
        print("out of date: " + ", ".join(stale) + " (run python -m mmcheck.report.docgen)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
