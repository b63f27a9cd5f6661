"""Which Keras backends the layer accepts: TensorFlow, JAX and torch; any other raises KerasBackendError,
which names the backend and the fix. On JAX and torch, importing the package and building and calling the
layer import no TensorFlow. Each case runs in a fresh interpreter, since Keras reads KERAS_BACKEND once,
at import."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

IMPORT = """
try:
    import keras_lstm
except Exception as err:
    print(type(err).__module__ + "." + type(err).__name__, "|", err.backend, "|", err)
"""

# Imported on TensorFlow, then Keras is switched to numpy in the same process: building the layer
# is refused.
BUILD = """
import keras, keras_lstm
keras.config.set_backend("numpy")
try:
    keras_lstm.LSTM(3)
except Exception as err:
    print(type(err).__module__ + "." + type(err).__name__, "|", err.backend, "|", err)
"""

# The layer on JAX or torch, built, called and trained: TensorFlow never imported, and grpc and matplotlib
# made unimportable (Keras itself imports matplotlib when it can, for keras.visualization).
NO_TENSORFLOW = """
import sys
sys.modules.update(grpc=None, matplotlib=None)  # as if not installed
import numpy as np, keras_lstm, keras
layer = keras_lstm.LSTM(3, return_sequences=True)
out = keras.ops.convert_to_numpy(layer(np.ones((2, 4, 5), "float32")))
model = keras.Sequential([keras.Input((4, 5)), keras_lstm.LSTM(3), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
model.fit(np.ones((8, 4, 5), "float32"), np.ones((8, 1), "float32"), epochs=1, verbose=0)
heavy = [name for name in ("tensorflow", "grpc", "matplotlib") if sys.modules.get(name) is not None]
print(keras.config.backend(), layer.kernel_choice.name, out.shape, heavy)
"""


def run(script, backend):
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    env.pop("KERAS_BACKEND", None)
    if backend:
        env["KERAS_BACKEND"] = backend
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip()


@pytest.mark.parametrize("backend", ["numpy", "openvino"])
def test_import_under_a_backend_without_a_kernel_names_it_and_the_fix(backend):
    kind, name, message = run(IMPORT, backend).split(" | ", 2)
    assert kind == "keras_lstm.errors.KerasBackendError" and name == backend
    assert f"{backend!r} backend" in message and "KERAS_BACKEND" in message and "'jax'" in message


def test_building_the_layer_after_switching_to_an_unsupported_backend_is_refused():
    kind, name, _message = run(BUILD, None).split(" | ", 2)
    assert kind == "keras_lstm.errors.KerasBackendError" and name == "numpy"


@pytest.mark.parametrize(("backend", "kernel"), [("jax", "jax_fused"), ("torch", "torch")])
def test_jax_and_torch_train_the_layer_without_importing_tensorflow_grpc_or_matplotlib(backend, kernel):
    assert run(NO_TENSORFLOW, backend) == f"{backend} {kernel} (2, 4, 3) []"


def test_unset_backend_becomes_tensorflow():
    """With KERAS_BACKEND unset, importing keras_lstm before Keras picks TensorFlow, and the check passes."""
    assert run("import keras_lstm, keras; print(keras.config.backend())", None) == "tensorflow"


# `import keras_lstm` is light (no TensorFlow), yet the layer is registered for keras.saving.load_model
# whatever the order of imports.
REGISTERED = """
import sys, keras_lstm
light = "tensorflow" not in sys.modules
import keras
names = ("LSTM", "LSTMCell", "Chrono")
print(light, all(keras.saving.get_registered_object(f"keras_lstm>{n}") is not None for n in names))
"""


@pytest.mark.parametrize("backend", [None, "jax", "torch"])
def test_import_is_light_and_the_layer_is_registered_when_keras_comes_after(backend):
    assert run(REGISTERED, backend) == "True True"
