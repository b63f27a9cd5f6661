"""The torch kernel: torch's own fused LSTM (``torch.lstm``) on the layer's variables.

For the configurations ``torch.nn.LSTM`` computes (σ gates, tanh, an optional projection without a
clip, ``go_backwards``, no mask or a right-padded one, no recurrent dropout; see
:mod:`keras_lstm.kernels.select`), the
recurrence is one call of the op ``nn.LSTM`` runs: oneDNN's fused LSTM on a CPU (the native
kernel under a projection, which oneDNN's does not take there), cuDNN on a GPU.

Keras's weights are torch's transposed, with the same gate order (i, f, g, o), so they are passed
as views: ``w_ih = kernelᵀ`` (4H, D), ``w_hh = recurrent_kernelᵀ`` (4H, P), ``w_hr =
projection_kernelᵀ`` (P, H). Nothing is copied in Python, and torch's autograd reaches the Keras
variables through the views. torch has two biases; the Keras bias is ``b_ih`` and ``b_hh`` is zeros.
(On a GPU, cuDNN wants one flat weight buffer and copies the views into one per call, with a warning.)

``go_backwards`` is the forward LSTM over the time-reversed input: Keras returns the outputs in
processing order, which is what that gives. Input dropout multiplies x before the call.

Masks: a right-padded mask (every row a prefix of ones, none empty) is torch's packed sequence, run
by the same op with each row's length; the outputs are then laid out as Keras lays them out (carried
over the padding, or zeros under ``zero_output_for_mask``), and the final states are each row's at
its length. Under ``go_backwards`` each row is reversed within its length first: Keras's reversed
sequence meets the padding first and keeps its state there. Any other mask goes to the loop
(:func:`right_padded` decides, per batch; see :mod:`keras_lstm.kernels.select`).
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

__all__ = ["right_padded", "run"]


def right_padded(mask) -> bool:
    """True when every row of mask (B, T) is a non-empty prefix of ones: a packed sequence's lengths."""
    mask = mask.to(torch.bool)
    lengths = mask.sum(dim=1)
    prefix = torch.arange(mask.shape[1], device=mask.device)[None, :] < lengths[:, None]
    return bool(torch.equal(mask, prefix) and (lengths > 0).all())


def run(
    x,
    mask,
    h0,
    c0,
    input_dropout_mask,
    recurrent_dropout_mask,
    w,
    *,
    cfg,
    activation,
    recurrent_activation,
    zero_output_for_mask=False,
):
    """The kernels' contract (see :mod:`keras_lstm.kernels`): x (B, T, D) -> (output, h_T, c_T).

    Takes no recurrent dropout mask, and a mask only when :func:`right_padded` (the chooser sends the
    rest to the loop)."""
    if recurrent_dropout_mask is not None:
        raise ValueError("the torch kernel takes no recurrent dropout (kernels/select.py sends it to the loop)")
    if input_dropout_mask is not None:
        x = x * input_dropout_mask[:, None, :]  # (B, D) mask, the same at every step
    params = [w.kernel.T, w.recurrent_kernel.T]  # (4H, D), (4H, P): views of the Keras variables
    if w.bias is not None:
        params += [w.bias, torch.zeros_like(w.bias)]  # b_ih, b_hh
    if w.projection_kernel is not None:
        params.append(w.projection_kernel.T)  # (P, H)
    fixed = (params, w.bias is not None, 1, 0.0, torch.is_grad_enabled(), False)  # layers, dropout, train, bidir.
    if mask is not None:
        return _run_packed(x, mask, h0, c0, fixed, cfg, zero_output_for_mask)
    if cfg.go_backwards:
        x = torch.flip(x, dims=[1])  # (B, T, D)
    hs, h_last, c_last = torch.lstm(x, (h0[None], c0[None]), *fixed, True)  # (B, T, P), (1, B, P), (1, B, H)
    output = hs if cfg.return_sequences else hs[:, -1]
    return output, h_last[0], c_last[0]


def _run_packed(x, mask, h0, c0, fixed, cfg, zero_output_for_mask):
    """A right-padded mask as a packed sequence; outputs laid out as Keras lays them out."""
    _B, T, _ = x.shape
    lengths = mask.to(torch.bool).sum(dim=1)  # (B,)
    t = torch.arange(T, device=x.device)[None, :]  # (1, T)
    if cfg.go_backwards:  # reverse each row within its length
        within = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # (B, T)
        x = x.gather(1, within[:, :, None].expand_as(x))
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    order, unorder = packed.sorted_indices, packed.unsorted_indices
    assert order is not None and unorder is not None  # enforce_sorted=False: sorted, and both orders given
    data, h_last, c_last = torch.lstm(
        packed.data, packed.batch_sizes, (h0[None].index_select(1, order), c0[None].index_select(1, order)), *fixed
    )
    hs, _ = pad_packed_sequence(
        PackedSequence(data, packed.batch_sizes, order, unorder), batch_first=True, total_length=T
    )  # (B, T, P): each row's steps, then zeros
    h_last, c_last = h_last[0].index_select(0, unorder), c_last[0].index_select(0, unorder)  # (B, P), (B, H)
    if cfg.go_backwards:  # processing order: the padding first (zeros), then the row from its end
        start = T - lengths[:, None]
        at = (t - start).clamp(min=0)
        hs = torch.where((t >= start)[:, :, None], hs.gather(1, at[:, :, None].expand_as(hs)), torch.zeros_like(hs))
    elif not zero_output_for_mask:  # the last real output carried over the padding
        at = torch.minimum(t, lengths[:, None] - 1)
        hs = hs.gather(1, at[:, :, None].expand_as(hs))
    output = hs if cfg.return_sequences else hs[:, -1]
    return output, h_last, c_last
