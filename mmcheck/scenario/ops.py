"""The operation vocabulary of scenario programs, as data.

The loader validates scenario files against this table, the docs and the JSON Schema are
generated from it, and the model compiles each canonical op kind into its kernel-path steps.
An alias (e.g. `vmsplice`) expands to a canonical op with some fields fixed.

Field types:
  page     name of a virtual page declared under `pages:`
  ref      name of a GUP reference declared by some op's `as:` field
  newref   declares a GUP reference name (must be unique in the scenario)
  process  name of a process (declared at top level or by a fork)
  newproc  declares a process name (fork's child; unique in the scenario)
  event    name of a one-shot event (signal/await)
  bool     true / false
  choice   one of `choices`
  threads  mapping thread-name -> program (list of ops)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool = False
    default: object = None
    choices: tuple = ()
    doc: str = ""


@dataclass(frozen=True)
class OpSpec:
    name: str
    kernel: str  # the kernel path(s) the op runs through
    doc: str
    fields: tuple[Field, ...] = ()
    scalar: str | None = None  # field filled by the short form `- op: value`
    bare: bool = False  # the op may be written as a plain string `- op`
    alias_of: str | None = None  # canonical op this alias expands to
    fixed: tuple[tuple[str, object], ...] = ()  # fields an alias fixes
    example: str = ""

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None


_PAGE = Field("page", "page", required=True, doc="virtual page")
_REF = Field("ref", "ref", required=True, doc="GUP reference")

_GUP_FIELDS = (
    _PAGE,
    Field("as", "newref", required=True, doc="name of the reference this GUP takes"),
    Field("type", "choice", required=True, choices=("get", "pin"), doc="FOLL_GET or FOLL_PIN"),
    Field("access", "choice", default="read", choices=("read", "write"), doc="write = FOLL_WRITE"),
    Field("longterm", "bool", default=False, doc="FOLL_LONGTERM"),
    Field("fast", "bool", default=False, doc="try GUP-fast first (lockless), fall back to slow GUP"),
    Field(
        "coherent",
        "bool",
        default=None,
        doc="the holder expects the page to stay the owner's page (default: true for long-term pins)",
    ),
)

OPS: dict[str, OpSpec] = {}


def _add(spec: OpSpec) -> None:
    OPS[spec.name] = spec


_add(OpSpec(
    "read", "handle_mm_fault -> do_anonymous_page (read: maps the zero page)",
    "CPU load from the page; faults in the zero page if nothing is mapped.",
    (_PAGE,), scalar="page", example="- read: X"))
_add(OpSpec(
    "write", "do_anonymous_page / do_wp_page -> wp_page_reuse or wp_page_copy",
    "CPU store of a fresh, distinguishable value; write-faults first when the PTE is not writable.",
    (_PAGE,), scalar="page", example="- write: X"))
_add(OpSpec(
    "fork", "dup_mmap -> copy_page_range -> copy_present_pte",
    "fork(): creates the child process with its threads' programs; they start when fork returns.",
    (Field("child", "newproc", required=True, doc="name of the child process"),
     Field("threads", "threads", default=None, doc="thread name -> program of the child")),
    scalar="child",
    example="- fork:\n    child: B\n    threads:\n      main:\n        - write: X"))
_add(OpSpec(
    "munmap", "zap_pte_range (munmap)",
    "munmap() of the page's VMA: the mapping is gone for good.",
    (_PAGE,), scalar="page", example="- munmap: X"))
_add(OpSpec(
    "dontneed", "zap_pte_range (madvise MADV_DONTNEED)",
    "madvise(MADV_DONTNEED): drop the page; the next touch sees zeroes.",
    (_PAGE,), scalar="page", example="- dontneed: X"))
_add(OpSpec(
    "mprotect", "mprotect_fixup -> change_pte_range",
    "mprotect(): r removes write permission (PTE write-protected); rw grants it back.",
    (_PAGE, Field("prot", "choice", required=True, choices=("r", "rw"))),
    example="- mprotect: {page: X, prot: r}"))
_add(OpSpec(
    "pageout", "madvise(MADV_PAGEOUT) -> reclaim_pages -> shrink_page_list",
    "Reclaim the page now: add it to the swapcache, unmap it, write it out and free it if "
    "nothing else holds it (only pages mapped once, as madvise_cold_or_pageout_pte_range).",
    (_PAGE,), scalar="page", example="- pageout: X"))
_add(OpSpec(
    "clear_refs", "clear_refs_write (CLEAR_REFS_SOFT_DIRTY) -> clear_soft_dirty",
    "echo 4 > /proc/self/clear_refs: write-protect every PTE of the process and clear its "
    "soft-dirty bit (5.11+: except writable PTEs of maybe-pinned pages).",
    (), bare=True, example="- clear_refs"))
_add(OpSpec(
    "gup", "__get_user_pages (slow) / gup_fast (lockless) -> follow_page_pte, faultin_page",
    "get_user_pages()/pin_user_pages() on the page; the reference is held until `put`.",
    _GUP_FIELDS, example="- gup: {page: X, as: R, type: pin, access: write, longterm: true}"))
_add(OpSpec(
    "vmsplice", "vmsplice -> iov_iter_get_pages -> get_user_pages_fast (FOLL_GET, read)",
    "vmsplice() the page into a pipe: a read-only FOLL_GET reference via GUP-fast.",
    _GUP_FIELDS, alias_of="gup",
    fixed=(("type", "get"), ("access", "read"), ("longterm", False), ("fast", True)),
    example="- vmsplice: {page: X, as: pipe}"))
_add(OpSpec(
    "pin", "pin_user_pages (FOLL_PIN)",
    "pin_user_pages(): a FOLL_PIN reference (long-term unless `longterm: false`).",
    tuple(Field("longterm", "bool", default=True, doc="FOLL_LONGTERM") if f.name == "longterm" else f
          for f in _GUP_FIELDS if f.name != "type"),
    alias_of="gup", fixed=(("type", "pin"),),
    example="- pin: {page: X, as: R, access: write}"))
_add(OpSpec(
    "put", "put_page / unpin_user_page",
    "Release a GUP reference (drops 1 for FOLL_GET, GUP_PIN_COUNTING_BIAS for FOLL_PIN).",
    (_REF,), scalar="ref", example="- put: R"))
_add(OpSpec(
    "device_write", "DMA into the page behind a reference",
    "A device writes a fresh value through a R/W reference (not through the page table).",
    (_REF,), scalar="ref", example="- device_write: R"))
_add(OpSpec(
    "device_read", "DMA from the page behind a reference",
    "A device (or pipe reader) reads through a reference.",
    (_REF,), scalar="ref", example="- device_read: R"))
_add(OpSpec(
    "exit", "do_exit -> exit_mmap (zap everything) and release of the process's references",
    "The process exits (exit_group): all its threads stop, mappings and references go.",
    (), bare=True, example="- exit"))
_add(OpSpec(
    "wait", "wait4",
    "Block until the named process has exited.",
    (Field("process", "process", required=True),), scalar="process", example="- wait: B"))
_add(OpSpec(
    "signal", "(scenario synchronisation)",
    "Raise a one-shot event that `await` steps wait for (orders steps across threads).",
    (Field("event", "event", required=True),), scalar="event", example="- signal: pinned"))
_add(OpSpec(
    "await", "(scenario synchronisation)",
    "Block until the event has been signalled.",
    (Field("event", "event", required=True),), scalar="event", example="- await: pinned"))


# ----------------------------------------------------------------------------- write tracking
_RESULT = Field("result", "choice", default=None, choices=("ok", "error"),
                doc="the result the kernel of the era must give (checked by op-expectations)")
_add(OpSpec(
    "uffd_register", "userfaultfd_register (UFFDIO_API + UFFDIO_REGISTER, mode WP)",
    "Register the page's VMA with the process's userfaultfd in write-protect mode (EINVAL "
    "where the era cannot write-protect that memory or lacks a feature).",
    (_PAGE, Field("features", "flags", default=(), choices=("event_fork", "event_remap",
                                                             "wp_unpopulated"),
                  doc="UFFDIO_API features: event_fork, event_remap, wp_unpopulated"),
     _RESULT),
    scalar="page", example="- uffd_register: {page: X, features: [event_fork]}"))
_add(OpSpec(
    "uffd_unregister", "userfaultfd_unregister (UFFDIO_UNREGISTER)",
    "Unregister the page's VMA: its uffd-wp bits and markers are cleared, waiters woken.",
    (_PAGE, _RESULT), scalar="page", example="- uffd_unregister: X"))
_add(OpSpec(
    "uffd_wp", "mwriteprotect_range -> change_protection(MM_CP_UFFD_WP)",
    "UFFDIO_WRITEPROTECT with MODE_WP: write-protect the page (ENOENT if not registered).",
    (_PAGE, _RESULT), scalar="page", example="- uffd_wp: X"))
_add(OpSpec(
    "uffd_unwp", "mwriteprotect_range -> change_protection(MM_CP_UFFD_WP_RESOLVE)",
    "UFFDIO_WRITEPROTECT clearing MODE_WP: unprotect the page and wake the threads blocked "
    "on it (unless dontwake).",
    (_PAGE, Field("dontwake", "bool", default=False, doc="UFFDIO_WRITEPROTECT_MODE_DONTWAKE"),
     _RESULT),
    scalar="page", example="- uffd_unwp: X"))
_add(OpSpec(
    "uffd_read", "userfaultfd_read (read(2) on the uffd)",
    "The monitor reads one uffd-wp fault message (blocks until there is one).",
    (Field("process", "process", default=None,
           doc="whose userfaultfd (default: the thread's own process)"),),
    bare=True, example="- uffd_read"))
_add(OpSpec(
    "uffd_wake", "userfaultfd_wake (UFFDIO_WAKE)",
    "Wake the threads blocked on a uffd fault at the page (they retry the access).",
    (_PAGE,), scalar="page", example="- uffd_wake: X"))
_add(OpSpec(
    "pagemap_read", "pagemap_read -> pagemap_pte_range (/proc/pid/pagemap)",
    "Read the page's pagemap entry: soft-dirty (bit 55), uffd-wp (bit 57, 5.14+), swapped, "
    "present; optional fields say what the read must return (checked by op-expectations).",
    (_PAGE, Field("soft_dirty", "bool", default=None, doc="expected bit 55"),
     Field("uffd_wp", "bool", default=None, doc="expected bit 57"),
     Field("present", "bool", default=None, doc="expected bit 63"),
     Field("swapped", "bool", default=None, doc="expected bit 62")),
    scalar="page", example="- pagemap_read: {page: X, soft_dirty: true}"))
_add(OpSpec(
    "mremap", "mremap(MREMAP_MAYMOVE | MREMAP_FIXED) -> move_vma -> move_page_tables",
    "Move the page's private anonymous VMA to another page's address (which must be "
    "unmapped); the moved PTE is soft-dirty; without EVENT_REMAP the new VMA is not "
    "registered for uffd-wp.",
    (_PAGE, Field("to", "page", required=True, doc="the destination (an unmapped page)"),
     _RESULT),
    example="- mremap: {page: X, to: Y}"))
_add(OpSpec(
    "migrate", "migrate_pages (compaction / NUMA balancing): try_to_migrate, "
               "remove_migration_ptes",
    "Migrate the page mapped at the address to a new frame (fails if anything but its "
    "mappings holds it, e.g. a pin); the PTEs are rebuilt from the migration entries.",
    (_PAGE, _RESULT), scalar="page", example="- migrate: X"))
_add(OpSpec(
    "mmap", "mmap_region (MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)",
    "Map new private anonymous memory at an unmapped page (VM_SOFTDIRTY: it counts as "
    "dirty); it may merge with a neighbouring VMA of the same flags.",
    (_PAGE, Field("prot", "choice", default="rw", choices=("rw", "r"),
                  doc="PROT_READ|PROT_WRITE or PROT_READ"), _RESULT),
    scalar="page", example="- mmap: X"))


def canonical(name: str) -> OpSpec:
    """The canonical OpSpec an op name (possibly an alias) stands for."""
    spec = OPS[name]
    return OPS[spec.alias_of] if spec.alias_of else spec
