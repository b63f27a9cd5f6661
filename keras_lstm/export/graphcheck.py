"""What in a SavedModel stops it from loading on stock TF Serving: XLA-marked functions and cuDNN-only ops.

TF Serving refuses to run a function marked ``_XlaMustCompile`` unless it was started with
``--xla_cpu_compilation_enabled`` / ``--xla_gpu_compilation_enabled`` (serving#2214), and a
``CudnnRNN*`` op has no CPU kernel (keras#18504). :func:`serving_blockers` lists both, reading
``saved_model.pb`` directly (no TensorFlow runtime, so it checks exactly what a server will load).
"""

from __future__ import annotations

from pathlib import Path

from tensorflow.core.protobuf import saved_model_pb2

__all__ = ["XLA_ATTRS", "serving_blockers"]

XLA_ATTRS = ("_XlaMustCompile", "_XlaCompile")


def _node_blockers(where: str, node) -> list[str]:
    found = []
    if node.op.startswith("Cudnn"):
        found.append(f"{where}: node {node.name!r} is the cuDNN-only op {node.op}")
    for attr in XLA_ATTRS:
        if attr in node.attr and node.attr[attr].b:
            found.append(f"{where}: node {node.name!r} ({node.op}) has {attr}=true")
    return found


def serving_blockers(saved_model_dir: str | Path) -> list[str]:
    """One line per XLA-marked function or node and per cuDNN-only op in ``saved_model_dir``; [] if none."""
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(saved_model_dir) / "saved_model.pb").read_bytes())
    found: list[str] = []
    for meta in proto.meta_graphs:
        for node in meta.graph_def.node:
            found += _node_blockers("graph", node)
        for fn in meta.graph_def.library.function:
            name = fn.signature.name
            for attr in XLA_ATTRS:
                if attr in fn.attr and fn.attr[attr].b:
                    found.append(f"function {name!r} has {attr}=true")
            for node in fn.node_def:
                found += _node_blockers(f"function {name!r}", node)
    return found
