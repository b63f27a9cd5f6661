"""The package's metadata and its extras: the version in one place, the public surface, each extra's modules
as pyproject.toml lists their distributions, and the one-line error of a command or import whose extra is
missing (a missing module is simulated with ``sys.modules[name] = None``, which makes ``find_spec`` answer
None as for an absent package; tests/test_wheel.py checks the same in a real environment without them)."""

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import keras_lstm
from keras_lstm import extras
from keras_lstm.cli import COMMANDS, main

REPO = Path(__file__).resolve().parents[1]
REQUIRES = [Requirement(text) for text in importlib.metadata.requires("keras-lstm") or []]  # the installed metadata
EXTRA_NAMES = set(importlib.metadata.metadata("keras-lstm").get_all("Provides-Extra") or [])


def test_all_names_the_lazy_exports():
    assert sorted(keras_lstm.__all__) == sorted([*keras_lstm._EXPORTS, "load_all"])
    assert len(set(keras_lstm.__all__)) == len(keras_lstm.__all__)


def test_the_version_has_one_source(capsys):
    project = (REPO / "pyproject.toml").read_text().split("\n[project]\n", 1)[1].split("\n[", 1)[0]  # its table
    assert re.search(r'^dynamic = \["version"\]', project, re.M) and not re.search(r"^version =", project, re.M)
    assert importlib.metadata.version("keras-lstm") == keras_lstm.__version__  # the installed metadata
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"keras-lstm {keras_lstm.__version__}"
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(keras_lstm.__version__)} - \d{{4}}-\d\d-\d\d$", changelog, re.M)


def _distributions(extra: str) -> set[str]:
    """The distributions an extra installs, with this project's own extras it names expanded."""
    names = set()
    for requirement in REQUIRES:
        if requirement.marker is None or not requirement.marker.evaluate({"extra": extra}):
            continue
        if requirement.name == "keras-lstm":
            for inner in requirement.extras:
                names |= _distributions(inner)
        else:
            names.add(requirement.name)
    return names


@pytest.mark.parametrize("extra", sorted(extras.EXTRAS))
def test_each_extra_installs_the_modules_its_check_names(extra):
    provided = importlib.metadata.packages_distributions()
    installs = {canonicalize_name(d) for d in _distributions(extra)}
    for module, dist in extras.EXTRAS[extra].items():
        assert canonicalize_name(dist) in installs, f"[{extra}] checks {module}; pyproject.toml does not install {dist}"
        assert canonicalize_name(dist) in {canonicalize_name(d) for d in provided[module]}, provided[module]


def test_the_core_is_keras_and_numpy_and_all_is_every_extra():
    assert sorted(r.name for r in REQUIRES if r.marker is None) == ["keras", "numpy"]
    every = EXTRA_NAMES - {"all", "dev", "docs"}
    assert _distributions("all") == set().union(*(_distributions(e) for e in every))
    assert {command.extra for command in COMMANDS.values()} <= set(extras.EXTRAS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_without_its_extra_names_it_in_one_line(command, monkeypatch, capsys):
    extra = COMMANDS[command].extra
    absent = list(extras.EXTRAS[extra])[-1]  # one of its modules
    monkeypatch.setitem(sys.modules, absent, None)
    assert main([command, "--help"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"keras-lstm {command} needs {extras.EXTRAS[extra][absent]}" in err
    assert f"pip install 'keras-lstm[{extra}]'" in err


IMPORT_WITHOUT = """
import sys
sys.modules[{module!r}] = None  # as if not installed
import keras_lstm  # cheap: the backend is imported at the first use
try:
    keras_lstm.LSTM
except Exception as err:
    print(type(err).__name__, "|", err)
"""


@pytest.mark.parametrize(("backend", "module"), [(None, "tensorflow"), ("jax", "jax"), ("torch", "torch")])
def test_importing_on_a_backend_whose_package_is_absent_names_the_extra(backend, module):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    if backend:
        env["KERAS_BACKEND"] = backend
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_WITHOUT.format(module=module)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    kind, message = done.stdout.strip().split(" | ", 1)
    assert kind == "KerasBackendError"
    assert f"pip install 'keras-lstm[{module}]'" in message and f"{module!r} backend" in message


def test_library_calls_without_their_extra_raise_missing_extra(monkeypatch):
    from keras_lstm.export import export_model
    from keras_lstm.train import TrainConfig, train

    monkeypatch.setitem(sys.modules, "statsmodels", None)
    with pytest.raises(extras.MissingExtraError, match=r"keras_lstm\.train needs statsmodels.*keras-lstm\[train\]"):
        train(TrainConfig("adding"))
    monkeypatch.setitem(sys.modules, "tensorflow_serving", None)
    with pytest.raises(extras.MissingExtraError, match=r"tensorflow-serving-api.*keras-lstm\[tensorflow\]"):
        export_model(None, "unused", "unused")


def test_the_client_distribution_carries_the_same_version():
    """clients/python packages serving's client modules alone, without keras_lstm, so its setuptools cannot
    read keras_lstm/_version.py; its version is written there and kept equal here."""
    text = (REPO / "clients" / "python" / "pyproject.toml").read_text()
    assert re.search(r'^version = "([^"]+)"', text, re.M).group(1) == keras_lstm.__version__
