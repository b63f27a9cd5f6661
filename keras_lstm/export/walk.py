"""Running an :class:`~keras_lstm.export.plan.ExportPlan`: over whole sequences, and one step at a time.

Both return ``{"outputs", "h", "c"}``: the model's output and every LSTM's final state, concatenated
along the last axis in layer order (forward before backward inside Bidirectional).
"""

from __future__ import annotations

import tensorflow as tf
from keras.src.backend.common import masking as backend  # Keras keeps masks on tensors; no public accessor

from keras_lstm.export.plan import ExportPlan
from keras_lstm.step import LSTMState, lstm_step

__all__ = ["run_sequences", "run_step", "zero_state"]


def _both(a: tf.Tensor | None, b: tf.Tensor | None) -> tf.Tensor | None:
    if a is None or b is None:
        return b if a is None else a
    return tf.logical_and(tf.cast(a, tf.bool), tf.cast(b, tf.bool))


def _as_float32(t: tf.Tensor) -> tf.Tensor:
    return tf.cast(t, tf.float32) if t.dtype.is_floating and t.dtype != tf.float32 else t


def run_sequences(plan: ExportPlan, sequences: tf.Tensor, lengths: tf.Tensor | None = None) -> dict:
    """sequences (B, T, F) or tokens (B, T); lengths (B,) or None -> outputs, h (B, S), c (B, S2).

    With ``lengths``, steps at or past a row's length are masked (a Keras mask, combined with any mask
    the model makes itself, e.g. ``Embedding(mask_zero=True)``), so they change neither the state nor
    the result: a padded row gives what the row alone gives."""
    y = sequences
    steps = None if lengths is None else tf.sequence_mask(lengths, maxlen=tf.shape(sequences)[1])  # (B, T)
    has_time = True
    hs, cs = [], []
    for stage in plan.stages:
        mask = _both(backend.get_keras_mask(y), steps if has_time else None)
        if stage.kind == "layer":
            if mask is not None and stage.layer.supports_masking:
                backend.set_keras_mask(y, mask)
            y = stage.layer(y, training=False)
            has_time = has_time and len(y.shape) >= 3
            continue
        out = stage.layer(y, mask=mask, training=False)  # (output, h, c[, h_backward, c_backward])
        y, states = out[0], out[1:]
        hs += states[0::2]
        cs += states[1::2]
        has_time = has_time and stage.return_sequences
    return {
        "outputs": _as_float32(y),
        "h": tf.concat([_as_float32(h) for h in hs], axis=-1),
        "c": tf.concat([_as_float32(c) for c in cs], axis=-1),
    }


def run_step(plan: ExportPlan, x: tf.Tensor, h: tf.Tensor, c: tf.Tensor) -> dict:
    """One time step: x (B, F) or tokens (B,), h (B, S), c (B, S2) -> outputs, h, c.

    Non-recurrent layers see the step with a time axis of one, (B, 1, F), the shapes they were built
    for; each LSTM advances its slice of the state with :func:`keras_lstm.step.lstm_step`, and keeps
    it through a step its input mask hides (as over whole sequences)."""
    if plan.not_steppable:
        raise ValueError(f"this model cannot be served one step at a time: {plan.not_steppable}")
    hs = tf.split(h, plan.h_widths, axis=-1)
    cs = tf.split(c, plan.c_widths, axis=-1)
    y = x[:, None]  # (B, 1, ...)
    has_time = True
    new_h: list[tf.Tensor] = []
    new_c: list[tf.Tensor] = []
    for stage in plan.stages:
        if stage.kind == "layer":
            y = stage.layer(y, training=False)
            continue
        layer, k = stage.layer, len(new_h)
        dtype = layer.compute_dtype
        keep = backend.get_keras_mask(y)  # (B, 1) or None
        h_prev, c_prev = tf.cast(hs[k], dtype), tf.cast(cs[k], dtype)
        state, _ = lstm_step(
            tf.cast(y[:, 0], dtype),
            LSTMState(h_prev, c_prev),
            layer.cell.current_weights(dtype),
            layer.cell.config,
            layer.cell.activation,
            layer.cell.recurrent_activation,
        )
        h_t, c_t = state
        if keep is not None:
            keep = tf.cast(keep, tf.bool)  # (B, 1), broadcast over units
            h_t, c_t = tf.where(keep, h_t, h_prev), tf.where(keep, c_t, c_prev)
        new_h.append(h_t)
        new_c.append(c_t)
        has_time = layer.return_sequences
        y = h_t[:, None] if has_time else h_t
        if has_time and keep is not None:
            backend.set_keras_mask(y, keep)  # the next layer sees the step masked, as over whole sequences
    outputs = y[:, 0] if has_time else y
    return {
        "outputs": _as_float32(outputs),
        "h": tf.concat([_as_float32(t) for t in new_h], axis=-1),
        "c": tf.concat([_as_float32(t) for t in new_c], axis=-1),
    }


def zero_state(plan: ExportPlan, batch_size: tf.Tensor) -> dict:
    """The initial state of every LSTM, zeros: h (batch_size, S), c (batch_size, S2)."""
    return {
        "h": tf.zeros([batch_size, sum(plan.h_widths)], tf.float32),
        "c": tf.zeros([batch_size, sum(plan.c_widths)], tf.float32),
    }
