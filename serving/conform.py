"""What the client does with the values it is handed: the one rule, for `Client`, `AsyncClient` and streams.

Each input is converted to the dtype its signature expects when no value changes beyond rounding, and
refused otherwise, with a `BadRequestError` naming the input, the dtype received and the dtype expected.
Expected dtype <- what was passed:

* the same dtype: sent as it is.
* a float input (float16, float32, float64) <- floats of any width: each value rounded to the nearest
  representable one (float64 -> float32 keeps about 7 significant digits, as ``np.float32(x)`` does). A
  finite value beyond the target's range (it would become inf) is refused; NaN and +-inf stay themselves.
* a float input <- integers of any width, signed or unsigned: converted when every value is exactly
  representable (for float32, every integer up to 2**24 in magnitude is); otherwise refused.
* an integer input <- integers of any width, signed or unsigned: converted when every value is in the
  target's range; otherwise refused.
* anything else is refused: bools (to or from numbers), floats into an integer input (token ids sent as
  floats are more likely a mistake than an intent, even 3.0), strings, complex numbers, objects.
* Python lists, tuples and scalars become an array first by NumPy's rules (floats are float64, integers
  int64, a ragged list is refused), then follow the rule above.

Without a signature (a client made with ``validate=False``, which fetches no metadata) the client
assumes the dtypes a TensorFlow model takes by default: floats become float32 and integers int32, by the
same rule (values that do not fit are refused); bools and strings are sent as they are.

`check_inputs` (``serving.requests``) then checks the converted arrays exactly, as the server does.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc
import numpy as np

from serving import tensors
from serving.errors import BadRequestError, clip
from serving.requests import Signature, TensorInfo

__all__ = ["DEFAULT_DTYPES", "conform", "conform_inputs"]

# Without a signature: what each kind of number is sent as.
DEFAULT_DTYPES = {"f": np.dtype(np.float32), "i": np.dtype(np.int32), "u": np.dtype(np.int32)}
_INVALID = grpc.StatusCode.INVALID_ARGUMENT


def conform_inputs(inputs: Mapping[str, object], signature: Signature | None) -> dict[str, np.ndarray]:
    """Every input as an array of the dtype its signature entry expects (see the module's rule). Inputs
    the signature does not name are only made arrays; `check_inputs` reports them."""
    entries = signature.inputs if signature is not None else {}
    return {name: conform(name, value, entries.get(name), guess=signature is None) for name, value in inputs.items()}


def conform(name: str, value: object, info: TensorInfo | None, *, guess: bool = False) -> np.ndarray:
    """One input: ``value`` converted for ``info`` (with ``guess``, for :data:`DEFAULT_DTYPES`)."""
    array = _as_array(name, value)
    if info is not None:
        target = tensors.numpy_dtype(info.dtype)
    else:
        target = DEFAULT_DTYPES.get(array.dtype.kind) if guess else None
    if target is None or array.dtype == target:
        return array
    source, wanted = array.dtype.kind, target.kind
    if wanted == "f" and source == "f":
        with np.errstate(over="ignore"):
            converted = array.astype(target)
        beyond = np.isfinite(array) & ~np.isfinite(converted)
        if beyond.any():
            _refuse(name, array, target, f"{array[beyond].flat[0].item()!r} is beyond {target.name}'s range")
        return converted
    if wanted == "f" and source in "iu":
        converted = array.astype(target)
        with np.errstate(invalid="ignore", over="ignore"):
            inexact = converted.astype(array.dtype) != array
        if inexact.any():
            _refuse(
                name, array, target, f"{array[inexact].flat[0].item()!r} is not exactly representable in {target.name}"
            )
        return converted
    if wanted in "iu" and source in "iu":
        limits = np.iinfo(target)
        outside = (array < limits.min) | (array > limits.max) if array.size else np.zeros(0, bool)
        if outside.any():
            _refuse(
                name,
                array,
                target,
                f"{array[outside].flat[0].item()!r} is out of {target.name}'s range [{limits.min}, {limits.max}]",
            )
        return array.astype(target)
    return array  # not convertible: check_inputs names the input and both dtypes


def _as_array(name: str, value: object) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as err:  # a ragged list
        raise BadRequestError(
            f'input "{clip(name)}": cannot be made an array: {clip(str(err))}', code=_INVALID
        ) from err


def _refuse(name: str, array: np.ndarray, target: np.dtype, why: str) -> None:
    raise BadRequestError(
        f'input "{clip(name)}": expects {target.name} but {array.dtype} is provided, and '
        f"converting it would change a value: {why}",
        code=_INVALID,
    )
