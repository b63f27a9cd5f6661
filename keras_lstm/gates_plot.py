"""``keras-lstm gates MODEL INPUT --out gates.png``: a layer's gates over time, as heatmaps.

One panel for the input sequence, then one per gate (f, i, g, o) and for the cell state C and h,
units down, time across, for one row of the batch.
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import numpy as np

from keras_lstm.argtypes import file_in_the_way, non_negative_int, positive_int
from keras_lstm.errors import LSTMArgumentError

__all__ = ["configure", "draw_gates", "load_inputs", "run"]


def load_inputs(path: Path) -> np.ndarray:
    """A (batch, time, features) or (time, features) array from .npy, .npz (first array) or text."""
    if not path.is_file():
        raise LSTMArgumentError("INPUT", str(path), "an existing .npy, .npz, .csv or .txt file")
    try:
        arr = _read_array(path)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:  # not an array file, or not numbers
        raise LSTMArgumentError(
            "INPUT", str(path), f"numbers NumPy can read from a {path.suffix or 'text'} file ({err})"
        ) from None
    if arr is None:
        raise LSTMArgumentError("INPUT", str(path), "a .npz file holding at least one array")
    if not np.issubdtype(arr.dtype, np.number):
        raise LSTMArgumentError("INPUT", f"an array of dtype {arr.dtype}", "an array of numbers")
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise LSTMArgumentError(
            "INPUT", f"an array of shape {arr.shape}", "shape (batch, time, features) or (time, features)"
        )
    return arr


def _read_array(path: Path) -> np.ndarray | None:
    if path.suffix == ".npy":
        return np.load(path)
    if path.suffix == ".npz":
        with np.load(path) as z:
            return z[z.files[0]] if z.files else None
    return np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None, ndmin=2)


def draw_gates(trace, inputs: np.ndarray, row: int = 0, max_units: int = 64, title: str = ""):
    """A matplotlib Figure: the input sequence above one heatmap per gate, C and h."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = trace.panels()
    fig, axes = plt.subplots(len(panels) + 1, 1, figsize=(10, 1.6 * (len(panels) + 1) + 0.6), sharex=True)
    x = np.asarray(inputs, np.float32)[row]  # (T, D) or (T,) for token ids
    ax = axes[0]
    if x.ndim == 1 or x.shape[-1] <= 4:
        ax.plot(x.reshape(len(x), -1), lw=1)
    else:
        ax.imshow(x.T, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_title("input sequence", fontsize=9, loc="left")
    for ax, (name, arr) in zip(axes[1:], panels.items(), strict=True):
        a = arr[row, :, :max_units].T  # (units, time)
        bounded = name.split()[-1] in ("f", "i", "o")
        vmin, vmax = (0, 1) if bounded else (-np.abs(a).max() or -1, np.abs(a).max() or 1)
        im = ax.imshow(
            a, aspect="auto", cmap="magma" if bounded else "RdBu_r", vmin=vmin, vmax=vmax, interpolation="nearest"
        )
        ax.set_title(name, fontsize=9, loc="left")
        ax.set_ylabel("unit", fontsize=8)
        fig.colorbar(im, ax=ax, pad=0.01, fraction=0.03)
    axes[-1].set_xlabel("time step")
    fig.suptitle(title or f"gates of layer {trace.layer_name!r}, batch row {row}", fontsize=10)
    fig.tight_layout()
    return fig


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a .keras file or a training run directory")
    parser.add_argument("input", type=Path, help=".npy/.npz/.csv/.txt: (batch, time, features) or (time, features)")
    parser.add_argument("--out", type=Path, default=Path("gates.png"), help="the PNG to write")
    parser.add_argument("--row", type=non_negative_int, default=0, help="which row of the batch to draw")
    parser.add_argument("--layer", default=None, help="name of the LSTM layer (default: the first)")
    parser.add_argument("--max-units", type=positive_int, default=64, help="draw at most this many units")


def run(args: argparse.Namespace) -> int:
    from keras_lstm.export.source import load_model, resolve_model_path
    from keras_lstm.trace import find_lstm, trace

    resolve_model_path(args.model)  # the cheap checks first (MODEL's path, INPUT, --row, --out), then loading
    inputs = load_inputs(args.input)
    if not 0 <= args.row < len(inputs):
        raise LSTMArgumentError("--row", args.row, f"an index in [0, {len(inputs)})")
    blocker = file_in_the_way(args.out.parent)
    if args.out.is_dir() or blocker is not None:
        why = f"{blocker} is a file" if blocker is not None else "it is a folder"
        raise LSTMArgumentError("--out", str(args.out), f"the path of a PNG file to write ({why})")
    model = load_model(args.model)
    try:
        find_lstm(model, args.layer)
    except LSTMArgumentError:
        names = [layer.name for layer in model.layers]
        if args.layer is None:
            raise LSTMArgumentError(
                "model", args.model, f"a model holding a keras_lstm.LSTM layer (its layers: {names})"
            ) from None
        raise LSTMArgumentError(
            "--layer", args.layer, f"the name of a keras_lstm.LSTM layer of the model ({names})"
        ) from None
    _check_fits(model, inputs)
    fig = draw_gates(trace(model, inputs, layer=args.layer), inputs, args.row, args.max_units)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


def _check_fits(model, inputs: np.ndarray) -> None:
    """Refuse an INPUT whose time steps or features the model cannot take (before Keras refuses it)."""
    expected = tuple(model.inputs[0].shape)
    wanted = ", ".join("?" if d is None else str(d) for d in expected)
    if len(expected) != inputs.ndim or any(
        d is not None and d != n for d, n in zip(expected[1:], inputs.shape[1:], strict=True)
    ):
        raise LSTMArgumentError("INPUT", f"an array of shape {inputs.shape}", f"shape ({wanted}), the model's input")
