"""Page migration (mm/migrate.c), as compaction or NUMA balancing does it: one step that
unmaps the page (try_to_migrate_one: every PTE becomes a migration entry that remembers
write, soft-dirty and uffd-wp), copies it to a new page and rebuilds the PTEs
(remove_migration_pte).  The page is locked meanwhile, so faults on it wait: the
migration-entry window is not a separate state (reference write-tracking.md R8).

Simplification: a page in the swapcache, locked, in an LRU batch, or held by anything but
its mappings and the page cache (a GUP pin: folio_migrate_mapping's expected count) is
busy and not migrated."""

from __future__ import annotations

from .. import codec
from ..codec import PG_ALLOC, PG_LOCKED, PG_LRU_BATCH, PG_THP, VM_WRITE
from ..steps import MIGRATE, starts
from .common import (F_CONTENT, F_FLAGS, F_MAP, F_REF, F_SLOT, O_ENTRY, V_PTE, V_VMA,
                     alloc, op_done, pt_locked_by_other, vm_page_prot_writable)


@starts("migrate")
def migrate_pages(m, s, t, op):
    """Migrate the page mapped at the thread's page (any process may map it)."""
    p, v = m.t_proc[t], op.v
    pte = s[m.pv[p][v] + V_PTE]
    l = s[:]
    op_done(m, l, t)
    if not codec.is_present(pte):
        return MIGRATE.nothing, l
    f = codec.frame(pte)
    fb = m.fr[f]
    flags = l[fb + F_FLAGS]
    mappings = [(q, x) for q, row in enumerate(m.pv) for x, base in enumerate(row)
                if codec.frame_or_none(l[base + V_PTE]) == f]
    cached = [o for o, ob in enumerate(m.ob) if l[ob + O_ENTRY] == codec.present(f)]
    if (flags & (PG_LOCKED | PG_LRU_BATCH) or l[fb + F_SLOT]
            or l[fb + F_REF] != len(mappings) + len(cached)):
        return MIGRATE.busy, l
    if any(pt_locked_by_other(m, s, t, q, x) for q, x in mappings):
        return None  # try_to_migrate_one takes the PT lock fork holds: wait
    n = alloc(m, l, l[fb + F_CONTENT], flags & ~PG_ALLOC)
    nb = m.fr[n]
    l[nb + F_REF] = l[fb + F_REF]
    l[nb + F_MAP] = l[fb + F_MAP]
    for q, x in mappings:
        base = m.pv[q][x]
        l[base + V_PTE] = remove_migration_pte(m, l[base + V_VMA], l[base + V_PTE], n,
                                               bool(flags & PG_THP))
    for o in cached:
        l[m.ob[o] + O_ENTRY] = codec.present(n)
    l[fb + F_REF] = l[fb + F_MAP] = l[fb + F_FLAGS] = l[fb + F_CONTENT] = 0
    return MIGRATE.done, l


def remove_migration_pte(m, vma, old, new, thp) -> int:
    """remove_migration_pte: mk_pte(new, vma->vm_page_prot), writable too if the entry
    was (maybe_mkwrite), dirty and soft-dirty kept, else uffd-wp re-applied with
    pte_mkuffd_wp - which before 6.3 did not write-protect, so a writable vm_page_prot
    (a shared mapping without write notification: uffd-wp VMAs before 51d3d5eb74ff, 6.2)
    gave a writable uffd-wp PTE (reference B4).  A PMD migration entry of a THP lost
    uffd-wp until 24bf08c4376b (6.3: reference B5).  Read in 6.1 and 6.12 mm/migrate.c."""
    grant = bool(vma & VM_WRITE) and vm_page_prot_writable(m, vma)
    return codec.restored(old, new, grant, m.thp_migration_keeps_wp or not thp,
                          m.mkuffd_wp_wrprotects)
