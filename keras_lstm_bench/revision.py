"""The layer as it was at a git revision, importable beside the working tree's, for in-process A/B timing.

Speed changes on the 2-core development machine move figures by less than the machine moves from one
process to the next, so a change is judged by timing old and new code in one process, interleaved.
:func:`lstm_at_revision` exports ``keras_lstm/`` at a revision (``git archive``) into a temporary
folder under another package name (``keras_lstm_at_<sha>``: every ``keras_lstm`` in its sources is
renamed, so its modules, its Keras registrations and its compiled functions are its own) and returns
its ``LSTM`` class. ``bench/fit.py --against REV`` trains it beside the others.
"""

from __future__ import annotations

import importlib
import io
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

__all__ = ["RevisionError", "lstm_at_revision"]

PACKAGE = "keras_lstm"


class RevisionError(ValueError):
    """A revision that cannot be loaded: not a git checkout, an unknown revision, or no keras_lstm/ in it."""


def _git(repo: Path, *args: str) -> bytes:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True).stdout
    except FileNotFoundError as e:
        raise RevisionError("--against needs git on PATH; it was not found") from e
    except subprocess.CalledProcessError as e:
        raise RevisionError(f"git {' '.join(args)} failed in {repo}: {e.stderr.decode().strip()}") from e


def lstm_at_revision(rev: str, repo: Path | None = None) -> type:
    """``keras_lstm.LSTM`` as committed at ``rev`` (any name git accepts: a sha, ``HEAD~1``, a branch).

    repo: the checkout to read (default: the one this module lives in)."""
    repo = Path(repo or Path(__file__).resolve().parent.parent)
    try:
        sha = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").decode().strip()
    except RevisionError as e:
        raise RevisionError(f"--against: {rev!r} is not a commit of the git checkout at {repo}") from e
    name = f"{PACKAGE}_at_{sha[:10]}"
    if name not in sys.modules:
        archive = _git(repo, "archive", "--format=tar", sha, PACKAGE)
        root = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(root, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        if not (root / PACKAGE / "__init__.py").is_file():
            raise RevisionError(f"revision {rev!r} ({sha[:10]}) has no {PACKAGE}/ package")
        (root / PACKAGE).rename(root / name)
        for source in (root / name).rglob("*.py"):
            source.write_text(re.sub(rf"\b{PACKAGE}\b", name, source.read_text()))
        sys.path.insert(0, str(root))
    return importlib.import_module(name).LSTM
