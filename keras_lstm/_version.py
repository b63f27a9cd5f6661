"""The version of keras-lstm, in one place: pyproject.toml reads it (``[tool.setuptools.dynamic]``),
``keras_lstm.__version__`` and ``keras-lstm --version`` show it. Record each release in CHANGELOG.md."""

__version__ = "0.2.0"
