"""torch as a benchmark peer, in its own process.

In one process, torch's OpenMP threads and TensorFlow's thread pools take each other's cores: on the
2-core machine of the speed issue, a medium training step of torch went from 103 to 155 ms with
``OMP_WAIT_POLICY=ACTIVE`` when TensorFlow shared the process. So the benchmarks start torch in a
child process and drive it over a pipe, one JSON line per request and per answer; the child times its
own work (the pipe's round trip is not in the figure), and while it works the parent waits on the pipe
with its pools idle, so interleaved rounds still see the same machine load.

    with TorchPeer() as peer:
        peer.call("gemm", n=2048, reps=5)                       # -> {"gflops": ...}
        peer.call("setup", kind="fit", B=64, T=100, D=64, H=256, return_sequences=False, batches=8)
        peer.call("time")                                       # -> {"ms": median ms per step}

Kinds: ``layer`` (torch.nn.LSTM alone: ``time`` takes what="forward" or "train", as
:mod:`keras_lstm_bench.layer` measures them) and ``fit`` (LSTM -> Linear(H, 1), Adam, MSE, one epoch of
``batches`` optimiser steps per ``time``; the median step is returned).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

__all__ = ["TorchPeer", "torch_available"]


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


class TorchPeer:
    """A child process running :func:`_serve` on ``device`` ("cpu" or "cuda"); a context manager.
    ``call`` raises RuntimeError with the child's message when a request fails."""

    def __init__(self, device: str = "cpu"):
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "keras_lstm_bench.torch_peer", device],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def call(self, cmd: str, **args) -> dict:
        self._proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the torch peer exited (code {self._proc.wait()}) during {cmd!r}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"torch peer, {cmd!r}: {answer['error']}")
        return answer

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait(timeout=30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# The child ---------------------------------------------------------------------------------------


def _gemm(n: int, reps: int, device: str) -> dict:
    import torch

    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    (a @ b).sum().item()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        (a @ b).sum().item()
        times.append(time.perf_counter() - t0)
    return {"gflops": 2.0 * n**3 / statistics.median(times) / 1e9}


def _layer_calls(B: int, T: int, D: int, H: int, device: str) -> dict:
    import torch

    lstm = torch.nn.LSTM(D, H, batch_first=True).to(device)
    x = torch.randn(B, T, D, device=device, requires_grad=True)

    def forward():
        with torch.no_grad():
            lstm(x)[0].sum().item()

    def train():
        lstm.zero_grad(set_to_none=True)
        x.grad = None
        lstm(x)[0].sum().backward()
        if device == "cuda":
            torch.cuda.synchronize()

    return {"forward": forward, "train": train}


def _fit_calls(B: int, T: int, D: int, H: int, return_sequences: bool, batches: int, device: str) -> dict:
    """One epoch of ``batches`` Adam steps of LSTM -> Linear(H, 1) under MSE, as the Keras model trains."""
    import torch

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(D, H, batch_first=True)
            self.dense = torch.nn.Linear(H, 1)

        def forward(self, x):
            hs, _ = self.lstm(x)  # (B, T, H)
            return self.dense(hs if return_sequences else hs[:, -1])

    model = Model().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batches, B, T, D, device=device)
    y = torch.randn(batches, B, T, 1, device=device) if return_sequences else torch.randn(batches, B, 1, device=device)
    loss_fn = torch.nn.MSELoss()

    def epoch() -> float:
        times = []
        for k in range(batches):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[k]), y[k])
            loss.backward()
            opt.step()
            if device == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)

    return {"fit": epoch}


def _serve(stdin, stdout, device: str) -> None:
    calls: dict = {}
    for line in stdin:
        request = json.loads(line)
        cmd = request.pop("cmd")
        try:
            if cmd == "gemm":
                answer = _gemm(**request, device=device)
            elif cmd == "setup":
                kind = request.pop("kind")
                calls = (_fit_calls if kind == "fit" else _layer_calls)(**request, device=device)
                for fn in calls.values():  # warm-up: first-call allocations and oneDNN primitive creation
                    fn(), fn()
                answer = {"ok": True}
            elif cmd == "time":
                what = request.get("what", "fit")
                t0 = time.perf_counter()
                measured = calls[what]()
                answer = {"ms": measured if what == "fit" else (time.perf_counter() - t0) * 1e3}
            else:
                answer = {"error": f"unknown command {cmd!r}"}
        except Exception as err:  # answered, not raised: the parent reports it with the request
            answer = {"error": f"{type(err).__name__}: {err}"}
        stdout.write(json.dumps(answer) + "\n")
        stdout.flush()


if __name__ == "__main__":
    _serve(sys.stdin, sys.stdout, sys.argv[1] if len(sys.argv) > 1 else "cpu")
