"""The CSV reader of `train series` and `train classify`: every malformed file is refused naming the file, the
line and the column; fills are chosen and counted; a million rows are read within the memory stated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from keras_lstm.cli import main
from keras_lstm.train.config import TrainConfig
from keras_lstm.train.csvfile import fill_missing, order_by_time, read_table
from keras_lstm.train.errors import CSVFormatError, TrainArgumentError

GOOD = "day,sales,price\n" + "".join(f"{d},{10 + d % 7},{2.5 + d / 100}\n" for d in range(1, 61))


def series(path, **extra):
    from keras_lstm.train.series import Series

    cfg = TrainConfig("series", csv=str(path), target="sales", length=5, seed=0, verbose=0, **extra).resolved()
    return Series(cfg)


@pytest.mark.parametrize(
    ("text", "extra", "line", "column", "words"),
    [
        ("", {}, 1, None, "empty"),
        ("day,sales\n", {}, 2, None, "no data rows"),
        ("day,price\n1,2\n", {}, 1, "sales", "no such column"),
        (GOOD.replace("\n9,12,", "\n9,thirteen,"), {}, 10, "sales", "'thirteen' is not a number"),
        ("day,sales\n1,5\n", {}, 2, "sales", "only 1 data row"),
        (GOOD.replace("\n12,15,", "\n12,,"), {}, 13, "sales", "missing value"),
        (
            "day,sales\n3,1\n1,2\n2,3\n1,4\n" + "".join(f"{d},{d}\n" for d in range(4, 40)),
            {"time_col": "day"},
            5,
            "day",
            "appears twice (lines 3 and 5)",
        ),
        (GOOD.replace("\n20,", "\n20,1,"), {}, 21, None, "4 fields where the header has 3"),
        (
            "day,sales\n" + "".join(f"2024-01-{d:02d},{d}\n" for d in range(1, 10)) + "soon,3\n",
            {"time_col": "day"},
            11,
            "day",
            "neither a number nor an ISO 8601 date",
        ),
        (GOOD, {"features": "cost"}, 1, "cost", "no such column"),
    ],
)
def test_malformed_csvs_name_the_file_line_and_column(tmp_path, text, extra, line, column, words):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(CSVFormatError) as info:
        series(path, **extra)
    err = info.value
    assert (err.path, err.line, err.column) == (str(path), line, column)
    assert words in str(err) and str(path) in str(err) and f"line {line}" in str(err)
    if column is not None:
        assert repr(column) in str(err)


def test_the_command_prints_one_line_and_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text(GOOD.replace("\n30,12,", "\n30,N/A,"))
    assert main(["train", "series", "--csv", str(path), "--target", "sales", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}, line 31, column 'sales': missing value" in err
    assert not os.path.exists(tmp_path / "r" / "config.json")


def test_fill_rules_fill_and_count(tmp_path):
    v = np.array([np.nan, 1.0, np.nan, np.nan, 4.0, np.nan])
    ffill, interp = v.copy(), v.copy()
    assert fill_missing(ffill, "ffill") == 4 and fill_missing(interp, "interpolate") == 4
    np.testing.assert_array_equal(ffill, [1, 1, 1, 1, 4, 4])
    np.testing.assert_array_equal(interp, [1, 1, 2, 3, 4, 4])
    grouped = np.array([1.0, np.nan, np.nan, 7.0])
    assert fill_missing(grouped, "ffill", starts=np.array([2])) == 2  # no carrying across a sequence's start
    np.testing.assert_array_equal(grouped, [1, 1, 7, 7])

    path = tmp_path / "gaps.csv"
    path.write_text(GOOD.replace("\n12,15,", "\n12,,").replace("\n40,15,", "\n40,NaN,"))
    task = series(path, missing="interpolate")
    assert task.filled == 2 and any("2 missing cells filled" in n for n in task.notes)


def test_time_is_sorted_and_gaps_reported(tmp_path):
    rows = [f"2024-01-{d:02d},{d}" for d in range(1, 32) if d != 15] + [f"2024-02-{d:02d},{d}" for d in range(1, 29)]
    rows[3], rows[7] = rows[7], rows[3]
    path = tmp_path / "daily.csv"
    path.write_text("day,sales\n" + "\n".join(rows) + "\n")
    table, moved = order_by_time(read_table(str(path), ["sales"], time_col="day"), "day")
    assert moved and np.all(np.diff(table.times) > 0)
    task = series(path, time_col="day")
    assert task.gaps["gaps"] == 1 and task.gaps["step"] == "1 days"
    assert "2024-01-14T00:00:00 -> 2024-01-16T00:00:00" in task.gaps["first"][0]
    assert any("sorted by 'day'" in n for n in task.notes)


def test_flags_are_checked_before_any_work(tmp_path):
    with pytest.raises(TrainArgumentError, match="--target"):
        TrainConfig("series", csv=__file__)
    with pytest.raises(TrainArgumentError, match="--csv"):
        TrainConfig("series", csv=str(tmp_path / "nowhere.csv"), target="y")
    with pytest.raises(TrainArgumentError, match="--horizon"):
        TrainConfig("adding", horizon=3)
    with pytest.raises(TrainArgumentError, match="--id-col"):
        TrainConfig("series", csv=__file__, target="y", id_col="id")


def test_resume_refuses_a_changed_csv(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(GOOD)
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "series",
                "--csv",
                str(path),
                "--target",
                "sales",
                "-T",
                "5",
                "--epochs",
                "1",
                "--units",
                "4",
                "--seed",
                "0",
                "--verbose",
                "0",
                "--run-dir",
                str(run),
            ]
        )
        == 0
    )
    cfg = json.loads(Path(run / "config.json").read_text())
    Path(run / "config.json").write_text(json.dumps({**cfg, "epochs": 2}))
    metrics = json.loads(Path(run / "metrics.json").read_text())
    Path(run / "metrics.json").write_text(json.dumps({**metrics, "status": "running"}))
    path.write_text(GOOD.replace("\n3,", "\n3,1"))
    from keras_lstm.train import resume

    with pytest.raises(TrainArgumentError, match="it has changed since"):
        resume(str(run))


MEMORY_MB = 150  # stated in docs/csv.md: a million rows of three columns read, split, scaled, baselines fitted


def test_a_million_rows_stream_within_the_stated_memory(tmp_path):
    """A child process writes a 1,000,000-row CSV, then builds the series task from it (read, sorted by time,
    split, scaled, baselines fitted over every window) and reports its peak RSS above what it held before."""
    script = textwrap.dedent(f"""
        import numpy as np
        path = {str(tmp_path / "big.csv")!r}
        rng = np.random.default_rng(0)
        with open(path, "w") as f:
            f.write("t,load,temp\\n")
            for a in range(0, 1_000_000, 100_000):
                t = np.arange(a, a + 100_000)
                load = np.sin(t / 24 * 2 * np.pi) + rng.normal(0, 0.1, t.size)
                f.write("".join(f"{{i}},{{x:.4f}},{{y:.3f}}\\n" for i, x, y in zip(t, load, rng.normal(15, 5, t.size))))
        from keras_lstm.train.config import TrainConfig
        from keras_lstm.train.series import Series
        from keras_lstm.train import baselines
        def status(key):  # kB, from /proc/self/status
            return int(next(l for l in open("/proc/self/status") if l.startswith(key)).split()[1])
        open("/proc/self/clear_refs", "w").write("5")  # resets the peak (VmHWM) to the present RSS
        before = status("VmRSS:")
        cfg = TrainConfig("series", csv=path, target="load", features="temp", time_col="t", length=24, season=24,
                          seed=0).resolved()
        task = Series(cfg)
        scaled = (task.inputs - task.mean) / np.sqrt(task.variance)
        ar = baselines.LinearAR(24, 1).fit(scaled, task.y, task.train_ends)
        mae = np.mean(np.abs(ar.predict(scaled, task.test_ends)[:, 0] - task.y[task.test_ends]))
        x, y = task.train_batch(12345)
        after = status("VmHWM:")
        print(len(task.y), len(task.train_ends), x.shape, round(mae, 3), (after - before) // 1024)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout.strip().split("\n")[-1]
    print(out)
    assert out.startswith("1000000 ")
    grown = int(out.split()[-1])
    assert grown < MEMORY_MB, out


def test_a_million_long_format_rows_within_the_stated_memory(tmp_path):
    """The same for classify: 20,000 sequences of 50 rows each, rows in file order, grouped, split, scaled, and
    one padded batch cut."""
    script = textwrap.dedent(f"""
        import numpy as np
        path = {str(tmp_path / "long.csv")!r}
        rng = np.random.default_rng(0)
        with open(path, "w") as f:
            f.write("id,t,a,b,label\\n")
            for s in range(0, 20_000, 2_000):
                ids = np.repeat(np.arange(s, s + 2_000), 50)
                steps = np.tile(np.arange(50), 2_000)
                values = rng.normal(size=(ids.size, 2))
                f.write("".join(f"s{{i}},{{t}},{{x:.4f}},{{y:.4f}},{{'up' if i % 3 else 'down'}}\\n"
                                for i, t, (x, y) in zip(ids, steps, values)))
        from keras_lstm.train.classify import Classify
        from keras_lstm.train.config import TrainConfig
        def status(key):
            return int(next(l for l in open("/proc/self/status") if l.startswith(key)).split()[1])
        open("/proc/self/clear_refs", "w").write("5")
        before = status("VmRSS:")
        task = Classify(TrainConfig("classify", csv=path, id_col="id", label_col="label", time_col="t",
                                    seed=0).resolved())
        x, y = task.train_batch(7)
        print(int(task.offsets[-1]), len(task.labels), x.shape, (status("VmHWM:") - before) // 1024)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout.strip().split("\n")[-1]
    print(out)
    assert out.startswith("1000000 20000 (32, 64, 2) ")
    assert int(out.split()[-1]) < MEMORY_MB, out
