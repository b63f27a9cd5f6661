"""The torch kernel: torch's own fused LSTM (``torch.lstm``) on the layer's variables.

For the configurations ``torch.nn.LSTM`` computes (σ gates, tanh, an optional projection without a
clip, ``go_backwards``, no mask and no recurrent dropout; see :mod:`keras_lstm.kernels.select`), the
recurrence is one call of the op ``nn.LSTM`` runs: oneDNN's fused LSTM on a CPU (the native
kernel under a projection, which oneDNN's does not take there), cuDNN on a GPU.

Keras's weights are torch's transposed, with the same gate order (i, f, g, o), so they are passed
as views: ``w_ih = kernelᵀ`` (4H, D), ``w_hh = recurrent_kernelᵀ`` (4H, P), ``w_hr =
projection_kernelᵀ`` (P, H). Nothing is copied in Python, and torch's autograd reaches the Keras
variables through the views. torch has two biases; the Keras bias is ``b_ih`` and ``b_hh`` is zeros.
(On a GPU, cuDNN wants one flat weight buffer and copies the views into one per call, with a warning.)

``go_backwards`` is the forward LSTM over the time-reversed input: Keras returns the outputs in
processing order, which is what that gives. Input dropout multiplies x before the call.
"""

from __future__ import annotations

import torch

__all__ = ["run"]


def run(x, mask, h0, c0, input_dropout_mask, recurrent_dropout_mask, w, *, cfg, activation, recurrent_activation,
        zero_output_for_mask=False):
    """The kernels' contract (see :mod:`keras_lstm.kernels`): x (B, T, D) -> (output, h_T, c_T).

    Takes no mask and no recurrent dropout mask (the chooser sends those calls to the loop)."""
    if mask is not None or recurrent_dropout_mask is not None:
        raise ValueError("the torch kernel takes no mask and no recurrent dropout (kernels/select.py sends them "
                         "to the loop)")
    if cfg.go_backwards:
        x = torch.flip(x, dims=[1])  # (B, T, D)
    if input_dropout_mask is not None:
        x = x * input_dropout_mask[:, None, :]  # (B, D) mask, the same at every step
    params = [w.kernel.T, w.recurrent_kernel.T]  # (4H, D), (4H, P): views of the Keras variables
    if w.bias is not None:
        params += [w.bias, torch.zeros_like(w.bias)]  # b_ih, b_hh
    if w.projection_kernel is not None:
        params.append(w.projection_kernel.T)  # (P, H)
    hs, h_last, c_last = torch.lstm(
        x, (h0[None], c0[None]), params, w.bias is not None, 1, 0.0, torch.is_grad_enabled(), False, True,
    )  # (B, T, P), (1, B, P), (1, B, H)
    output = hs if cfg.return_sequences else hs[:, -1]
    return output, h_last[0], c_last[0]
