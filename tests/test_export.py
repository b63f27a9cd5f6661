"""Export -> load as TF Serving does -> compare, for every model in tests/export_zoo.py.

TF Serving's path, twice: the session loader and ``Session.run`` on the SignatureDef's tensor names in a
fresh process without Keras (``session_runner.py``, as ``saved_model_cli run`` does), and TensorFlow's C++
``LoadSavedModel`` + ``Session::Run`` (``cc_loader.py``, as ``tensorflow_model_server`` does); and
``saved_model_cli run`` itself, as a user types it. Never ``tf.saved_model.load``.

Oracles: the Keras model itself (outputs), the Keras layers' own outputs (final h), the unpadded rows
(the `padded` signature), and whole-sequence serving (the `step` signature, which runs the pure step
function, not the layer's time loop).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from cc_loader import CcRunError, run_signatures
from export_zoo import ZOO, dynamic_time_blocker, sample_inputs
from google.protobuf import text_format
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from keras_lstm import LSTM
from keras_lstm.export import export_model
from keras_lstm.export.graphcheck import serving_blockers
from keras_lstm.export.warmup import WARMUP_FILE
from keras_lstm.kernels import block
from keras_lstm.kernels.select import SAVED_SLICES

HERE = Path(__file__).resolve().parent

_BLOCKER = dynamic_time_blocker()
pytestmark = pytest.mark.skipif(bool(_BLOCKER), reason=_BLOCKER)
BATCH, TIME, LENGTHS = 3, 5, (5, 3, 1)
# Each of its slices (select.SAVED_SLICES) above every zoo LSTM's block.max_batch (the smallest has 4 units): such
# a batch takes the graph loop's branch.
BIG_BATCH = SAVED_SLICES * (block.MAX_BATCH_UNITS // 4 + 1)
TOL = 1e-5


def _final_h_oracle(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Each recurrent layer's own output at the last step, from the Keras model, concatenated."""
    recurrent = [layer for layer in model.layers if isinstance(layer, (LSTM, keras.layers.Bidirectional))]
    outs = keras.Model(model.inputs[0], [layer.output for layer in recurrent])(x)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return np.concatenate([np.asarray(o)[:, -1] if o.ndim == 3 else np.asarray(o) for o in outs], axis=-1)


def _padded(entry, x: np.ndarray, seed: int) -> np.ndarray:
    """x with every step at or past LENGTHS[i] replaced by other values (as a batcher pads)."""
    garbage = sample_inputs(entry, BATCH, TIME, seed) * (1 if entry.tokens else 7)
    keep = np.arange(TIME)[None, :] < np.array(LENGTHS)[:, None]
    keep = keep if entry.tokens else keep[..., None]
    return np.where(keep, x, garbage)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every zoo model exported into one base (plus `stacked` with --xla), its Keras oracles, and the
    results of calling every signature in one fresh process."""
    base = tmp_path_factory.mktemp("models")
    (base / "models.config").write_text(
        'model_config_list { config { name: "other" base_path: "/elsewhere/other" model_platform: "tensorflow" } }\n'
    )
    cases, jobs = {}, []

    def job(path, kind, inputs):
        jobs.append((str(path), kind, inputs))
        return len(jobs) - 1

    for name, entry in ZOO.items():
        model = entry.build()
        path = export_model(model, base, name)
        x = sample_inputs(entry, BATCH, TIME, seed=10)
        xp = _padded(entry, x, seed=11)
        case = {
            "entry": entry,
            "path": path,
            "x": x,
            "keras": np.asarray(model(x)),
            "h": _final_h_oracle(model, x),
            "rows": [
                (np.asarray(model(x[i : i + 1, :n])), _final_h_oracle(model, x[i : i + 1, :n]))
                for i, n in enumerate(LENGTHS)
            ],
            "default": job(path, "serving_default", {"sequences": x}),
            "padded": job(path, "padded", {"sequences": xp, "lengths": np.array(LENGTHS, np.int32)}),
            "row_jobs": [job(path, "serving_default", {"sequences": x[i : i + 1, :n]}) for i, n in enumerate(LENGTHS)],
        }
        if entry.steppable:
            case["stream"] = job(path, "stream", {"sequences": x})
        case["big_default"] = job(path, "serving_default", {"sequences": _tiled(x)})
        case["big_padded"] = job(
            path, "padded", {"sequences": _tiled(xp), "lengths": _tiled(np.array(LENGTHS, np.int32))}
        )
        case["warmup"] = [(sig, job(path, sig, inputs)) for sig, inputs in _warmup_records(path)]
        cases[name] = case
    xla_model = ZOO["stacked"].build()
    xla_path = export_model(xla_model, base, "stacked_xla", xla=True)
    x = cases["stacked"]["x"]
    cases["stacked_xla"] = {
        "path": xla_path,
        "keras": np.asarray(xla_model(x)),
        "default": job(xla_path, "serving_default", {"sequences": x}),
        "padded": job(xla_path, "padded", jobs[cases["stacked"]["padded"]][2]),
        "warmup": [(sig, job(xla_path, sig, inputs)) for sig, inputs in _warmup_records(xla_path)],
    }

    work = tmp_path_factory.mktemp("runner")
    (work / "jobs.pkl").write_bytes(pickle.dumps(jobs))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    subprocess.run(
        [sys.executable, str(HERE / "session_runner.py"), str(work / "jobs.pkl"), str(work / "out.pkl")],
        check=True,
        env=env,
        timeout=300,
    )
    out = pickle.loads((work / "out.pkl").read_bytes())
    return {"base": base, "cases": cases, "jobs": jobs, "results": out["results"], "signatures": out["signatures"]}


def _tiled(a: np.ndarray) -> np.ndarray:
    """BIG_BATCH rows: a's rows over and over."""
    return np.concatenate([a] * -(-BIG_BATCH // len(a)))[:BIG_BATCH]


def _warmup_records(path: Path) -> list:
    """(signature, inputs) of every record of the export's warmup file, in order."""
    out = []
    for record in tf.data.TFRecordDataset(str(path / WARMUP_FILE)).as_numpy_iterator():
        request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
        out.append((request.model_spec.signature_name, {k: tf.make_ndarray(v) for k, v in request.inputs.items()}))
    return out


def _close(actual, expected, what):
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOL, err_msg=what)


@pytest.mark.parametrize("name", list(ZOO))
def test_serving_default_matches_keras(exported, name):
    case, res = exported["cases"][name], exported["results"]
    got = res[case["default"]]
    _close(got["outputs"], case["keras"], "outputs")
    _close(got["h"], case["h"], "final h of every LSTM")
    assert got["c"].shape[0] == BATCH and got["c"].dtype == np.float32


@pytest.mark.parametrize("name", list(ZOO))
def test_padded_rows_match_their_unpadded_results(exported, name):
    case, res = exported["cases"][name], exported["results"]
    got = res[case["padded"]]
    for i, n in enumerate(LENGTHS):
        keras_out, keras_h = case["rows"][i]
        alone = res[case["row_jobs"][i]]
        out = got["outputs"][i : i + 1]
        _close(out[:, :n] if out.ndim == 3 else out, keras_out, f"row {i} outputs vs Keras on the row alone")
        _close(got["h"][i : i + 1], keras_h, f"row {i} h vs Keras on the row alone")
        _close(got["c"][i : i + 1], alone["c"], f"row {i} c vs serving_default on the row alone")


@pytest.mark.parametrize("name", [n for n, e in ZOO.items() if e.steppable])
def test_streaming_steps_match_the_whole_sequence(exported, name):
    case, res = exported["cases"][name], exported["results"]
    whole, streamed = res[case["default"]], res[case["stream"]]
    outputs = whole["outputs"] if whole["outputs"].ndim == 3 else streamed["outputs"][:, -1]
    _close(streamed["outputs"] if whole["outputs"].ndim == 3 else outputs, whole["outputs"], "outputs")
    _close(streamed["h"], whole["h"], "h")
    _close(streamed["c"], whole["c"], "c")


def test_signatures_per_model(exported):
    sigs = {Path(p).parent.name: s for p, s in exported["signatures"].items()}
    for name, entry in ZOO.items():
        expected = {"serving_default", "padded"} | ({"step", "init_state"} if entry.steppable else set())
        assert set(sigs[name]) == expected, name


@pytest.mark.parametrize("name", list(ZOO))
def test_batches_above_the_block_ops_limit_give_the_same_results(exported, name):
    """Stock exports run BlockLSTMV2 up to block.max_batch rows and the graph loop above (a tf.cond on the
    batch): a batch of the small batch's rows repeated, above the limit, gives its results repeated."""
    case, res = exported["cases"][name], exported["results"]
    for big, small in (("big_default", "default"), ("big_padded", "padded")):
        for alias, value in res[case[small]].items():
            _close(res[case[big]][alias], _tiled(value), f"{big} {alias}")


def test_warmup_requests_cover_the_signatures_and_run(exported):
    for name, case in exported["cases"].items():
        steppable = ZOO["stacked" if name == "stacked_xla" else name].steppable
        names = {sig for sig, _ in case["warmup"]}
        assert names == (
            {"serving_default", "padded", "step", "init_state"} if steppable else {"serving_default", "padded"}
        )
        for sig, index in case["warmup"]:
            assert exported["results"][index]["h"].shape[0] == 1, (name, sig)


@pytest.mark.parametrize("name", [*ZOO, "stacked_xla"])
def test_cc_loader_runs_every_signature_as_tf_serving_does(exported, name):
    """tensorflow::LoadSavedModel + Session::Run (C++) on every job of the export but streams: the same
    numbers as the Python session path, so also the Keras oracles that path is held to above."""
    case = exported["cases"][name]
    path = str(case["path"])
    indices = [k for k, (p, kind, _) in enumerate(exported["jobs"]) if p == path and kind != "stream"]
    got = run_signatures(
        path, [exported["jobs"][k][1:] for k in indices], xla_cpu_compilation_enabled=name == "stacked_xla"
    )
    assert {exported["jobs"][k][1] for k in indices} >= {"serving_default"}
    for k, outputs in zip(indices, got, strict=True):
        want = exported["results"][k]
        assert set(outputs) == set(want), exported["jobs"][k][1]
        for alias in want:
            _close(outputs[alias], want[alias], f"{name} {exported['jobs'][k][1]} {alias}")
    _close(got[indices.index(case["default"])]["outputs"], case["keras"], f"{name}: C++ vs Keras")


def test_no_xla_or_cudnn_in_the_graph_unless_asked(exported):
    for name, case in exported["cases"].items():
        blockers = serving_blockers(case["path"])
        if name == "stacked_xla":
            assert any("_XlaMustCompile" in b for b in blockers), "the check must see the opt-in XLA marks"
        else:
            assert blockers == [], blockers


def test_xla_export_fails_clearly_on_a_server_without_xla_compilation(exported):
    """TF Serving without --xla_cpu_compilation_enabled (tensorflow::DisableXlaCompilation) loads an --xla
    export, then fails its first Session::Run, the warmup replay, with a status that says so: no wrong results.
    (Its warmup replay, and every signature, runs with the flag in test_cc_loader_runs_every_signature...)"""
    case = exported["cases"]["stacked_xla"]
    _sig, index = case["warmup"][0]
    with pytest.raises(CcRunError, match="XLA compilation disabled"):
        run_signatures(case["path"], [exported["jobs"][index][1:]])


def test_xla_export_gives_the_same_outputs(exported):
    """Also with the batch run as slices (select.SAVED_SLICES) and under a mask."""
    case, res = exported["cases"]["stacked_xla"], exported["results"]
    _close(res[case["default"]]["outputs"], case["keras"], "outputs")
    for alias, value in res[exported["cases"]["stacked"]["padded"]].items():
        _close(res[case["padded"]][alias], value, f"padded {alias} vs the stock export")


def test_models_config_lists_every_export_and_keeps_other_entries(exported):
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((exported["base"] / "models.config").read_text(), config)
    paths = {c.name: c.base_path for c in config.model_config_list.config}
    assert paths == {"other": "/elsewhere/other", **{n: f"/models/{n}" for n in [*ZOO, "stacked_xla"]}}


def test_saved_model_cli_run_prints_the_models_outputs(exported, tmp_path):
    """What a user types (the issue's reproduction): saved_model_cli run with a literal input."""
    case = exported["cases"]["stacked"]
    x = np.round(case["x"][:1, :4], 3)
    literal = (
        "["
        + ",".join(
            "[" + ",".join("[" + ",".join(repr(float(v)) for v in step) + "]" for step in row) + "]" for row in x
        )
        + "]"
    )
    cli = Path(sys.executable).with_name("saved_model_cli")
    done = subprocess.run(
        [
            str(cli),
            "run",
            "--dir",
            str(case["path"]),
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--input_exprs",
            f"sequences={literal}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    model = case["entry"].build()
    _close(np.load(tmp_path / "out" / "outputs.npy"), np.asarray(model(x.astype(np.float32))), "saved_model_cli run")


def test_saved_model_cli_lists_names_dtypes_and_shapes(exported):
    cli = Path(sys.executable).with_name("saved_model_cli")
    shown = {}
    for name in ("stacked", "tokens"):
        shown[name] = subprocess.run(
            [str(cli), "show", "--all", "--dir", str(exported["cases"][name]["path"])],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        ).stdout
    text = " ".join(shown["stacked"].split())
    for sig in ("serving_default", "padded", "step", "init_state"):
        assert f"signature_def['{sig}']" in text
    assert "inputs['sequences'] tensor_info: dtype: DT_FLOAT shape: (-1, -1, 3)" in text
    assert "inputs['lengths'] tensor_info: dtype: DT_INT32 shape: (-1)" in text
    assert "inputs['x'] tensor_info: dtype: DT_FLOAT shape: (-1, 3)" in text
    assert "inputs['batch_size'] tensor_info: dtype: DT_INT32 shape: ()" in text
    assert "outputs['outputs'] tensor_info: dtype: DT_FLOAT shape: (-1, 2)" in text
    assert "outputs['h'] tensor_info: dtype: DT_FLOAT shape: (-1, 9)" in text  # 6 + projection 3
    assert "outputs['c'] tensor_info: dtype: DT_FLOAT shape: (-1, 11)" in text  # 6 + 5
    assert "output_0" not in text
    tokens = " ".join(shown["tokens"].split())
    assert "inputs['sequences'] tensor_info: dtype: DT_INT32 shape: (-1, -1)" in tokens
    assert "inputs['x'] tensor_info: dtype: DT_INT32 shape: (-1)" in tokens
