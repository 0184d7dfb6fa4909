"""Background actors: kernel activity that can strike between any two steps of the
scenario's threads, bounded by the scenario's `background:` section.

- reclaim: shrink_page_list on any one mapped anonymous page (then the swap steps);
- speculative_refs: a speculative reference (folio_try_get_rcu: only if page_count > 0)
  taken on any mapped page and dropped later, as pagecache lookups, GUP-fast and
  compaction do; it is what makes page_count()-based reuse copy unnecessarily;
- lru_batch: fresh pages sit in a per-CPU LRU add batch holding a reference; the batch is
  drained (lru_add_drain) at any time.

Actors are threads of no process; a choice of target page is a separate successor whose
label's argument names the page by its first mapping (process:vpage), or by its memory
object for a page cache page nothing maps, which frame renaming keeps.
"""

from __future__ import annotations

from .. import codec
from ..codec import PG_LRU_BATCH
from ..steps import LRU, SHRINK, SPEC_DROP, SPECULATIVE, implements, starts
from .common import (F_FLAGS, F_REF, O_ENTRY, T_PC, T_SPEC_PAGE, T_STEP, V_PTE,
                     drain_lru_batches, put, where, where_object)
from .swap import isolate_and_lock, reclaimable


def mapped_pages(m, s):
    """(frame, label argument of its first mapping) for every page a PTE maps, then every
    page cache page nothing maps (named by its object), once each."""
    seen = set()
    out = []
    for p, row in enumerate(m.pv):
        for v, base in enumerate(row):
            f = codec.frame_or_none(s[base + V_PTE])
            if f >= 0 and f not in seen:
                seen.add(f)
                out.append((f, where(m, p, v)))
    for o, ob in enumerate(m.ob):
        f = codec.frame_or_none(s[ob + O_ENTRY])
        if f >= 0 and f not in seen:
            seen.add(f)
            out.append((f, where_object(m, o)))
    return out


@starts("reclaim")
def reclaim_any(m, s, t, op):
    """kswapd / direct reclaim picks an anonymous page off the LRU: isolate and lock it."""
    out = []
    for f, at in mapped_pages(m, s):
        if reclaimable(m, s, f):
            l = s[:]
            isolate_and_lock(m, l, t, f)
            out.append(((SHRINK.isolate, at), l))
    return out or None


@starts("speculative_ref")
def speculative_get(m, s, t, op):
    """A speculative lookup's folio_try_get_rcu on a mapped page (fails at count 0)."""
    out = []
    for f, at in mapped_pages(m, s):
        if s[m.fr[f] + F_REF] > 0:
            l = s[:]
            l[m.fr[f] + F_REF] += 1
            l[m.th[t] + T_SPEC_PAGE] = f + 1
            l[m.th[t] + T_STEP] = SPEC_DROP
            out.append(((SPECULATIVE.get, at), l))
    return out or None


@implements(SPEC_DROP)
def speculative_put(m, s, t, op):
    """The speculative reference is dropped (the lookup re-checked and backed off, or
    finished with the page)."""
    l = s[:]
    b = m.th[t]
    put(m, l, l[b + T_SPEC_PAGE] - 1, 1)
    l[b + T_SPEC_PAGE] = 0
    l[b + T_STEP] = 0
    l[b + T_PC] += 1
    return SPECULATIVE.put, l


@starts("lru_drain")
def lru_add_drain(m, s, t, op):
    """lru_add_drain: the LRU add batch empties (its pages join the LRU, the batch's
    references are dropped); enabled while some page sits in the batch.  Repeats forever."""
    for b in m.fr:
        if s[b + F_FLAGS] & PG_LRU_BATCH:
            l = s[:]
            drain_lru_batches(m, l)
            return LRU.drain, l
    return None
