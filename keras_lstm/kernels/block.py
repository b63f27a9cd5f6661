"""The stock fused kernel for SavedModels: TensorFlow's ``BlockLSTMV2``, the whole sequence in one op.

``BlockLSTMV2`` is an op of stock TensorFlow, so stock TF Serving runs it: no custom op and no XLA. It
runs every step of the plain LSTM (with peephole and cell clip) inside one kernel, so a small batch
pays none of a graph loop's per-step cost (the executor's while-loop frames and one dispatch per op,
about 10 µs a step on the 2-core development machine, more than the step's maths at batch 1). Its
matmul, ``[x_t, h_{t-1}] · [W; U]`` each step, is Eigen's, slower than TensorFlow's MatMul at large
batches, so a trace takes it only up to :func:`max_batch` rows and the graph loop above that, decided
per batch in the graph (see :func:`batch_runs`).

Keras's weights go in as they are: ``BlockLSTMV2``'s gate order is i, f, C̃ (g), o, its ``w`` is
``[kernel; recurrent_kernel]`` (concatenated per call), its peephole vectors are the rows i, f, o of
``peephole_kernel``, and its ``cell_clip`` clips C_t before the output gate reads it, as
:func:`keras_lstm.step.cell_update` does. Masks: right-padded, through
:mod:`keras_lstm.kernels.padding`; every step's C_t is an output, so c_T is per row too.
"""

from __future__ import annotations

import tensorflow as tf

from keras_lstm.kernels import padding
from keras_lstm.step import LSTMWeights

__all__ = ["MAX_BATCH_UNITS", "batch_runs", "max_batch", "run"]

# The block op runs a batch when batch · units <= this (see max_batch).
MAX_BATCH_UNITS = 4096


def max_batch(units: int) -> int:
    """The largest batch the block op runs for a layer of ``units``; larger batches take the graph loop."""
    return max(1, MAX_BATCH_UNITS // units)


def batch_runs(x, mask, cfg):
    """Scalar bool: this batch runs on the block op (small enough, and any mask right-padded)."""
    small = tf.shape(x)[0] <= max_batch(cfg.units)
    return small if mask is None else tf.logical_and(small, padding.right_padded(mask))


def run(
    x,
    mask,
    h0,
    c0,
    input_dropout_mask,
    recurrent_dropout_mask,
    w: LSTMWeights,
    *,
    cfg,
    zero_output_for_mask: bool = False,
    **_,
):
    """The kernels' contract (see :mod:`keras_lstm.kernels`): x (B, T, D) -> (output, h_T, c_T)."""
    assert recurrent_dropout_mask is None, "recurrent dropout runs on the loop"
    if input_dropout_mask is not None:
        x = x * input_dropout_mask[:, None, :]  # (B, D) mask, the same at every step
    xt = tf.transpose(x, [1, 0, 2])  # (T, B, D)
    lengths = None if mask is None else padding.lengths_of(mask)  # (B,)
    if cfg.go_backwards:
        xt = tf.reverse(xt, [0]) if lengths is None else padding.reverse_rows(xt, lengths)
    units = w.recurrent_kernel.shape[0]
    zeros = tf.zeros([units], xt.dtype)
    peep = w.peephole_kernel
    wci, wcf, wco = (zeros, zeros, zeros) if peep is None else (peep[0], peep[1], peep[2])
    bias = w.bias if w.bias is not None else tf.zeros([4 * units], xt.dtype)
    steps = tf.raw_ops.BlockLSTMV2(
        seq_len_max=tf.cast(tf.shape(xt)[0], tf.int64),
        x=xt,
        cs_prev=c0,
        h_prev=h0,
        w=tf.concat([w.kernel, w.recurrent_kernel], axis=0),
        wci=wci,
        wcf=wcf,
        wco=wco,
        b=bias,
        cell_clip=float(cfg.cell_clip or 0.0),
        use_peephole=peep is not None,
    )
    hs, cs = steps.h, steps.cs  # (T, B, H) each, in processing order
    if lengths is None:
        output = tf.transpose(hs, [1, 0, 2]) if cfg.return_sequences else hs[-1]
        return output, hs[-1], cs[-1]
    y = tf.transpose(hs, [1, 0, 2])  # (B, T, H)
    out = padding.masked_outputs(
        y,
        lengths,
        return_sequences=cfg.return_sequences,
        go_backwards=cfg.go_backwards,
        zero_output_for_mask=zero_output_for_mask,
    )
    return out, padding.at_lengths(y, lengths, h0), padding.at_lengths(tf.transpose(cs, [1, 0, 2]), lengths, c0)
