"""Quiet output: `keras-lstm --help` and every command's `--help` answer without importing TensorFlow, and
TensorFlow's start-up lines are kept out of a command's output unless asked for, while every other line
written to stderr (an error of our own, a traceback) still reaches the user. Each case runs in a fresh
interpreter, since what matters is what a new process imports and prints."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keras_lstm import quiet
from keras_lstm.cli import COMMANDS

REPO = Path(__file__).resolve().parents[1]

HELP = """
import sys
from keras_lstm.cli import main
try:
    main({argv!r})
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print("HEAVY", heavy, "CODE", code)
"""


def python(script, **env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", quiet.VERBOSE_ENV)}
    env.update(env_changes)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_imports_no_tensorflow(command):
    argv = [command, "--help"] if command else ["--help"]
    done = python(HELP.format(argv=argv))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "HEAVY [] CODE 0" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    assert "usage: keras-lstm" in done.stdout


# What TensorFlow prints at import on a machine without a GPU driver (absl before InitializeLog), the
# CPU-feature notice, and lines that must pass: one of our own errors, a TensorFlow error that is not
# start-up noise, and a line with no newline at the end.
NOISY = r"""
import os, sys
from keras_lstm import quiet
lines = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796552821.786068    4309 cudart_stub.cc:31] Could not find cuda drivers on your"
    " machine, GPU will not be used.",
    "E0000 00:00:1796552826.435139    4309 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA"
    " error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "I0000 00:00:1796552821.9    4309 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to"
    " use available CPU instructions.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the"
    " appropriate compiler flags.",
    "E0000 00:00:1796552826.5    4309 op_kernel.cc:1830] OpKernel ('op: \"Foo\"') for unknown op: Foo",
    "keras-lstm train: error: Argument `--units` must be a positive integer; received --units=0.",
]
with quiet.filtered_stderr():
    os.write(2, ("\n".join(lines) + "\n").encode())  # as C++ writes: straight to file descriptor 2
    print("a Python line on sys.stderr", file=sys.stderr)
    os.write(2, b"no newline at the end")
print("\nafter the filter", file=sys.stderr)
raise SystemExit("a traceback-free exit message after the window")
"""


def test_the_filter_drops_start_up_noise_and_passes_everything_else():
    done = python(NOISY)
    err = done.stderr
    for dropped in ("absl::InitializeLog", "cudart_stub", "cuInit", "cpu_feature_guard", "rebuild TensorFlow"):
        assert dropped not in err, err
    for kept in (
        "op_kernel.cc:1830] OpKernel",
        "keras-lstm train: error: Argument `--units`",
        "a Python line on sys.stderr",
        "no newline at the end",
        "after the filter",
        "a traceback-free exit message after the window",
    ):
        assert kept in err, (kept, err)
    assert done.returncode == 1


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        ({}, False),
        ({quiet.VERBOSE_ENV: "1"}, True),
        ({"TF_CPP_MIN_LOG_LEVEL": "0"}, True),
        ({"TF_CPP_MIN_LOG_LEVEL": "3"}, False),
    ],
)
def test_verbose_switch(env, shown):
    done = python("from keras_lstm import quiet; print(quiet.verbose())", **env)
    assert done.stdout.strip() == str(shown), done.stderr[-2000:]


def test_the_cli_flag_asks_for_the_logs():
    """`keras-lstm --verbose COMMAND` marks the process verbose (its subprocesses inherit it) and leaves
    TF_CPP_MIN_LOG_LEVEL to TensorFlow; without it the level is 2."""
    script = (
        "import os, sys\nfrom keras_lstm import cli, quiet\n"
        "parser, module = cli._parser_for(sys.argv[1:])\nargs = parser.parse_args(sys.argv[1:])\n"
        "if args.tensorflow_logs: cli._show_tensorflow_logs()\n"
        "print(quiet.verbose(), os.environ.get('TF_CPP_MIN_LOG_LEVEL'), args.command)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", quiet.VERBOSE_ENV)}

    def run(*argv):
        return subprocess.run(
            [sys.executable, "-c", script, *argv],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout.split()

    assert run("--verbose", "gates", "RUN", "X.npy") == ["True", "None", "gates"]
    assert run("gates", "RUN", "X.npy") == ["False", "2", "gates"]


def test_a_command_shows_only_its_own_story(tmp_path):
    """A real command end to end in a user's environment: the export of an untrained model prints its own
    lines and the published path, and no line of TensorFlow's C++ or absl logging."""
    from test_demo import TENSORFLOW_LOG

    script = (
        "import keras, keras_lstm, sys\n"
        "m = keras.Sequential([keras.Input((None, 2)), keras_lstm.LSTM(3), keras.layers.Dense(1)])\n"
        "m.save(sys.argv[1])\n"
    )
    saved = tmp_path / "m.keras"
    made = subprocess.run(
        [sys.executable, "-c", script, str(saved)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert made.returncode == 0, made.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", quiet.VERBOSE_ENV)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_lstm.cli",
            "export",
            str(saved),
            "--name",
            "m",
            "--base",
            str(tmp_path / "models"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert str(tmp_path / "models" / "m" / "1") in done.stdout
    assert not [line for line in out.splitlines() if TENSORFLOW_LOG.search(line)], out
    assert "INFO:tensorflow" not in out and "INFO absl" not in out, out
