"""The package's public surface and metadata."""

import keras_lstm


def test_all_names_the_lazy_exports():
    assert sorted(keras_lstm.__all__) == sorted([*keras_lstm._EXPORTS, "load_all"])
    assert len(set(keras_lstm.__all__)) == len(keras_lstm.__all__)
