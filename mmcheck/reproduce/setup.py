"""`mmcheck kernel-check --setup`: the machine state some reproducers need (a swapfile,
free hugetlb pages, THP not `never`), made only on request and restored afterwards, also
when the check is interrupted."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

SWAPFILE = "/var/tmp/mmcheck.swap"
HUGETLB = "/proc/sys/vm/nr_hugepages"
THP = "/sys/kernel/mm/transparent_hugepage/enabled"


class SetupError(Exception):
    pass


def _read(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return f.read().strip()


def _write(path: str, value: str) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write(value)


def _meminfo(key: str) -> int:
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


@contextlib.contextmanager
def machine_setup(log=print, swap_mb: int = 512, hugepages: int = 8):
    """Make swap, hugetlb pages and THP available; undo exactly what was done on exit."""
    if os.geteuid() != 0:
        raise SetupError("--setup needs root (swapon, nr_hugepages, THP mode)")
    undo = []
    old_handler = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if _meminfo("SwapFree") == 0:
            log(f"setup: swapfile {SWAPFILE} ({swap_mb} MiB)")
            subprocess.run(["fallocate", "-l", f"{swap_mb}M", SWAPFILE], check=True)
            undo.append(lambda: os.unlink(SWAPFILE))
            os.chmod(SWAPFILE, 0o600)
            subprocess.run(["mkswap", SWAPFILE], check=True, capture_output=True)
            subprocess.run(["swapon", SWAPFILE], check=True)
            undo.append(lambda: subprocess.run(["swapoff", SWAPFILE], check=True))
        if os.path.exists(HUGETLB) and _meminfo("HugePages_Free") < 4:
            old = _read(HUGETLB)
            log(f"setup: nr_hugepages {old} -> {int(old) + hugepages}")
            _write(HUGETLB, str(int(old) + hugepages))
            undo.append(lambda: _write(HUGETLB, old))
        if os.path.exists(THP) and "[never]" in _read(THP):
            log("setup: transparent_hugepage/enabled never -> madvise")
            _write(THP, "madvise")
            undo.append(lambda: _write(THP, "never"))
        yield
    except (OSError, subprocess.CalledProcessError) as e:
        raise SetupError(f"--setup failed: {e}") from e
    finally:
        for step in reversed(undo):
            try:
                step()
            except (OSError, subprocess.CalledProcessError) as e:
                log(f"setup: could not restore a setting: {e}")
        if undo:
            log("setup: restored")
        signal.signal(signal.SIGTERM, old_handler)
