"""The recurrence kernels, one file each behind one contract, and the one function that picks.

=========  ==============================  ==========================================================
kernel     file                            runs
=========  ==============================  ==========================================================
"onednn"   onednn.py + onednn_lstm.cc      oneDNN's fused LSTM primitive (CPU, float32): the default on
                                           a CPU for the configurations it supports
"xla"      xla.py (the loop in loop.py)    the time loop compiled by XLA: every variant, GPUs, models
                                           compiled with ``jit_compile=True``
"graph"    graph.py (the loop in loop.py)  the same loop as stock TensorFlow ops: SavedModel traces
                                           (stock TF Serving) and ``jit_compile=False``
"block"    block.py                        stock TensorFlow's BlockLSTMV2, the whole sequence in one op:
                                           SavedModel traces of the plain cell (peephole, cell clip)
                                           up to a batch size, the graph loop above it
=========  ==============================  ==========================================================

Contract: ``run(x, mask, h0, c0, input_dropout_mask, recurrent_dropout_mask, weights, *, cfg,
activation, recurrent_activation, zero_output_for_mask) -> (output, h_T, c_T)`` with x (B, T, D),
mask (B, T) or None, h0 (B, P), c0 (B, H), dropout masks (B, D) and (B, P) or None.

The layer's ``kernel`` argument: ``"auto"`` takes the fused kernel where it can run and says why
not where it cannot; ``"onednn"`` insists (a configuration it cannot run is an error naming the
argument that prevents it); ``"xla"`` takes the loop (compiled unless ``jit_compile=False``). A trace
for a SavedModel takes the block kernel where it can run and the graph loop elsewhere, whatever was
asked (XLA with ``export_xla``). A kernel that runs only some batches (``batch_runs``: masks with holes,
batch sizes) has a fallback chosen per batch in the graph. :mod:`keras_lstm.kernels.padding` holds the
right-padded mask handling of the whole-sequence kernels.

The choice is :func:`keras_lstm.kernels.select.choose`; this package's ``__init__`` imports nothing,
so ``python -m keras_lstm.kernels.build`` runs without TensorFlow's start-up.
"""
