"""Every bad argument is a TrainArgumentError naming the flag, reported before any work starts."""

import dataclasses
import os

import pytest

from keras_lstm.cli import main
from keras_lstm.train.config import TrainConfig
from keras_lstm.train.errors import TrainArgumentError


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["adding", "-T", "9"], "--length"),
        (["charlm", "--text", "/no/such/file.txt"], "--text"),
        (["adding", "--text", __file__], "--text"),
        (["adding", "--baseline", "gru", "--peephole"], "--peephole"),
        (["adding", "--baseline", "simple_rnn", "--init", "chrono"], "--init"),
        (["adding", "--max-timescale", "1"], "--max-timescale"),
        (["adding", "--init", "keras", "--max-timescale", "50"], "--max-timescale"),
        (["adding", "--projection-clip", "3"], "--projection-clip"),
        (["adding", "--units", "0"], "--units"),
        (["adding", "--batch-size", "-4"], "--batch-size"),
        (["adding", "--learning-rate", "0"], "--learning-rate"),
        (["adding", "--distribute", "multi-worker"], "--distribute"),  # no TF_CONFIG
        ([], "task"),
        (["--resume", "/no/such/run"], "--resume"),
        (["adding", "--resume", "/no/such/run"], "--resume"),
    ],
)
def test_bad_arguments_fail_before_any_work(argv, flag, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    run = tmp_path / "run"
    extra = [] if "--resume" in argv or not argv else ["--run-dir", str(run)]
    assert main(["train", *argv, *extra]) == 2
    err = capsys.readouterr().err
    assert f"Argument `{flag}`" in err
    assert not run.exists()


def test_unknown_task_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "sorting"])
    assert exit_.value.code == 2 and "invalid choice: 'sorting'" in capsys.readouterr().err
    with pytest.raises(TrainArgumentError, match="task"):
        TrainConfig("sorting")


def test_a_used_run_dir_is_refused(tmp_path, capsys):
    (tmp_path / "something").write_text("x")
    assert main(["train", "adding", "-T", "10", "--run-dir", str(tmp_path)]) == 2
    assert "Argument `--run-dir`" in capsys.readouterr().err


def test_a_too_short_text_is_refused(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("abc" * 10)
    assert main(["train", "charlm", "--text", str(text), "--run-dir", str(tmp_path / "r")]) == 2
    assert "Argument `--text`" in capsys.readouterr().err


def test_every_field_has_a_flag_and_config_round_trips():
    import argparse

    from keras_lstm.train.config import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    dests = {a.dest for a in parser._actions}
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= dests
    args = parser.parse_args(["copy", "-T", "30", "--no-jit", "--layer-norm", "--seed", "3"])
    cfg = TrainConfig(**dict(vars(args).items()))
    assert (cfg.length, cfg.jit, cfg.layer_norm, cfg.seed) == (30, False, True, 3)
    full = cfg.resolved()
    assert full.max_timescale == 30.0 and full.init == "chrono"
    assert TrainConfig.from_json(full.to_json()) == full


def test_max_sequences_sets_the_epochs():
    cfg = TrainConfig("adding", max_sequences=10_000, steps_per_epoch=10, batch_size=32).resolved()
    assert cfg.epochs == 32  # ceil(10000 / 320)


def test_resume_takes_no_other_option(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path), "--units", "4"]) == 2
    assert "given alone" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
