"""keras-lstm: the LSTM of the classic gate walkthrough as an XLA-compiled Keras 3 layer.

    from keras_lstm import LSTM, LSTMCell, LSTMState
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from keras_lstm.backend import require_tensorflow_backend  # noqa: E402

require_tensorflow_backend()  # one clear error under KERAS_BACKEND=jax or torch, before anything else

from keras_lstm import initializers  # noqa: E402
from keras_lstm.cell import LSTMCell  # noqa: E402
from keras_lstm.config import LSTMConfig  # noqa: E402
from keras_lstm.errors import KerasBackendError, LSTMArgumentError, XLAUnavailableError  # noqa: E402
from keras_lstm.layer import LSTM  # noqa: E402
from keras_lstm.step import GATES, LSTMState  # noqa: E402
from keras_lstm.trace import GateTrace, trace  # noqa: E402

__all__ = [
    "LSTM", "LSTMCell", "LSTMState", "LSTMConfig", "GATES", "trace", "GateTrace", "initializers",
    "LSTMArgumentError", "XLAUnavailableError", "KerasBackendError",
]
__version__ = "0.1.0"
