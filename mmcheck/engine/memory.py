"""How much memory a search may use: the resident size of the searching processes against a
limit (``--max-memory``), so a search too big for the machine stops cleanly with its partial
result instead of meeting the kernel's OOM killer."""

from __future__ import annotations

import os
import re

CHECK_EVERY = 16_384      # stored states between two looks at the resident size
DEFAULT_SHARE = 0.85      # of the memory available when the search starts

_PAGE = os.sysconf("SC_PAGE_SIZE")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (this one by default); 0 if it is gone."""
    try:
        with open(f"/proc/{pid or 'self'}/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (the kernel's estimate of what can be allocated
    without swapping)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise OSError("no MemAvailable in /proc/meminfo")


def default_limit() -> int:
    """~85% of what this process could grow to now: its own size plus what is available."""
    return int(DEFAULT_SHARE * (available_bytes() + rss_bytes()))


def parse_size(text: str) -> int:
    """'20G', '512M', '1.5G', '1000000' (bytes) -> bytes; ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"'{text}' is not a size (e.g. 20G, 512M)")
    value = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if value <= 0:
        raise ValueError(f"'{text}' is not a positive size")
    return value


def format_size(n: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if n >= _UNITS[unit]:
            return f"{n / _UNITS[unit]:.1f} {unit}iB"
    return f"{n} B"
