"""What `from serving import Client` costs: seconds to import and resident memory, each in a fresh process.

    python bench/client_import.py --client-python client-env/bin/python     # the numbers in docs/client.md (5 repeats)

Cases: the client's own environment (keras-lstm-client, no TensorFlow; run outside the repository so that
the installed package is the one imported), the main environment (TensorFlow installed, not imported), and
the main environment after `import tensorflow` (a notebook, the server: what the client adds on top).
Reported: the median import time, and the process's peak resident set (VmHWM) and its growth over the
import (VmRSS after - before), in MB. Prints a table and writes bench/results/client_import.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SNIPPET = r"""
import json, re, sys, time
def memory():
    status = open("/proc/self/status").read()
    return {key: int(re.search(key + r":\s+(\d+) kB", status).group(1)) / 1024 for key in ("VmRSS", "VmHWM")}
{prelude}
before = memory()
started = time.perf_counter()
from serving import Client
seconds = time.perf_counter() - started
after = memory()
print(json.dumps({"import_s": seconds, "peak_rss_mb": after["VmHWM"], "added_rss_mb": after["VmRSS"] - before["VmRSS"],
                  "tensorflow_imported": "tensorflow" in sys.modules}))
"""


def measure(python: str, prelude: str, cwd: Path, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        done = subprocess.run(
            [python, "-c", SNIPPET.replace("{prelude}", prelude)],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=300,
            env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
        )
        if done.returncode != 0:
            raise RuntimeError(f"{python} failed:\n{done.stderr[-3000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {key: statistics.median(r[key] for r in runs) for key in ("import_s", "peak_rss_mb", "added_rss_mb")} | {
        "tensorflow_imported": runs[0]["tensorflow_imported"],
        "repeats": repeats,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client-python", help="python of an environment with keras-lstm-client installed")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)

    cases = []
    with tempfile.TemporaryDirectory() as elsewhere:
        if args.client_python:
            cases.append(("client env, no TensorFlow", args.client_python, "", Path(elsewhere)))
        cases += [
            ("main env, TensorFlow not imported", sys.executable, "", REPO),
            ("main env, after `import tensorflow`", sys.executable, "import tensorflow", REPO),
        ]
        rows = [{"case": label} | measure(python, prelude, cwd, args.repeats) for label, python, prelude, cwd in cases]

    print(f"{'case':38s} {'import s':>9s} {'peak RSS MB':>12s} {'added RSS MB':>13s}")
    for row in rows:
        print(f"{row['case']:38s} {row['import_s']:9.3f} {row['peak_rss_mb']:12.0f} {row['added_rss_mb']:13.0f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "client_import.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
