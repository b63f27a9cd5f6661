"""Right-padded masks on a whole-sequence fused kernel (``fused``, ``block``), in one place.

A fused kernel has no per-row lengths, but a right-padded row's outputs up to its length do not
depend on the steps after it. So the kernel runs the full length and each row's results are taken at
its own length: the output carried forward over the padding (or zeros under
``zero_output_for_mask``), h_T (and, where the kernel returns every step's C, c_T) at the last step.
Under ``go_backwards`` each row is first reversed within its length (:func:`reverse_rows`) and run
left to right: Keras's backward pass meets the padding first, keeps its zero state there, then reads
the row from its end. Masks with holes or left padding are for the loop (decided per batch).
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["at_lengths", "lengths_of", "masked_outputs", "reverse_rows", "right_padded"]


def right_padded(mask: tf.Tensor) -> tf.Tensor:
    """mask (B, T) -> scalar bool: every row is some steps then only padding (rows of no steps count)."""
    mask = tf.cast(mask, tf.bool)
    return tf.reduce_all(tf.equal(mask, tf.sequence_mask(lengths_of(mask), tf.shape(mask)[1])))


def lengths_of(mask: tf.Tensor) -> tf.Tensor:
    """mask (B, T) -> (B,) int32: the number of unmasked steps of each row."""
    return tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)


def reverse_rows(x: tf.Tensor, lengths: tf.Tensor, *, time_axis: int = 0) -> tf.Tensor:
    """x (T, B, D) time-major, or (B, T, D) with ``time_axis=1`` -> each row's first ``lengths[b]`` steps
    reversed, the padding left in place."""
    return tf.reverse_sequence(x, lengths, seq_axis=time_axis, batch_axis=1 - time_axis)


def at_lengths(seq: tf.Tensor, lengths: tf.Tensor, initial: tf.Tensor) -> tf.Tensor:
    """seq (B, T, N) -> (B, N): each row's value at its last step, or ``initial`` for a row of no steps."""
    last = tf.gather(seq, tf.maximum(lengths - 1, 0), batch_dims=1)
    return tf.where((lengths > 0)[:, None], last, initial)


def masked_outputs(
    y: tf.Tensor, lengths: tf.Tensor, *, return_sequences: bool, go_backwards: bool, zero_output_for_mask: bool
) -> tf.Tensor:
    """y (B, T, P), from a left-to-right run over rows reversed within their lengths under go_backwards
    -> the layer's output as ``keras.layers.LSTM`` gives it under the mask: (B, T, P) or (B, P)."""
    n = tf.shape(y)[1]
    steps = tf.range(n)[None, :] if return_sequences else tf.fill([1, 1], n - 1)  # the outputs wanted
    if go_backwards:  # processing step s reads row step s - (T - length); before it, padding (zeros)
        source = steps - (n - lengths[:, None])
        valid = source >= 0
    else:  # a padded step carries the row's last output forward, or is zero
        source = tf.minimum(steps, lengths[:, None] - 1)
        valid = (steps < lengths[:, None]) | ((lengths > 0)[:, None] & (not zero_output_for_mask))
    out = tf.gather(y, tf.maximum(source, 0), batch_dims=1)  # (B, T or 1, P)
    out = tf.where(valid[:, :, None], out, tf.zeros_like(out))
    return out if return_sequences else out[:, 0]
