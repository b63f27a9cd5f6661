"""Publishing rules of the export, on plain directories: names, versions, atomic rename, models.config, MODEL paths."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from keras_lstm.export import ExportArgumentError, ModelNotFoundError, VersionExistsError
from keras_lstm.export.publish import check_name, choose_version, exchange_paths, register_model, staged_version
from keras_lstm.export.source import resolve_model_path

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["a/b", "../x", "", ".hidden", "a\\b", "x y", "/abs"])
def test_names_with_separators_or_dots_are_refused(name):
    with pytest.raises(ExportArgumentError) as err:
        check_name(name)
    assert err.value.argument == "name" and err.value.value == name
    assert "path separator" in str(err.value)


def test_plain_names_pass():
    assert check_name("adding-v2.1_x") == "adding-v2.1_x"


def test_next_version_ignores_temp_dirs_and_files(tmp_path):
    for d in ("1", "3", ".tmp-7-123", "notes"):
        (tmp_path / d).mkdir()
    (tmp_path / "9").write_text("a file, not a version")
    assert choose_version(tmp_path, None, force=False) == 4
    assert choose_version(tmp_path / "new", None, force=False) == 1


@pytest.mark.parametrize("bad", [0, -1, True, "2"])
def test_version_must_be_a_positive_integer(tmp_path, bad):
    with pytest.raises(ExportArgumentError) as err:
        choose_version(tmp_path, bad, force=False)
    assert err.value.argument == "version"


def test_existing_version_needs_force(tmp_path):
    (tmp_path / "2").mkdir()
    with pytest.raises(VersionExistsError) as err:
        choose_version(tmp_path, 2, force=False)
    assert "--force" in str(err.value)
    assert choose_version(tmp_path, 2, force=True) == 2


def test_publish_is_a_rename_of_a_non_integer_temp_dir(tmp_path):
    with staged_version(tmp_path, 5) as tmp:
        assert not tmp.name.isdigit() and tmp.parent == tmp_path
        (tmp / "saved_model.pb").write_text("x")
        assert not (tmp_path / "5").exists()  # nothing visible before the rename
    assert (tmp_path / "5" / "saved_model.pb").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["5"]


def test_failed_publish_leaves_nothing(tmp_path):
    def save_half_then_fail():
        with staged_version(tmp_path, 1) as tmp:
            (tmp / "half").write_text("half-written")
            raise RuntimeError("saving failed")

    with pytest.raises(RuntimeError):
        save_half_then_fail()
    assert list(tmp_path.iterdir()) == []


def test_existing_version_is_kept_without_force_and_replaced_with_it(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "old").write_text("old")
    with pytest.raises(VersionExistsError), staged_version(tmp_path, 1) as tmp:
        (tmp / "new").write_text("new")
    assert [p.name for p in (tmp_path / "1").iterdir()] == ["old"]
    with staged_version(tmp_path, 1, force=True) as tmp:
        (tmp / "new").write_text("new")
    assert [p.name for p in (tmp_path / "1").iterdir()] == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_force_swaps_the_version_in_one_step(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "from_a").write_text("a"), (b / "from_b").write_text("b")
    assert exchange_paths(a, b)  # tmpfs and ext4 both support RENAME_EXCHANGE
    assert [p.name for p in a.iterdir()] == ["from_b"] and [p.name for p in b.iterdir()] == ["from_a"]
    with pytest.raises(FileNotFoundError):
        exchange_paths(a, tmp_path / "missing")
    assert [p.name for p in a.iterdir()] == ["from_b"]  # a failed swap changes nothing


def test_adding_a_model_keeps_the_config_files_comments(tmp_path):
    path = tmp_path / "models.config"
    path.write_text((REPO / "models" / "models.config").read_text())  # the repository's, comments and all
    before = _parse(path)
    assert register_model(path, "charlm")
    text = path.read_text()
    assert text.startswith((REPO / "models" / "models.config").read_text().rsplit("}", 1)[0])
    assert text.count("#") == (REPO / "models" / "models.config").read_text().count("#")
    after = _parse(path)
    assert after.model_config_list.config[:-1] == before.model_config_list.config
    assert (after.model_config_list.config[-1].name, after.model_config_list.config[-1].base_path) == (
        "charlm",
        "/models/charlm",
    )


def _parse(path):
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(path.read_text(), config)
    return config


def test_models_config_is_created_and_extended_keeping_other_entries(tmp_path):
    path = tmp_path / "models.config"
    assert register_model(path, "adding")
    path.write_text(path.read_text().replace('"/models/adding"', '"/custom/adding"'))
    text = path.read_text().replace(
        "model_config_list {",
        'model_config_list {\n  config { name: "other" base_path: "/models/other" model_version_policy { all {} } }',
        1,
    )
    path.write_text(text)
    before = path.read_bytes()
    assert not register_model(path, "adding")  # present: the file is left alone
    assert path.read_bytes() == before
    assert register_model(path, "copy")
    entries = {c.name: c for c in _parse(path).model_config_list.config}
    assert [c.name for c in _parse(path).model_config_list.config] == ["other", "adding", "copy"]
    assert entries["adding"].base_path == "/custom/adding"
    assert entries["other"].model_version_policy.HasField("all")
    assert entries["copy"].base_path == "/models/copy" and entries["copy"].model_platform == "tensorflow"
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_unparseable_models_config_is_an_argument_error(tmp_path):
    path = tmp_path / "models.config"
    path.write_text("model_config_list { nonsense: 1 }")
    with pytest.raises(ExportArgumentError) as err:
        register_model(path, "x")
    assert err.value.argument == "models.config"


def test_model_path_resolution(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    for i, name in enumerate(["epoch-002.keras", "epoch-010.keras", "epoch-001.keras"]):
        (run / "checkpoints" / name).write_text("")
        os.utime(run / "checkpoints" / name, ns=(10**9 * (i + 1), 10**9 * (i + 1)))
    assert resolve_model_path(run) == run / "checkpoints" / "epoch-001.keras"  # the newest, not the last name
    (run / "model.keras").write_text("")
    assert resolve_model_path(run) == run / "model.keras"
    assert resolve_model_path(run / "model.keras") == run / "model.keras"


@pytest.mark.parametrize("what", ["missing", "empty_dir", "not_keras"])
def test_missing_model_is_a_clear_error(tmp_path, what):
    path = {"missing": tmp_path / "nope", "empty_dir": tmp_path, "not_keras": tmp_path / "model.h5"}[what]
    if what == "not_keras":
        path.write_text("")
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model_path(path)
    assert err.value.argument == "model" and str(path) in str(err.value)
    assert "run directory" in str(err.value)
