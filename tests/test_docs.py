"""The documentation builds, and its examples run (STYLE rule 16: examples are run).

`mkdocs build --strict` must pass (a broken link or anchor, or a page left out of the nav, fails it). Every
```python block of the README and of docs/ runs, in order, one namespace per page, in a temporary
directory. A block preceded by `<!-- docs-test: server -->` runs against a local server that this module
starts, serving an exported `adding` model (2 features, LSTM(32)) at the address the block writes as
localhost:8500; one preceded by `<!-- docs-test: skip (why) -->` is not run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from serving_helpers import ServerProcess

from keras_lstm import LSTM
from keras_lstm.export import export_model

REPO = Path(__file__).resolve().parents[1]
PAGES = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "docker" / "README.md",
    REPO / "models" / "README.md",
]
MARKER = re.compile(r"^<!-- docs-test: (server|skip \(.+\)) -->$")
FENCE = re.compile(r"^```python\s*$")
ADDRESS = "localhost:8500"


def python_blocks(page: Path) -> list[tuple[int, str, str]]:
    """(line number, marker or "", code) of every ```python block, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if FENCE.match(lines[i]):
            start = i + 1
            end = next(j for j in range(start, len(lines)) if lines[j].startswith("```"))
            before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            marker = MARKER.match(before.strip())
            blocks.append((start + 1, marker.group(1) if marker else "", "\n".join(lines[start:end]) + "\n"))
            i = end
        i += 1
    return blocks


def test_the_markers_are_recognised():
    """Every docs-test marker in the pages sits right before a python block (a typo would run the block
    without its server, or silently skip nothing)."""
    for page in PAGES:
        text = page.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(text):
            if line.startswith("<!-- docs-test"):
                assert MARKER.match(line), f"{page.name}:{n + 1}: {line}"
                following = next(t for t in text[n + 1 :] if t.strip())
                assert FENCE.match(following), f"{page.name}:{n + 1}: no python block after the marker"


def test_mkdocs_build_strict(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(REPO / "mkdocs.yml"),
            "-d",
            str(tmp_path / "site"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").is_file() and (tmp_path / "site" / "client" / "index.html").is_file()


def test_every_page_is_in_the_nav():
    nav = (REPO / "mkdocs.yml").read_text()
    for page in (REPO / "docs").glob("*.md"):
        assert f": {page.name}" in nav, page.name


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory):
    """The local server with an untrained `adding` model: (None, 2) -> LSTM(32) -> Dense(1)."""
    work = tmp_path_factory.mktemp("docs-server")
    model = keras.Sequential([keras.Input((None, 2)), LSTM(32), keras.layers.Dense(1)])
    export_model(model, work / "models", "adding")
    proc = ServerProcess(["--model-config", str(work / "models" / "models.config")], work)
    try:
        yield proc.wait_listening()
    finally:
        proc.terminate()


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: str(p.relative_to(REPO)))
def test_the_python_blocks_run(page, request, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    ran = 0
    for line, marker, block in python_blocks(page):
        if marker.startswith("skip"):
            continue
        code = block
        if marker == "server":
            assert ADDRESS in code, f"{page.name}:{line}: a server block must use {ADDRESS}"
            code = code.replace(ADDRESS, request.getfixturevalue("docs_server"))
        exec(compile(code, f"{page.relative_to(REPO)}:{line}", "exec"), namespace)
        ran += 1
    assert ran, f"{page.name}: every python block is skipped"
