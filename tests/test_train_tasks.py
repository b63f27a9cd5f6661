"""The task generators against their published definitions (no training here)."""

import math
import os

import numpy as np
import pytest

from keras_lstm.train import tasks


@pytest.mark.parametrize("T", [10, 20, 100])
def test_adding_matches_hochreiter_schmidhuber_1997(T):
    rng = np.random.default_rng(0)
    x, lengths, y = tasks.adding_batch(rng, 2000, T)
    assert x.shape == (2000, T + T // 10, 2) and y.shape == (2000, 1)
    assert lengths.min() == T and lengths.max() == T + T // 10  # uniform in [T, T + T/10], both ends reached
    first_marks, second_marks = set(), set()
    for seq, n, target in zip(x, lengths, y[:, 0], strict=True):
        values, markers = seq[:n, 0], seq[:n, 1]
        assert np.all(seq[n:] == tasks.PAD)
        assert np.all((values >= -1) & (values <= 1))
        marked = np.flatnonzero(markers == 1.0)
        assert len(marked) == 2
        # One mark among the first 10 pairs, the other among the first T/2 - 1, at another position.
        a, b = marked
        assert (a < 10 and b < T // 2 - 1) or (b < 10 and a < T // 2 - 1)
        first_marks.update(p for p in marked if p < 10)
        second_marks.update(p for p in marked if p < T // 2 - 1)
        unmarked_ends = [p for p in (0, n - 1) if p not in marked]
        assert all(markers[p] == -1.0 for p in unmarked_ends)
        others = np.delete(markers, np.asarray([*marked, *unmarked_ends], dtype=int))
        assert np.all(others == 0.0)
        if 0 in marked:
            assert values[0] == 0.0  # "if the first pair is marked, X1 is set to zero"
        assert target == pytest.approx(0.5 + values[marked].sum() / 4.0, abs=1e-6)
    assert first_marks == set(range(10))
    assert second_marks == set(range(T // 2 - 1))


def test_adding_chance_mse_is_about_one_24th():
    """Always predicting 0.5 scores E[(X1 + X2)^2]/16: 1/24 for two free U[-1, 1] values, a little less
    because a value on the first pair is zeroed (P = 1/10 for X1, 0.9/(T/2 - 2) for X2)."""
    T = 100
    _, _, y = tasks.adding_batch(np.random.default_rng(1), 20000, T)
    expected = ((1 - 0.1) + (1 - 0.9 / (T // 2 - 2))) / 3 / 16
    assert np.mean((y - 0.5) ** 2) == pytest.approx(expected, rel=0.04)
    assert pytest.approx(1 / 24) == tasks.ADDING_CHANCE_MSE and expected == pytest.approx(1 / 24, rel=0.06)


def test_adding_is_a_function_of_the_generator_state():
    a = tasks.adding_batch(np.random.default_rng([5, 0, 7]), 8, 30)
    b = tasks.adding_batch(np.random.default_rng([5, 0, 7]), 8, 30)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("T", [10, 50])
def test_copy_layout_arjovsky_2016(T):
    x, y = tasks.copy_batch(np.random.default_rng(0), 500, T)
    L = T + 20
    assert x.shape == (500, L, 10) and y.shape == (500, L)
    np.testing.assert_array_equal(x.sum(-1), 1.0)  # one-hot
    seq = x.argmax(-1)
    symbols = seq[:, :10]
    assert symbols.min() == 0 and symbols.max() == 7  # 10 symbols drawn from 8
    assert np.all(seq[:, 10 : T + 9] == tasks.BLANK)  # T - 1 blanks
    assert np.all(seq[:, T + 9] == tasks.MARKER)  # then the marker
    assert np.all(seq[:, T + 10 :] == tasks.BLANK)  # then 10 blanks while the model recalls
    assert np.all(y[:, : T + 10] == tasks.BLANK)
    np.testing.assert_array_equal(y[:, T + 10 :], symbols)


def test_copy_baseline_loss():
    for T in (100, 500):
        assert tasks.copy_baseline_loss(T) == pytest.approx(10 * math.log(8) / (T + 20))


def test_default_text_is_the_stdlib_sorted_and_capped():
    files = tasks.stdlib_sources()
    assert files == sorted(files) and os.path.join(os.path.dirname(os.__file__), "os.py") in files
    text = tasks.load_text(None, 50_000)
    assert len(text) == 50_000 and text == tasks.load_text(None, 50_000)
    with open(files[0], encoding="utf-8", errors="replace") as f:
        assert text.startswith(f.read(1000))


def test_co2_is_the_statsmodels_series_monthly():
    months, ppm = tasks.co2_monthly()
    assert len(months) == len(ppm) > 500 and not np.isnan(ppm).any()
    assert str(months[0]) == "1958-03" and np.all(np.diff(months).astype(int) == 1)
    assert 310 < ppm[:12].mean() < 320 and ppm[-12:].mean() > 360
