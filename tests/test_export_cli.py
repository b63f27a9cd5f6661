"""`keras-lstm export` end to end on a tiny model, and the models the export refuses or cannot step."""

from __future__ import annotations

import keras
import pytest
from export_zoo import dynamic_time_blocker

from keras_lstm import LSTM
from keras_lstm.cli import main
from keras_lstm.export import ExportArgumentError
from keras_lstm.export.plan import plan_export

_BLOCKER = dynamic_time_blocker()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A training run directory as `keras-lstm train` leaves it: RUN/model.keras."""
    run = tmp_path_factory.mktemp("run")
    model = keras.Sequential([keras.Input((None, 2)), LSTM(4), keras.layers.Dense(1)])
    model.save(run / "model.keras")
    return run


@pytest.mark.skipif(bool(_BLOCKER), reason=_BLOCKER)
def test_cli_exports_next_versions_and_refuses_overwrite(run_dir, tmp_path, capsys):
    base = tmp_path / "models"
    args = ["export", str(run_dir), "--name", "tiny", "--base", str(base)]
    assert main(args) == 0
    assert main(args) == 0
    assert sorted(p.name for p in (base / "tiny").iterdir()) == ["1", "2"]
    assert (base / "tiny" / "2" / "saved_model.pb").is_file()
    assert (base / "models.config").is_file()
    capsys.readouterr()
    assert main([*args, "--version", "1"]) == 2
    err = capsys.readouterr().err
    assert "version" in err and "--force" in err
    before = (base / "tiny" / "1" / "saved_model.pb").stat().st_mtime_ns
    assert main([*args, "--version", "1", "--force"]) == 0
    assert (base / "tiny" / "1" / "saved_model.pb").stat().st_mtime_ns != before
    assert sorted(p.name for p in (base / "tiny").iterdir()) == ["1", "2"]


@pytest.mark.parametrize(
    ("argv", "argument"),
    [
        (["export", "{tmp}/no-such-run", "--name", "tiny"], "model"),
        (["export", "{run}", "--name", "a/b"], "name"),
    ],
)
def test_cli_bad_arguments_exit_2_with_a_message(run_dir, tmp_path, capsys, argv, argument):
    argv = [a.format(tmp=tmp_path, run=run_dir) for a in argv] + ["--base", str(tmp_path / "models")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"Argument `{argument}`" in err
    assert not (tmp_path / "models").exists()


def test_cli_refuses_a_non_positive_version(run_dir, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["export", str(run_dir), "--name", "tiny", "--base", str(tmp_path), "--version", "0"])
    assert exit_.value.code == 2


def test_branching_models_are_refused():
    x = keras.Input((None, 2))
    y = keras.layers.Concatenate()([LSTM(3, return_sequences=True)(x), x])
    with pytest.raises(ExportArgumentError) as err:
        plan_export(keras.Model(x, LSTM(2)(y)))
    assert err.value.argument == "model" and "linear" in str(err.value)


def test_models_without_an_lstm_are_refused():
    with pytest.raises(ExportArgumentError, match=r"at least one keras_lstm\.LSTM"):
        plan_export(keras.Sequential([keras.Input((None, 2)), keras.layers.Dense(1)]))


@pytest.mark.parametrize(
    ("layer", "why"),
    [
        (LSTM(3, go_backwards=True), "go_backwards"),
        (keras.layers.Bidirectional(LSTM(3)), "Bidirectional"),
    ],
)
def test_backward_models_are_not_steppable_and_say_why(layer, why):
    plan = plan_export(keras.Sequential([keras.Input((None, 2)), layer]))
    assert why in plan.not_steppable


def test_time_mixing_layers_are_not_steppable():
    model = keras.Sequential([keras.Input((None, 2)), keras.layers.Conv1D(3, 2), LSTM(3)])
    assert "Conv1D" in plan_export(model).not_steppable


class RefusesBatchesOfOne(keras.layers.Layer):
    """Runs in Keras, but fails in Session.run on a batch of one (as the warmup requests are)."""

    def call(self, x):
        import tensorflow as tf

        with tf.control_dependencies([tf.debugging.assert_greater(tf.shape(x)[0], 1, message="needs batch > 1")]):
            return tf.identity(x)


def test_a_version_failing_on_tf_servings_path_is_never_published(tmp_path):
    """The export replays its warmup requests through the session loader before publishing: a failure
    names the signature and TensorFlow's error, and leaves neither a version nor a models.config entry."""
    from keras_lstm.export import UnservableGraphError, export_model

    model = keras.Sequential([keras.Input((None, 2)), LSTM(3), RefusesBatchesOfOne(), keras.layers.Dense(1)])
    with pytest.raises(UnservableGraphError) as err:
        export_model(model, tmp_path, "fails")
    message = str(err.value)
    assert "signature 'serving_default'" in message and "needs batch > 1" in message, message
    assert not (tmp_path / "fails").exists() or not any((tmp_path / "fails").iterdir())
    assert not (tmp_path / "models.config").exists()
