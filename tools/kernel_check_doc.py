"""docs/kernel-check.md from `mmcheck kernel-check --json` output.

    mmcheck kernel-check --setup --json scenarios/classics scenarios/cow ... > kc.json
    python tools/kernel_check_doc.py kc.json "COMMAND" > docs/kernel-check.md
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from collections import OrderedDict, defaultdict


def main() -> None:
    data = json.load(open(sys.argv[1], encoding="utf-8"))
    command = sys.argv[2] if len(sys.argv) > 2 else "mmcheck kernel-check"
    s = data["summary"]
    out = [
        "# The model against this machine's kernel",
        "",
        f"Recorded {datetime.date.today().isoformat()} on Linux {data['kernel']} "
        f"({data['machine']}, {os.cpu_count()} vCPU, as root) with",
        "",
        "```sh",
        command,
        "```",
        "",
        f"Model policy: **{data['policy']}** (the preset matching `uname -r`). "
        f"Properties compared: **{s['agree']} agree, {s['disagree']} disagree, "
        f"{s['unconfirmed']} unconfirmed** (a race the attempts did not hit), "
        f"{s['skipped']} skipped (a facility missing or an operation user space cannot "
        f"drive, below), {s['not observable']} not observable from user space "
        f"(refcount-sane, exclusive-sane, wp-sane, soft-dirty-*). How the programs are "
        f"made and judged: [reproduce.md](reproduce.md).",
        "",
        "| scenario | agree | disagree | skipped | the kernel does not take these executions |",
        "|---|---|---|---|---|",
    ]
    rows = defaultdict(list)
    for r in data["rows"]:
        rows[r["scenario"]].append(r)
    skipped = OrderedDict()
    for name, rs in rows.items():
        agree = [f"{r['prop']}" + (" (violated)" if r["model"] == "violated" else "")
                 for r in rs if r["agree"] == "yes"]
        bad = [f"{r['prop']}: model {r['model']}, kernel {r['kernel']}"
               for r in rs if r["agree"] in ("NO", "unconfirmed")]
        skip = sorted({r["detail"] for r in rs if r["kernel"] == "skip"})
        for why in skip:
            skipped.setdefault(why, []).append(name)
        gone = sorted({part.strip() for r in rs if "not possible here:" in r["detail"]
                       for part in r["detail"].split("not possible here:", 1)[1].split("; ")})
        out.append(f"| `{name}` | {', '.join(agree) or '-'} | {'; '.join(bad) or '-'} | "
                   f"{'yes' if skip else '-'} | {'; '.join(gone) or '-'} |")
    shown = [r for r in data["rows"] if r["model"] == "violated" and r["kernel"] == "violated"]
    if shown:
        out += ["", "## Violated on this kernel, as the model says", ""]
        out += [f"- `{r['scenario']}` {r['prop']}: {r['detail']}" for r in shown]
    out += ["", "## Skipped, and why", ""]
    for why, names in skipped.items():
        out.append(f"- **{len(names)} scenario{'s' if len(names) != 1 else ''}**: {why} "
                   f"({', '.join(f'`{n}`' for n in names)})")
    print("\n".join(out))


if __name__ == "__main__":
    main()
