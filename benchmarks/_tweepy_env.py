"""A separate virtualenv holding tweepy 4.12.1, for comparison benchmarks.

tweepy 4.12.1 pins ``requests-oauthlib<2`` and ``oauthlib<4``, which conflict with the dev
venv, so it lives in ``benchmarks/.venv-tweepy`` (git-ignored), created on first use with
``python -m venv`` and ``pip install tweepy==4.12.1 orjson`` and reused afterwards.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TWEEPY_VERSION = "4.12.1"
VENV_DIR = Path(__file__).resolve().parent / ".venv-tweepy"


def _python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def _installed_version(python: Path) -> str | None:
    if not python.exists():
        return None
    probe = subprocess.run(
        [str(python), "-c", "import tweepy, orjson; print(tweepy.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def ensure_tweepy_python(venv: Path = VENV_DIR, *, quiet: bool = False) -> Path:
    """The python of a venv with tweepy ``TWEEPY_VERSION`` and orjson, creating it if needed."""
    python = _python(venv)
    if _installed_version(python) == TWEEPY_VERSION:
        return python
    if not quiet:
        print(f"creating {venv} with tweepy=={TWEEPY_VERSION} (first run only) ...", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"tweepy=={TWEEPY_VERSION}",
            "orjson",
        ],
        check=True,
    )
    version = _installed_version(python)
    if version != TWEEPY_VERSION:
        raise RuntimeError(f"{venv}: expected tweepy {TWEEPY_VERSION}, found {version}")
    return python


if __name__ == "__main__":
    print(ensure_tweepy_python())
