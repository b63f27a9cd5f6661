"""`keras-lstm train classify`: generated variable-length sequences with string labels, in long format with the
rows shuffled; it reaches the accuracy the generator allows, and the served model names the classes."""

from __future__ import annotations

import collections
import csv
import http.client
import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest
from serving_helpers import ServerProcess, free_port

from keras_lstm.cli import main
from keras_lstm.train.classify import Classify, confusion_matrix
from keras_lstm.train.config import TrainConfig
from keras_lstm.train.errors import CSVFormatError
from keras_lstm.train.examples import SHAPES, write_labelled_sequences_csv
from keras_lstm.train.runner import train
from serving import Client

pytestmark = pytest.mark.timeout(600)

SEQUENCES = 600


def read_sequences(path):
    """{id: (rows (n, 2) in time order, label)} read here with the csv module, independently of the task."""
    rows = collections.defaultdict(list)
    with open(path) as f:
        for r in csv.DictReader(f):
            rows[r["id"]].append((int(r["t"]), float(r["level"]), float(r["noise"]), r["label"]))
    return {k: (np.array([v[1:3] for v in sorted(rs)], np.float32), rs[0][3]) for k, rs in rows.items()}


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("shapes")
    path, honest = write_labelled_sequences_csv(work / "shapes.csv", sequences=SEQUENCES, seed=0, flip=0.1)
    cfg = TrainConfig(
        "classify", csv=str(path), id_col="id", label_col="label", time_col="t", units=16, epochs=30, seed=1, verbose=0
    )
    result = train(cfg, run_dir=str(work / "run"))
    task = Classify(TrainConfig.from_json(Path(os.path.join(result.run_dir, "config.json")).read_text()))
    test_ids = [task.sequence_ids[i] for i in task.test]
    return work, path, honest, result, task, test_ids


def test_reaches_the_accuracy_its_generator_allows(shapes_run):
    _work, path, honest, result, task, test_ids = shapes_run
    m = result.metrics
    allowed = float(np.mean([honest[int(i.split("-")[1])] for i in test_ids]))  # labels not flipped, on this test set
    assert m["test_accuracy"] >= allowed - 0.05, (m["test_accuracy"], allowed, m["summary"])
    assert m["lstm_beats"]["majority_class"]

    # The reported numbers, recomputed from the CSV and model.keras here.
    seqs = read_sequences(path)
    model = keras.saving.load_model(os.path.join(result.run_dir, "model.keras"))
    classes = json.loads(Path(os.path.join(result.run_dir, "classes.json")).read_text())
    assert classes == sorted(SHAPES) == m["classes"]
    predicted = [classes[int(np.argmax(model(seqs[i][0][None])[0]))] for i in test_ids]
    truth = [seqs[i][1] for i in test_ids]
    assert m["test_accuracy"] == pytest.approx(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))
    index = {c: k for k, c in enumerate(classes)}
    expected = np.zeros((4, 4), int)
    for p, t in zip(predicted, truth, strict=True):
        expected[index[t], index[p]] += 1
    assert m["confusion_matrix"] == expected.tolist()
    train_labels = collections.Counter(seqs[task.sequence_ids[i]][1] for i in task.train)
    majority = train_labels.most_common(1)[0][0]
    assert m["majority_class"] == majority
    assert m["majority_accuracy"] == pytest.approx(np.mean([t == majority for t in truth]))
    lengths = [len(v[0]) for v in seqs.values()]
    assert m["length_range"] == [min(lengths), max(lengths)] and min(lengths) < max(lengths)
    for name in ("confusion.png", "learning_curve.png", "classes.json", "model.keras"):
        assert os.path.isfile(os.path.join(result.run_dir, name)), name


def test_split_is_by_sequence_and_stratified(shapes_run):
    _work, _path, _honest, _result, task, _test_ids = shapes_run
    parts = [set(task.train), set(task.val), set(task.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(map(len, parts)) == SEQUENCES
    for k in range(len(task.classes)):
        members = int(np.sum(task.labels == k))
        assert int(np.sum(task.labels[task.test] == k)) == max(1, round(members * 0.15))
        assert int(np.sum(task.labels[task.val] == k)) == max(1, round(members * 0.15))


def test_served_classifier_names_the_classes(shapes_run):
    work, path, _honest, result, _task, test_ids = shapes_run
    base = work / "models"
    assert main(["export", result.run_dir, "--name", "shapes", "--base", str(base)]) == 0
    seqs = read_sequences(path)
    chosen = test_ids[:8]
    lengths = np.array([len(seqs[i][0]) for i in chosen], np.int32)
    x = np.zeros((len(chosen), lengths.max(), 2), np.float32)  # padded with zeros: `lengths` masks them
    for row, i in enumerate(chosen):
        x[row, : lengths[row]] = seqs[i][0]
    model = keras.saving.load_model(os.path.join(result.run_dir, "model.keras"))
    expected = np.stack([np.asarray(model(seqs[i][0][None]))[0] for i in chosen])
    classes = json.loads(Path(os.path.join(result.run_dir, "classes.json")).read_text())
    rest = free_port()
    proc = ServerProcess(["--model-config", str(base / "models.config"), "--rest-api-port", str(rest)], work)
    try:
        with Client(proc.wait_listening(), model="shapes", timeout_s=30.0) as client:
            client.wait_until_ready(timeout_s=60)
            served = client.predict(x, lengths)
        body = json.dumps(
            {"signature_name": "padded", "inputs": {"sequences": x.tolist(), "lengths": lengths.tolist()}}
        )
        conn = http.client.HTTPConnection(f"127.0.0.1:{rest}", timeout=30)
        conn.request("POST", "/v1/models/shapes:predict", body)
        answer = json.loads(conn.getresponse().read())
        conn.close()
    finally:
        proc.terminate()
    np.testing.assert_allclose(served["outputs"], expected, rtol=1e-4, atol=1e-5)
    assert [[c.decode() for c in row] for row in served["classes"]] == [classes] * len(chosen)
    named = [classes[int(k)] for k in np.argmax(served["outputs"], axis=-1)]
    assert named == [classes[int(k)] for k in np.argmax(expected, axis=-1)]
    assert answer["outputs"]["classes"] == [classes] * len(chosen)
    np.testing.assert_allclose(answer["outputs"]["outputs"], expected, rtol=1e-4, atol=1e-5)


def test_confusion_matrix_counts():
    assert confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 3).tolist() == [
        [1, 1, 0],
        [0, 1, 0],
        [1, 0, 0],
    ]


@pytest.mark.parametrize(
    ("rows", "line", "column", "words"),
    [
        ([("a", 0, 1.0, "x"), ("a", 1, 2.0, "y")], 3, "label", "labelled 'y' here and 'x' on line 2"),
        (
            [(s, 0, 1.0, "x") for s in "abc"] + [("d", 0, 1.0, "y"), ("e", 0, 2.0, "y")],
            5,
            "label",
            "the class 'y' has 2 sequences",
        ),
        ([("a", 0, 1.0, "x"), ("a", 0, 2.0, "x")], 3, "t", "appears twice (lines 2 and 3 of the same sequence)"),
        ([("a", 0, 1.0, "x"), ("", 1, 2.0, "x")], 3, "id", "missing value"),
    ],
)
def test_malformed_long_format(tmp_path, rows, line, column, words):
    path = tmp_path / "bad.csv"
    path.write_text("id,t,value,label\n" + "".join(f"{a},{b},{c},{d}\n" for a, b, c, d in rows))
    cfg = TrainConfig("classify", csv=str(path), id_col="id", label_col="label", time_col="t", seed=0).resolved()
    with pytest.raises(CSVFormatError) as info:
        Classify(cfg)
    assert (info.value.line, info.value.column) == (line, column) and words in str(info.value), str(info.value)
    assert str(path) in str(info.value)


def test_export_refuses_class_names_that_do_not_fit(tmp_path):
    from keras_lstm import LSTM
    from keras_lstm.export import ExportArgumentError, export_model

    model = keras.Sequential([keras.Input((None, 2)), LSTM(3), keras.layers.Dense(4, activation="softmax")])
    for names in (["a", "b", "c"], ["a", "b", "c", "c"], "abcd"):
        with pytest.raises(ExportArgumentError, match="4 distinct strings"):
            export_model(model, tmp_path, "m", class_names=names)
    assert not (tmp_path / "m" / "1").exists()
