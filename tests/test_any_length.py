"""Every task's model takes sequences of any length: trained (or built) at T, exported, and served by the
local server, it answers sequences shorter and longer than T with what the Keras model computes on them
(issue 23). The oracle is the Keras model itself, called in this process on the same arrays."""

import keras
import numpy as np
import pytest
from serving_helpers import ServerProcess

from keras_lstm.export import export_model
from keras_lstm.train import tasks
from keras_lstm.train.config import TrainConfig
from keras_lstm.train.problems import make_task
from keras_lstm.train.runner import train
from serving import Client

T = 12  # the length every model is trained or built at
LENGTHS = (3, T, 3 * T)  # shorter, the same, longer


def _inputs(name: str, rng: np.random.Generator, length: int, vocabulary: int) -> np.ndarray:
    if name == "adding":
        pairs = rng.uniform(-1, 1, (2, length, 2)).astype(np.float32)
        pairs[..., 1] = (rng.random((2, length)) < 0.1).astype(np.float32)
        return pairs
    if name == "copy":
        return np.eye(tasks.COPY_CLASSES, dtype=np.float32)[rng.integers(0, tasks.COPY_CLASSES, (2, length))]
    if name == "co2":
        return rng.normal(size=(2, length, 1)).astype(np.float32)
    return rng.integers(0, vocabulary, (2, length)).astype(np.int32)  # charlm: character ids


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """adding trained for a few steps (its saved model.keras, as `keras-lstm export` reads it); copy, co2
    and charlm built by their tasks at T. All four exported to one base and served by one server."""
    work = tmp_path_factory.mktemp("any-length")
    run = train(
        TrainConfig("adding", length=T, units=4, steps_per_epoch=2, epochs=1, validation_size=8, seed=0, verbose=0),
        run_dir=str(work / "run"),
    ).run_dir
    models = {"adding": keras.saving.load_model(f"{run}/model.keras", compile=False)}
    for name in ("copy", "co2", "charlm"):
        cfg = TrainConfig(name, length=T, units=4, seed=0, max_chars=5000).resolved()
        models[name] = make_task(cfg).build_model()
    for name, model in models.items():
        assert model.inputs[0].shape[1] is None, name  # the time dimension is left open
        export_model(model, work / "models", name)
    proc = ServerProcess(["--model-config", str(work / "models" / "models.config")], work)
    try:
        proc.wait_listening()
        yield proc.target, models
    finally:
        proc.terminate()


@pytest.mark.parametrize("name", ["adding", "copy", "co2", "charlm"])
def test_served_model_answers_any_length_as_keras_does(served, name):
    target, models = served
    model = models[name]
    vocabulary = model.get_layer("embedding").input_dim if name == "charlm" else 0
    rng = np.random.default_rng(23)
    with Client(target, model=name, timeout_s=30.0) as client:
        client.wait_until_ready(timeout_s=120)
        sequences = client.metadata().signatures["serving_default"].inputs["sequences"]
        assert sequences.shape[:2] == (None, None), sequences.describe()  # batch and time unknown
        for length in LENGTHS:
            x = _inputs(name, rng, length, vocabulary)
            served_out = client.predict(x)["outputs"]
            want = np.asarray(model(x))
            assert served_out.shape == want.shape, (length, served_out.shape, want.shape)
            np.testing.assert_allclose(served_out, want, atol=1e-5, err_msg=f"{name} at length {length}")


@pytest.mark.parametrize("name", ["charlm", "copy"])
def test_a_stream_of_any_length_ends_where_the_whole_sequence_does(served, name):
    """Streams of token ids ([batch] per step, charlm) and of features ([batch, features], copy), longer
    than T: the last step's output equals the whole sequence's last output."""
    target, models = served
    vocabulary = models[name].get_layer("embedding").input_dim if name == "charlm" else 0
    x = _inputs(name, np.random.default_rng(5), 2 * T, vocabulary)
    with Client(target, model=name, timeout_s=30.0) as client:
        client.wait_until_ready(timeout_s=120)
        whole = client.predict(x)["outputs"]
        with client.stream(batch_size=2) as stream:
            for t in range(x.shape[1]):
                y_t = stream.step(x[:, t].tolist())  # a list: converted to int32 / float32
    np.testing.assert_allclose(y_t, whole[:, -1], atol=1e-5)
