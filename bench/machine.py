"""Machine description stored with every benchmark result."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """CPU model name (from /proc/cpuinfo on Linux, sysctl on macOS)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        out = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
        if out:
            return out
    return platform.processor() or platform.machine()


def memory_bytes() -> int | None:
    """Total physical memory in bytes."""
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except ImportError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def physical_cores() -> int | None:
    try:
        import psutil

        return psutil.cpu_count(logical=False)
    except ImportError:
        return None


def filesystem(path: Path) -> str | None:
    """Filesystem type of the mount holding ``path`` (Linux only)."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return None
    target = str(path.resolve())
    best = ("", None)
    for fields in mounts:
        if len(fields) >= 3:
            mount = fields[1]
            inside = target == mount or target.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) >= len(best[0]):
                best = (mount, fields[2])
    return best[1]


def version_of(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> dict[str, Any]:
    """HEAD commit of the repository and whether the work tree has changes."""
    head = _run(["git", "-C", str(REPO), "rev-parse", "HEAD"])
    status = _run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    return {"commit": head, "dirty": bool(status) if head else None}


def _run(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def machine_info(workdir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """CPU, cores, memory, OS, Python and library versions, disk free, git commit."""
    work = Path(workdir) if workdir is not None else REPO
    disk = shutil.disk_usage(work)
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu": cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_physical": physical_cores(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_bytes": memory_bytes(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "numpy": version_of("numpy"),
        "zstandard": version_of("zstandard"),
        "memvid_py": version_of("memvid-py"),
        "workdir": str(work),
        "workdir_fs": filesystem(work),
        "disk_free_bytes": disk.free,
        "disk_total_bytes": disk.total,
        "loadavg": list(load) if load else None,
        "git": git_commit(),
    }


def summary(info: dict[str, Any]) -> str:
    """One line: cpu, cores, memory, OS, python, commit."""
    mem = info.get("memory_bytes")
    git = info.get("git") or {}
    commit = (git.get("commit") or "unknown")[:10] + ("+dirty" if git.get("dirty") else "")
    ram = f", {mem / 2**30:.1f} GiB RAM" if mem else ""
    return (f"{info['cpu']} ({info['cores_usable']} usable cores{ram}), {info['os']}, "
            f"Python {info['python']}, numpy {info['numpy']}, commit {commit}")


if __name__ == "__main__":
    import json

    print(json.dumps(machine_info(), indent=2))


def status_mb(field: str) -> float | None:
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``RssAnon``, ``VmHWM``...) in
    MB; None where ``/proc`` does not exist."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def own_peak_rss_mb() -> float:
    """This process's own peak resident memory, MB.

    ``getrusage(RUSAGE_SELF).ru_maxrss`` is not it for a child started by a large process:
    Linux folds the parent's address space's high-water mark into the child's at exec
    (a child of a 1 GB parent reports 1 GB), so a bench step run in a fresh interpreter
    by a parent that held the corpus reported the parent's peak. ``VmHWM`` is the
    high-water mark of the process's own address space; ``ru_maxrss`` stands in where
    ``/proc`` does not exist."""
    peak = status_mb("VmHWM")
    if peak is not None:
        return peak
    import resource

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024
