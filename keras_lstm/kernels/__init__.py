"""The recurrence kernels, one file each behind one contract, and the one function that picks.

=========  ==============================  ==========================================================
kernel     file                            runs
=========  ==============================  ==========================================================
"fused"    fused.py, cc/lstm.cc and        TensorFlow: this project's fused CPU LSTM (float32), forward and
           cc/tf_op.cc                     backward, one GEMM per step stored gate-major and one
                                           vectorised elementwise pass: peephole, coupled gates, clips,
                                           projection, go_backwards, right-padded masks
"xla"      xla.py (the loop in loop.py)    TensorFlow: the time loop compiled by XLA: every variant,
                                           GPUs, models compiled with ``jit_compile=True``
"graph"    graph.py (the loop in loop.py)  TensorFlow: the same loop as stock TensorFlow ops: SavedModel
                                           traces (stock TF Serving) and ``jit_compile=False``
"block"    block.py                        TensorFlow: stock BlockLSTMV2, the whole sequence in one op:
                                           SavedModel traces of the plain cell (peephole, cell clip)
                                           up to a batch size, the graph loop above it
"jax"      jax.py                          JAX: a ``lax.scan`` with a ``custom_vjp`` (the loop's design:
                                           input matmul before, dh/dc carried back, weight gradients
                                           in bulk after), compiled by ``jax.jit``: every variant
"torch"    torch.py                        torch: torch's fused LSTM (oneDNN on a CPU, cuDNN on a GPU)
                                           on transposed views of the Keras variables; right-padded
                                           masks as packed sequences
"eager"    eager.py                        torch: a Python loop over the step maths (``keras.ops``), for
                                           what torch's LSTM does not compute (masks with holes, variants)
=========  ==============================  ==========================================================

Contract: ``run(x, mask, h0, c0, input_dropout_mask, recurrent_dropout_mask, weights, *, cfg,
activation, recurrent_activation, zero_output_for_mask) -> (output, h_T, c_T)`` with x (B, T, D),
mask (B, T) or None, h0 (B, P), c0 (B, H), dropout masks (B, D) and (B, P) or None, all arrays of
the running Keras backend.

The choice is :func:`keras_lstm.kernels.select.choose`, from ``keras.config.backend()``; a kernel's
module is imported only when chosen, so the JAX and torch backends never import TensorFlow.

On TensorFlow, the layer's ``kernel`` argument: ``"auto"`` takes the fused kernel on a CPU wherever it
can run (it measured faster than the XLA loop at every shape: docs/kernels.md), and says why not
elsewhere; ``"fused"`` insists (a configuration it cannot run is an error naming the argument that
prevents it; ``"onednn"``, its name before it was this project's own, reads as ``"fused"``); ``"xla"``
takes the loop (compiled unless ``jit_compile=False``). A trace for a SavedModel takes the block kernel where it
can run and the graph loop elsewhere, whatever was asked (XLA with ``export_xla``), and runs a batch of two or more
rows as two slices at once. A kernel that runs only some batches (``batch_runs``: masks with holes,
batch sizes) has a fallback chosen per batch in the graph; :mod:`keras_lstm.kernels.padding` holds
the right-padded mask handling of the whole-sequence kernels. On torch, ``"fused"`` insists on torch's fused LSTM
and ``"xla"`` takes the loop; on JAX, ``"auto"`` and ``"xla"`` take the scan.

This package's ``__init__`` imports nothing, so ``python -m keras_lstm.kernels.build`` runs without
TensorFlow's start-up.
"""
