"""Chrono initialisation of the LSTM gate biases (Tallec & Ollivier, ICLR 2018).

A plain LSTM with forget bias 1 forgets with a time constant of a few steps; chrono sets the forget
bias so that the units' time constants spread up to ``max_timescale`` steps:

    b_f = log(u),  u ~ Uniform[1, max_timescale − 1]     (per unit)
    b_i = −b_f
    b_g = b_o = 0

Use it as ``LSTM(units, bias_initializer=Chrono(100))``. Inside :class:`keras_lstm.LSTMCell` it is
*gate-aware*: the cell calls :meth:`Chrono.for_gate_layout` with its gate order, so the blocks are
right under ``coupled_gates`` (``f, g, o``: there is no input block, and i = 1 − f already) and under
``layer_norm`` (the cell fills ``input_beta``, where the bias lives then). The gate-aware initializer
takes precedence over ``unit_forget_bias``, which defaults to True as in Keras: ``Chrono`` replaces the
forget bias of 1 rather than adding to it.

Called directly, ``Chrono(T)(shape)`` assumes the Keras 4-block layout ``i, f, g, o``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import keras
from keras import ops

from keras_lstm.errors import LSTMArgumentError

__all__ = ["Chrono"]

_FOUR_GATES = ("i", "f", "g", "o")


@keras.saving.register_keras_serializable(package="keras_lstm")
class Chrono(keras.initializers.Initializer):
    """Chrono bias initializer: forget-gate time constants spread over [1, max_timescale − 1].

    Args:
        max_timescale: the longest dependency to expect, in steps (T_max of the paper); at least 2.
        seed: an int for repeatable values, or None. As with Keras's random initializers, an
            initializer object with a fixed (or no) seed returns the same values on every call.
    """

    def __init__(self, max_timescale: float, seed: int | None = None):
        if isinstance(max_timescale, bool) or not isinstance(max_timescale, numbers.Real) or max_timescale < 2:
            raise LSTMArgumentError("max_timescale", max_timescale, "a number >= 2 (the longest span, in steps)")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise LSTMArgumentError("seed", seed, "an int or None")
        self.max_timescale: float = float(max_timescale)
        self.seed: int | None = seed
        # Keras's own uniform draw (and its seed semantics) for u.
        self._uniform: keras.initializers.Initializer = keras.initializers.RandomUniform(
            minval=1.0, maxval=self.max_timescale - 1.0, seed=seed
        )

    def forget_bias(self, units: int, dtype=None):
        """b_f = log(u), u ~ U[1, max_timescale − 1]: a (units,) tensor in [0, log(max_timescale − 1)]."""
        return ops.log(self._uniform((units,), dtype=dtype))

    def for_gate_layout(self, gates: Sequence[str], units: int) -> Callable:
        """The bias initializer for a cell whose bias blocks are ``gates`` (e.g. ``("f", "g", "o")``)."""
        gates = tuple(gates)
        unknown = [g for g in gates if g not in _FOUR_GATES]
        if unknown or "f" not in gates:
            raise LSTMArgumentError("gates", gates, "a tuple of gate names from i, f, g, o that contains f")

        def initializer(shape, dtype=None):
            if tuple(shape) != (len(gates) * units,):
                raise LSTMArgumentError(
                    "shape", tuple(shape), f"({len(gates) * units},): {len(gates)} gate blocks {gates} of {units} units"
                )
            b_f = self.forget_bias(units, dtype)
            blocks = {"f": b_f, "i": -b_f}
            zeros = ops.zeros((units,), dtype=b_f.dtype)
            return ops.concatenate([blocks.get(g, zeros) for g in gates])

        return initializer

    def __call__(self, shape, dtype=None):
        """A 4-block ``i, f, g, o`` bias of the given shape (its size divisible by 4)."""
        shape = tuple(shape)
        if len(shape) != 1 or shape[0] % 4:
            raise LSTMArgumentError("shape", shape, "(4 * units,): a 1-D bias in the gate layout i, f, g, o")
        return self.for_gate_layout(_FOUR_GATES, shape[0] // 4)(shape, dtype)

    def get_config(self) -> dict:
        return {"max_timescale": self.max_timescale, "seed": self.seed}
