"""Every `keras-lstm` command's bad input, as a new user would type it: one line naming the argument, exit
code 2, no traceback, and nothing started (no training, no export, no server).

Each case runs in this process through `keras_lstm.cli.main`; `{d}` is a folder of bad (and a few good)
files made once, `{busy}` a port that something already listens on. A case passes with argparse's usage
error (SystemExit 2) or the command's own `keras-lstm COMMAND: error: ...` line (return code 2).
"""

from __future__ import annotations

import json
import re
import shlex
import socket
import time
import zipfile

import keras
import numpy as np
import pytest
from serving_helpers import ServerProcess

from keras_lstm import LSTM
from keras_lstm.cli import main


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """The files the cases name: a tiny run, files that only look like models, configs that do not parse."""
    d = tmp_path_factory.mktemp("bad-input")
    model = keras.Sequential([keras.Input((None, 2)), LSTM(4), keras.layers.Dense(1)])
    (d / "run").mkdir()
    model.save(d / "run" / "model.keras")
    (d / "adding-run").mkdir()
    model.save(d / "adding-run" / "model.keras")
    (d / "adding-run" / "vocab.json").write_text(json.dumps(list("abc")))
    (d / "adding-run" / "config.json").write_text(json.dumps({"task": "adding"}))
    (d / "fake-charlm").mkdir()  # a model and a vocabulary, but not a charlm model
    model.save(d / "fake-charlm" / "model.keras")
    (d / "fake-charlm" / "vocab.json").write_text(json.dumps(list("abc")))
    (d / "bad-vocab").mkdir()
    model.save(d / "bad-vocab" / "model.keras")
    (d / "bad-vocab" / "vocab.json").write_text("{not json")
    (d / "text.keras").write_text("not a zip archive")
    with zipfile.ZipFile(d / "zip.keras", "w") as archive:
        archive.writestr("notes.txt", "a zip archive, but not Keras's")
    (d / "notes.txt").write_text("a file where a folder is expected")
    (d / "empty").mkdir()
    np.save(d / "x.npy", np.zeros((2, 5, 2), np.float32))
    np.save(d / "seven.npy", np.zeros((2, 5, 7), np.float32))
    np.save(d / "rank1.npy", np.zeros(5, np.float32))
    (d / "garbage.npy").write_text("not an array")
    (d / "words.csv").write_text("a,b\n1,x\n")
    (d / "bad.config").write_text("model_config_list { config { name: 'x' base_pth: '/tmp' } }")
    (d / "custom.config").write_text("custom_model_config { }")
    (d / "unnamed.config").write_text("model_config_list { config { base_path: '/tmp' } }")
    (d / "batching.config").write_text("max_batch_size { value: 'many' }")
    (d / "zero-batching.config").write_text("max_batch_size { value: 0 }")
    (d / "monitoring.config").write_text("prometheus_config { enable: maybe }")
    (d / "broken-run").mkdir()
    (d / "broken-run" / "config.json").write_text("{oops")
    (d / "untasked-run").mkdir()
    (d / "untasked-run" / "config.json").write_text('{"units": 3}')
    (d / "base-with-file").mkdir()
    (d / "base-with-file" / "x").write_text("a file where BASE/NAME/ would go")
    (d / "base-bad-config").mkdir()
    (d / "base-bad-config" / "models.config").write_text("garbage {")
    return d


@pytest.fixture(scope="module")
def busy():
    """A loopback port that something listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


SERVE = "serve --model-base {d}/empty --model-name x"
CASES = [
    # train
    ("train", "`task`"),
    ("train sorting", "argument task: invalid choice"),
    ("train adding --units 0", "--units"),
    ("train adding --units abc", "argument --units"),
    ("train adding --length 5", "--length"),
    ("train adding --learning-rate nan", "--learning-rate` must be a finite number > 0"),
    ("train adding --learning-rate inf", "--learning-rate` must be a finite number > 0"),
    ("train adding --clipnorm nan", "--clipnorm"),
    ("train adding --max-timescale inf", "--max-timescale"),
    ("train adding --cell-clip inf", "--cell-clip"),
    ("train adding --batch-size 0", "--batch-size"),
    ("train adding --seed -1", "--seed"),
    ("train charlm --text {d}/missing.txt", "--text"),
    ("train charlm --text {d}/empty", "--text"),
    ("train adding --run-dir {d}/notes.txt", "--run-dir` must be a new or empty directory (this path is a file)"),
    ("train adding --run-dir {d}/run", "--run-dir` must be a new or empty directory"),
    ("train series --csv {d}/missing.csv --target a", "--csv"),
    ("train series --csv {d}/words.csv --target zz --run-dir {d}/new", "column 'zz'"),
    ("train --resume {d}/empty", "--resume` must be a run directory holding config.json"),
    ("train --resume {d}/notes.txt", "--resume"),
    ("train --resume {d}/broken-run", "--resume` must be a run directory whose config.json is JSON"),
    ("train --resume {d}/untasked-run", "--resume` must be a run directory whose config.json holds"),
    ("train --resume {d}/run --units 3", "--resume` must be given alone"),
    ("train --backend numpy adding", "argument --backend: invalid choice"),
    # sample
    ("sample", "required: RUN"),
    ("sample {d}/missing", "`RUN`"),
    ("sample {d}/notes.txt", "`RUN`"),
    ("sample {d}/run", "`RUN` must be a finished charlm run"),
    ("sample {d}/adding-run", "names the task 'adding'"),
    ("sample {d}/fake-charlm", "not embedding, rnn and logits"),
    ("sample {d}/bad-vocab", "vocab.json is not JSON"),
    ("sample {d}/fake-charlm --temperature 0", "argument --temperature"),
    ("sample {d}/fake-charlm --temperature nan", "argument --temperature"),
    ("sample {d}/fake-charlm --temperature inf", "argument --temperature"),
    ("sample {d}/fake-charlm --length -1", "argument --length"),
    ("sample {d}/fake-charlm --seed -1", "argument --seed"),
    # export
    ("export {d}/run", "required: --name"),
    ("export {d}/missing --name x --base {d}/out", "`model`"),
    ("export {d}/text.keras --name x --base {d}/out", "`model` must be a model saved by Keras"),
    ("export {d}/zip.keras --name x --base {d}/out", "holds no config.json"),
    ("export {d}/notes.txt --name x --base {d}/out", "`model`"),
    ("export {d}/empty --name x --base {d}/out", "`model`"),
    ("export {d}/run --name '' --base {d}/out", "`name`"),
    ("export {d}/run --name x --base {d}/notes.txt", "`base` must be a folder"),
    ("export {d}/run --name x --base {d}/base-with-file", "`base` must be a folder"),
    ("export {d}/run --name x --base {d}/base-bad-config", "`models.config`"),
    ("export {d}/run --name x --version 0 --base {d}/out", "argument --version"),
    ("export {d}/run --name x --version abc --base {d}/out", "argument --version"),
    # gates
    ("gates", "required: model, input"),
    ("gates {d}/missing {d}/x.npy", "`model`"),
    ("gates {d}/text.keras {d}/x.npy", "`model` must be a model saved by Keras"),
    ("gates {d}/run {d}/missing.npy", "`INPUT`"),
    ("gates {d}/run {d}/empty", "`INPUT`"),
    ("gates {d}/run {d}/garbage.npy", "`INPUT` must be numbers NumPy can read"),
    ("gates {d}/run {d}/words.csv", "`INPUT` must be numbers NumPy can read"),
    ("gates {d}/run {d}/rank1.npy", "`INPUT` must be shape (batch, time, features)"),
    ("gates {d}/run {d}/seven.npy --out {d}/g.png", "`INPUT` must be shape (?, ?, 2), the model's input"),
    ("gates {d}/run {d}/x.npy --row 5 --out {d}/g.png", "`--row`"),
    ("gates {d}/run {d}/x.npy --row -1", "argument --row"),
    ("gates {d}/run {d}/x.npy --max-units 0", "argument --max-units"),
    ("gates {d}/run {d}/x.npy --layer nosuch --out {d}/g.png", "`--layer`"),
    ("gates {d}/run {d}/x.npy --out {d}/empty", "`--out`"),
    ("gates {d}/run {d}/x.npy --out {d}/notes.txt/g.png", "`--out`"),
    # parity
    ("parity --units 0", "argument --units"),
    ("parity --units -2", "argument --units"),
    ("parity --time 0", "argument --time"),
    # bench
    ("bench --shapes nosuch", "`--shapes`"),
    ("bench --shapes ,", "`--shapes`"),
    ("bench --reps 0", "argument --reps"),
    ("bench --quick --out {d}/notes.txt", "`--out`"),
    # serve
    ("serve", "`--model-config` must be given, or --model-base DIR with --model-name NAME"),
    ("serve --model-config {d}/missing.config", "`--model-config` must be a readable ModelServerConfig"),
    ("serve --model-config {d}/empty", "`--model-config` must be a readable ModelServerConfig"),
    ("serve --model-config {d}/bad.config", 'no field named "base_pth"'),
    ("serve --model-config {d}/notes.txt", "`--model-config` must be a ModelServerConfig text file"),
    ("serve --model-config {d}/custom.config", "only model_config_list is supported"),
    ("serve --model-config {d}/unnamed.config", "every model needs a name and a base_path"),
    ("serve --model-config {d}/bad.config --model-name x", "`--model-name` must be left out with --model-config"),
    ("serve --model-config {d}/unnamed.config --mount nocolon", "`--mount`"),
    ("serve --model-base {d}/empty", "`--model-name`"),
    ("serve --model-name x", "`--model-base`"),
    ("serve --model-base {d}/empty --model-name ''", "`--model-name`"),
    (SERVE + " --port 70000", "argument --port"),
    (SERVE + " --port -1", "argument --port"),
    (SERVE + " --port {busy}", "`--port` must be a port free on 127.0.0.1"),
    (SERVE + " --rest-api-port 70000", "argument --rest-api-port"),
    (SERVE + " --port 8600 --rest-api-port 8600", "`--rest-api-port` must be a port other than --port"),
    (SERVE + " --rest-api-port {busy}", "`--rest-api-port` must be a port free"),
    (SERVE + " --host 'not a host'", "`--host`"),
    (SERVE + " --batching-parameters-file {d}/missing.config", "`--batching-parameters-file`"),
    (SERVE + " --batching-parameters-file {d}/batching.config", "`--batching-parameters-file`"),
    (SERVE + " --batching-parameters-file {d}/zero-batching.config", "must be >= 1"),
    (SERVE + " --monitoring-config-file {d}/missing.config", "`--monitoring-config-file`"),
    (SERVE + " --monitoring-config-file {d}/monitoring.config", "`--monitoring-config-file`"),
    (SERVE + " --ssl-cert {d}/notes.txt", "`--ssl-key` must be given with --ssl-cert"),
    (SERVE + " --ssl-cert {d}/missing.pem --ssl-key {d}/missing.key", "`--ssl-cert` must be a readable PEM file"),
    (SERVE + " --max-message-bytes 0", "argument --max-message-bytes"),
    (SERVE + " --grpc-threads 0", "argument --grpc-threads"),
    (SERVE + " --file-system-poll-wait-seconds inf", "argument --file-system-poll-wait-seconds"),
    (SERVE + " --port-file {d}/missing/port", "`--port-file`"),
    (SERVE + " --log-level LOUD", "argument --log-level"),
]


@pytest.mark.parametrize(("command", "words"), CASES, ids=[c for c, _ in CASES])
def test_bad_input_is_one_line_and_exit_code_2(d, busy, capsys, command, words):
    argv = shlex.split(command.format(d=d, busy=busy))
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage error
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0] == err.rstrip("\n").splitlines()[-1], err
    assert errors[0].startswith(f"keras-lstm {argv[0]}: error: ") and words in errors[0], err
    assert not (d / "out").exists() and not (d / "new").exists()  # nothing exported, no run started


def test_a_model_without_versions_is_logged_at_every_poll_and_the_server_stays_up(tmp_path):
    """TF Serving's lines, each poll, for a base path that does not exist and for one with no version yet;
    the server keeps serving (it loads the first version that appears)."""
    (tmp_path / "empty").mkdir()
    config = tmp_path / "models.config"
    config.write_text(
        "model_config_list {\n"
        f"  config {{ name: 'gone' base_path: '{tmp_path / 'nonexistent'}' model_platform: 'tensorflow' }}\n"
        f"  config {{ name: 'early' base_path: '{tmp_path / 'empty'}' model_platform: 'tensorflow' }}\n"
        "}\n"
    )
    server = ServerProcess(["--model-config", str(config), "--file-system-poll-wait-seconds", "0.1"], tmp_path)
    missing = f"Could not find base path {tmp_path / 'nonexistent'} for servable gone"
    empty = (
        f"No versions of servable early found under base path {tmp_path / 'empty'}. "
        "Did you forget to name your leaf directory as a number (eg. '/1/')?"
    )
    try:
        server.wait_listening()
        deadline = time.monotonic() + 60  # a deadline, not a timing: two polls take 0.2 s
        while not (server.log().count(missing) >= 2 and server.log().count(empty) >= 2):
            assert time.monotonic() < deadline, server.log()
            assert server.proc.poll() is None, server.log()
            time.sleep(0.1)
        assert re.search(r" ERROR serving\.server: FileSystemStoragePathSource .*" + re.escape(missing), server.log())
        assert re.search(r" WARNING serving\.server: " + re.escape(empty), server.log())
        assert server.proc.poll() is None, server.log()
    finally:
        assert server.terminate() == 0, server.log()
