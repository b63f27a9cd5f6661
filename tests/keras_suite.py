"""Keras's own tests of its LSTM, run against keras_lstm.LSTM under a chosen Keras backend (the machinery
of tests/test_keras_suite.py, TensorFlow, and tests/test_on_jax.py, tests/test_on_torch.py).

The installed Keras wheel ships its layer tests (``keras/src/layers/...``). At test time each file
below is read from the installed package, rewritten so that ``layers.LSTM`` / ``layers.LSTMCell``
(also spelled ``keras.layers.…``) are ``keras_lstm.LSTM`` / ``keras_lstm.LSTMCell``, written to a
temporary folder (nothing of it is copied into this repository) and run by pytest in one subprocess.
Every test must pass; the number run is checked against a count taken from the original file's
source, so an empty or partial run cannot pass.

Files of ``keras/src/layers/rnn`` that do not use LSTM (gru, simple_rnn, rnn, time_distributed,
conv_lstm*, dropout_rnn_cell) are not run: the rewrite would leave them unchanged.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import keras

REPO = Path(__file__).resolve().parents[1]
KERAS_SRC = Path(keras.__file__).resolve().parent / "src"


@dataclass(frozen=True)
class Suite:
    path: str  # under keras/src
    only: tuple[str, ...] = ()  # "Class::test" node ids to run (all of the file when empty)
    left_out: dict[str, str] = field(default_factory=dict)  # "Class::test" -> why it is not run


SUITES = [
    Suite("layers/rnn/lstm_test.py"),
    Suite(
        "layers/rnn/bidirectional_test.py",
        left_out={
            "SimpleRNNTest::test_fused_lstm_eligibility": (
                "asserts that Bidirectional would hand a keras.layers.LSTM to Keras's fused cuDNN kernel "
                "(isinstance(layer, keras.layers.LSTM)); for keras_lstm.LSTM that must be False, since "
                "the layer runs its own recurrence"
            ),
            "SimpleRNNTest::test_torch_cudnn_bidirectional_gru_dispatch_fires": (
                "GRU on the torch backend with CUDA; it skips itself on TensorFlow"
            ),
        },
    ),
    # LSTMCell inside keras.layers.RNN / StackedRNNCells. Its test_basics also passes, but spends 18 s
    # on six stacks of other cells for one of LSTMCells, so only the two LSTMCell tests run here.
    Suite(
        "layers/rnn/stacked_rnn_cells_test.py",
        only=("StackedRNNTest::test_return_state_stacked_lstm_cell", "StackedRNNTest::test_stacked_lstm_cell_mask"),
    ),
    Suite("layers/core/masking_test.py"),
    # The one test of the saving battery that holds an LSTM (the rest never touch it).
    Suite("saving/saving_lib_test.py", only=("SavingBattleTest::test_bidirectional_lstm_saving",)),
]

_LSTM_NAME = re.compile(r"\b(?:keras\.)?(?:src\.)?layers\.(LSTM|LSTMCell)\b")


def rewrite(source: str) -> str:
    """Keras's test source with its LSTM and LSTMCell replaced by keras_lstm's."""
    return "import keras_lstm\n" + _LSTM_NAME.sub(r"keras_lstm.\1", source)


def _parameter_count(decorator: ast.expr) -> int:
    """How many cases an absl ``parameterized.parameters``/``named_parameters`` decorator makes; 1 for
    any other decorator."""
    if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)):
        return 1
    if decorator.func.attr not in ("parameters", "named_parameters", "product"):
        return 1
    args = decorator.args
    if decorator.func.attr == "product":
        n = 1
        for kw in decorator.keywords:
            if not isinstance(kw.value, (ast.List, ast.Tuple)):
                raise ValueError(f"cannot count the cases of {ast.unparse(decorator)}")
            n *= len(kw.value.elts)
        return n
    if len(args) == 1 and isinstance(args[0], (ast.List, ast.Tuple)):
        return len(args[0].elts)
    if args and not any(isinstance(a, ast.Starred) for a in args):
        return len(args)
    raise ValueError(f"cannot count the cases of {ast.unparse(decorator)}")


def expected_tests(source: str) -> dict[str, int]:
    """{"Class::test_name": number of cases} for every test method of every class in the source."""
    out = {}
    for cls in ast.parse(source).body:
        if not isinstance(cls, ast.ClassDef):
            continue
        for fn in cls.body:
            if isinstance(fn, ast.FunctionDef) and fn.name.startswith("test"):
                n = 1
                for d in fn.decorator_list:
                    n *= _parameter_count(d)
                out[f"{cls.name}::{fn.name}"] = n
    return out


def run_suites(
    folder: Path, suites: list[Suite], backend: str, extra: tuple[Path, ...] = (), env: dict | None = None
) -> dict[str, dict[str, str]]:
    """Run the suites in one pytest subprocess under ``backend``; {suite path: {"Class::test[case]": outcome}}.

    ``extra``: more test files for the same process (their results keyed by file name, tests by name);
    ``env``: more environment variables for it."""
    targets, names = [str(p) for p in extra], {p.name: p.name for p in extra}
    for suite in suites:
        source = (KERAS_SRC / suite.path).read_text()
        name = "keras_" + suite.path.replace("/", "_")
        (folder / name).write_text(rewrite(source))
        names[name] = suite.path
        if suite.only:
            targets += [f"{name}::{node}" for node in suite.only]
        else:
            targets.append(name)
            targets += [f"--deselect={name}::{node}" for node in suite.left_out]
    report = folder / "report.xml"
    env = {
        **os.environ,
        **(env or {}),
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "-o",
            "addopts=",
            "-o",
            "junit_family=xunit1",
            "--rootdir",
            str(folder),
            f"--junitxml={report}",
            *targets,
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert report.exists(), proc.stdout[-4000:] + proc.stderr[-4000:]
    results = {path: {} for path in names.values()}
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = f"{tag}: {(element.get('message') or '')[:300]}"
        # xunit1 reports give each case's file; classname ends with the class, if any
        cls = case.get("classname").rsplit(".", 1)[-1]
        test = f"{cls}::{case.get('name')}" if cls[:1].isupper() else case.get("name")
        results[names[Path(case.get("file")).name]][test] = outcome
    return results


def check_suite(suite: Suite, results: dict[str, dict[str, str]]) -> None:
    """Every selected test of the suite ran and passed, as many as the source says."""
    expected = expected_tests((KERAS_SRC / suite.path).read_text())
    for node in (*suite.only, *suite.left_out):
        assert node in expected, f"{suite.path} has no test {node} (Keras changed it; update SUITES)"
    selected = suite.only or [n for n in expected if n not in suite.left_out]
    n_expected = sum(expected[n] for n in selected)
    results = results[suite.path]
    not_passed = {name: outcome for name, outcome in results.items() if outcome != "passed"}
    assert not not_passed, f"{suite.path}: {not_passed}"
    assert len(results) == n_expected, f"{suite.path}: ran {len(results)} tests, expected {n_expected}"
