#!/usr/bin/env python3
"""The packaging check CI runs (``make dist-check``): what a packager would be handed.

1. ``python -m build``: an sdist, then a wheel built *from that sdist* (so a file missing from
   the sdist fails here, not on a packager's machine). The build runs in build's isolated
   environment, which installs ``[build-system] requires`` (``setuptools>=68``) from PyPI:
   that is how pip and every packager build rxtweet, and the project venv's setuptools is
   older than the floor pyproject.toml declares.
2. ``twine check --strict`` on both (the README renders as the PyPI description).
3. The wheel is installed into a fresh venv with its runtime dependencies only (no extras),
   and, from outside the source tree, the installed package must have: every module and
   data file of the source tree (``py.typed``, ``rxtweet/testing/data/*``), the ``rxtweet``
   console script (``rxtweet --help``), the ``pytest11`` entry point, ``import rxtweet`` and
   ``import rxtweet.testing`` working with no dev tool present, and complete metadata
   (version, ``Typing :: Typed``, project URLs, keywords).

Usage: ``python scripts/check_dist.py [--keep DIR]`` (default: a temporary directory).
Exit status 0 when every check passes, 1 otherwise; each check prints one line.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run inside the fresh venv, from a directory outside the source tree.
INSTALLED_CHECK = r"""
import importlib, importlib.metadata as md, json, pathlib, sys
import rxtweet, rxtweet.testing, rxtweet.v1, rxtweet.v2
root = pathlib.Path(rxtweet.__file__).parent
dist = md.distribution("rxtweet")
meta = dist.metadata
dev = []
for name in ("pytest", "mkdocs", "ruff", "mypy", "hypothesis", "responses"):
    try:
        importlib.import_module(name)
        dev.append(name)
    except ImportError:
        pass
print(json.dumps({
    "file": str(rxtweet.__file__),
    "version": rxtweet.__version__,
    "files": sorted(str(p.relative_to(root.parent)) for p in root.rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts),
    "classifiers": meta.get_all("Classifier") or [],
    "urls": meta.get_all("Project-URL") or [],
    "keywords": meta.get("Keywords") or "",
    "entry_points": sorted(f"{e.group}:{e.name}" for e in dist.entry_points),
    "dev_installed": dev,
}))
"""


def run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(  # noqa: S603 (our own commands, no shell)
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(
            f"FAIL: {' '.join(map(str, args))} exited {done.returncode}\n"
            f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return done.stdout


def source_files() -> list[str]:
    """The files the wheel must hold: every module, and the package data pyproject declares."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["rxtweet"]
    files = []
    for path in (ROOT / "rxtweet").rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        relative = path.relative_to(ROOT / "rxtweet").as_posix()
        if path.suffix == ".py" or any(fnmatch.fnmatch(relative, p) for p in patterns):
            files.append(f"rxtweet/{relative}")
    return sorted(files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it (default: temporary)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rxtweet-dist-") as scratch:
        work = args.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        return check(work)


def check(work: Path) -> int:
    failures: list[str] = []

    def expect(ok: bool, what: str) -> None:
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    dist = work / "dist"
    run(sys.executable, "-m", "build", "--outdir", dist, ROOT)  # sdist, then wheel from it
    sdists = sorted(dist.glob("rxtweet-*.tar.gz"))
    wheels = sorted(dist.glob("rxtweet-*-py3-none-any.whl"))
    expect(len(sdists) == 1 and len(wheels) == 1, f"built {[p.name for p in dist.iterdir()]}")
    sdist, wheel = sdists[0], wheels[0]

    run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel)
    expect(True, "twine check --strict: sdist and wheel")

    wanted = source_files()
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
    missing = [f for f in wanted if f not in in_wheel]
    expect(not missing, f"wheel holds the {len(wanted)} source files of rxtweet/ {missing or ''}")
    expect("rxtweet/py.typed" in in_wheel, "wheel holds rxtweet/py.typed")
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    expect(
        {"pyproject.toml", "README.md", "rxtweet/py.typed"} <= in_sdist,
        "sdist holds pyproject.toml, README.md, rxtweet/py.typed",
    )

    venv = work / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel)
    outside = work / "elsewhere"  # not ROOT: `import rxtweet` must find the installed copy
    outside.mkdir(exist_ok=True)
    report = json.loads(run(python, "-c", INSTALLED_CHECK, cwd=outside))
    expect(
        report["file"].startswith(str(venv)), f"import rxtweet: the installed copy {report['file']}"
    )
    version = run(sys.executable, "-c", "import rxtweet; print(rxtweet.__version__)").strip()
    expect(report["version"] == version, f"version {report['version']} (source: {version})")
    expect(not report["dev_installed"], f"no dev extras in the venv {report['dev_installed']}")
    missing = [f for f in wanted if f not in report["files"]]
    expect(not missing, f"installed: every module and data file, py.typed {missing or ''}")
    data = [f for f in wanted if f.startswith("rxtweet/testing/data/")]
    expect(
        all(f in report["files"] for f in data),
        f"installed: rxtweet/testing/data files ({len(data)} declared in the source tree)",
    )
    expect("Typing :: Typed" in report["classifiers"], "classifier Typing :: Typed")
    expect(
        any(u.startswith("Documentation, ") for u in report["urls"]),
        f"project URLs {report['urls']}",
    )
    expect(bool(report["keywords"]), "keywords")
    expect(
        {"console_scripts:rxtweet", "pytest11:rxtweet"} <= set(report["entry_points"]),
        f"entry points {report['entry_points']}",
    )
    usage = run(venv / "bin" / "rxtweet", "--help", cwd=outside)
    expect("usage: rxtweet" in usage, "the rxtweet console script runs (rxtweet --help)")

    print("packaging check:", "FAILED" if failures else "passed", f"({sdist.name}, {wheel.name})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
