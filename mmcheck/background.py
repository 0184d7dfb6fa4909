"""Background actors: kernel activity that can strike between any two steps of the
scenario's threads, bounded by the scenario's `background:` section.

- reclaim: shrink_page_list on any one mapped anonymous page (then the swap.py steps);
- speculative_refs: a speculative reference (folio_try_get_rcu: only if page_count > 0)
  taken on any mapped page and dropped later, as pagecache lookups, GUP-fast and
  compaction do; it is what makes page_count()-based reuse copy unnecessarily;
- lru_batch: fresh pages sit in a per-CPU LRU add batch holding a reference; the batch is
  drained (lru_add_drain) at any time.

Actors are threads of no process; a choice of target page is a separate successor whose
label names the page by its first mapping (process:vpage), which frame renaming keeps.
"""

from __future__ import annotations

from .kernel import SPEC_DROP, _drain_lru_batches, _put
from .state import FL_LRU_BATCH, FR_FLAGS, FR_REF, PTE_SHIFT, PTE_SWAP, PTE_ZERO, TH_FA, TH_PC, TH_PHASE
from .swap import isolate_and_lock, reclaimable


def mapped_pages(m, s):
    """(frame, 'P:X' of its first mapping) for every page some PTE maps, each once."""
    seen = set()
    out = []
    for p, row in enumerate(m.pv):
        for v, base in enumerate(row):
            pte = s[base + 1]
            if pte and not pte & (PTE_ZERO | PTE_SWAP):
                f = (pte >> PTE_SHIFT) - 1
                if f not in seen:
                    seen.add(f)
                    out.append((f, f"{m.procs[p]}:{m.vpages[v]}"))
    return out


def reclaim_any(m, s, t, op):
    """kswapd / direct reclaim picks an anonymous page off the LRU: isolate and lock it."""
    out = []
    for f, where in mapped_pages(m, s):
        if reclaimable(m, s, f):
            l = list(s)
            isolate_and_lock(m, l, t, f)
            out.append((f"shrink_page_list: isolate, lock page at {where}", l))
    return out or None


def speculative_get(m, s, t, op):
    """A speculative lookup's folio_try_get_rcu on a mapped page (fails at count 0)."""
    out = []
    for f, where in mapped_pages(m, s):
        if s[m.fr[f] + FR_REF] > 0:
            l = list(s)
            l[m.fr[f] + FR_REF] += 1
            l[m.th[t] + TH_FA] = f + 1
            l[m.th[t] + TH_PHASE] = SPEC_DROP
            out.append((f"speculative get of page at {where}", l))
    return out or None


def speculative_put(m, s, t, op):
    """The speculative reference is dropped (the lookup re-checked and backed off, or
    finished with the page)."""
    l = list(s)
    b = m.th[t]
    _put(m, l, l[b + TH_FA] - 1, 1)
    l[b + TH_FA] = 0
    l[b + TH_PHASE] = 0
    l[b + TH_PC] += 1
    return "speculative put", l


def lru_add_drain(m, s, t, op):
    """lru_add_drain: the LRU add batch empties (its pages join the LRU, the batch's
    references go); enabled while some page sits in the batch.  Repeats forever."""
    for b in m.fr:
        if s[b + FR_FLAGS] & FL_LRU_BATCH:
            l = list(s)
            _drain_lru_batches(m, l)
            return "lru_add_drain", l
    return None
