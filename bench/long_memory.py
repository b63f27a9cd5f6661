"""Long-memory benchmark: sequences to solve adding and copy, LSTM (chrono / Keras init) vs SimpleRNN and GRU.

    python bench/long_memory.py                      # adding T=100,500,1000; copy T=100,500; 4 layers each
    python bench/long_memory.py --quick              # adding T=100 only, capped budget
    python bench/long_memory.py --budget 200000 --jobs 4 --cells adding:500 --layers lstm-chrono,gru

Each cell is one ``keras-lstm train`` run (its own process and run directory under --out), stopped
when the task's solved criterion is met or the budget (in training sequences) is spent. Writes
``long_memory.md`` (a markdown table) and ``long_memory.png`` into --out.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import time

PAPER = {("adding", 100): 74_000, ("adding", 500): 209_000, ("adding", 1000): 853_000}  # H&S 1997, table 7
FULL_CELLS = ["adding:100", "adding:500", "adding:1000", "copy:100", "copy:500"]
LAYERS = {
    "lstm-chrono": ["--init", "chrono"],
    "lstm-keras": ["--init", "keras"],
    "simple_rnn": ["--baseline", "simple_rnn"],
    "gru": ["--baseline", "gru"],
}


def run_cell(task, T, layer, args) -> dict:
    run = os.path.join(args.out, "cells", f"{task}-T{T}-{layer}")
    cmd = [
        sys.executable,
        "-m",
        "keras_lstm.cli",
        "train",
        task,
        "-T",
        str(T),
        "--max-sequences",
        str(args.budget),
        "--seed",
        str(args.seed),
        "--run-dir",
        run,
        "--verbose",
        "0",
        *LAYERS[layer],
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.cell_timeout)
        status = "finished" if done.returncode == 0 else f"failed ({done.stderr.strip().splitlines()[-1:]})"
    except subprocess.TimeoutExpired:
        status = "timed out"
    wall = time.perf_counter() - t0
    m = {}
    if os.path.exists(os.path.join(run, "metrics.json")):
        with open(os.path.join(run, "metrics.json")) as f:
            m = json.load(f)
    return {
        "task": task,
        "T": T,
        "layer": layer,
        "status": status,
        "wall_s": round(wall, 1),
        "solved_at": m.get("solved_at_sequences"),
        "seen": m.get("sequences_seen", 0),
        "loss": m.get("final", {}).get("loss"),
        "val_loss": m.get("final", {}).get("val_loss"),
        "chance": m.get("chance_loss"),
        "command": " ".join(cmd[1:]),
    }


def table(rows, args) -> str:
    lines = [
        f"Budget {args.budget:,} sequences per cell, seed {args.seed}, batch 32, Adam, 64 units "
        "(keras-lstm train defaults).",
        "",
        "| task | T | layer | solved after (sequences) | 1997 paper | final loss | val loss | chance | wall (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        solved = f"{r['solved_at']:,}" if r["solved_at"] else f"not solved in {r['seen']:,}"
        if r["status"] != "finished":
            solved += f" ({r['status']})"
        paper = (
            f"{PAPER[(r['task'], r['T'])]:,}" if (r["task"], r["T"]) in PAPER and r["layer"].startswith("lstm") else ""
        )
        fmt = lambda v: "" if v is None else f"{v:.3g}"  # noqa: E731
        lines.append(
            f"| {r['task']} | {r['T']} | {r['layer']} | {solved} | {paper} | {fmt(r['loss'])} | "
            f"{fmt(r['val_loss'])} | {fmt(r['chance'])} | {r['wall_s']} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows, path, budget):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(rows)), 4.5))
    labels = [f"{r['task']} {r['T']}\n{r['layer']}" for r in rows]
    values = [r["solved_at"] or r["seen"] or budget for r in rows]
    colors = ["tab:green" if r["solved_at"] else "lightgrey" for r in rows]
    bars = ax.bar(range(len(rows)), values, color=colors)
    for bar, r in zip(bars, rows, strict=True):
        if not r["solved_at"]:
            bar.set_hatch("//")
        ref = PAPER.get((r["task"], r["T"]))
        if ref and r["layer"].startswith("lstm"):
            ax.plot([bar.get_x(), bar.get_x() + bar.get_width()], [ref, ref], color="red", lw=2)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel("training sequences")
    ax.set_title("Sequences to solve (green); grey hatched: not solved within the budget; red: 1997 paper")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="adding T=100 only (with a 32,000-sequence default budget)")
    p.add_argument(
        "--budget", type=int, default=None, help="training sequences per cell (default 1,000,000; 32,000 with --quick)"
    )
    p.add_argument("--cells", default=None, help="comma-separated TASK:T (default: all five)")
    p.add_argument("--layers", default=",".join(LAYERS), help=f"comma-separated, from {', '.join(LAYERS)}")
    p.add_argument("--jobs", type=int, default=1, help="cells run at once")
    p.add_argument("--cell-timeout", type=float, default=None, help="seconds before a cell is stopped")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="bench/results/long_memory")
    args = p.parse_args(argv)
    args.budget = args.budget or (32_000 if args.quick else 1_000_000)
    cells = (args.cells or ("adding:100" if args.quick else ",".join(FULL_CELLS))).split(",")
    layers = args.layers.split(",")
    unknown = [name for name in layers if name not in LAYERS]
    if unknown:
        p.error(f"unknown layer(s) {unknown}; choose from {', '.join(LAYERS)}")
    jobs = [(c.split(":")[0], int(c.split(":")[1]), layer) for c in cells for layer in layers]
    os.makedirs(args.out, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda j: run_cell(*j, args), jobs))
    md = table(rows, args)
    with open(os.path.join(args.out, "long_memory.md"), "w") as f:
        f.write(f"Command: `python bench/long_memory.py {' '.join(argv if argv is not None else sys.argv[1:])}`\n\n")
        f.write(md)
    with open(os.path.join(args.out, "long_memory.json"), "w") as f:
        json.dump(rows, f, indent=2)
    plot(rows, os.path.join(args.out, "long_memory.png"), args.budget)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
