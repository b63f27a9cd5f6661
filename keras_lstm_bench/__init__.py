"""keras-lstm's benchmark harness, apart from the layer: ``layer`` (``keras-lstm bench``), ``fit``
(``bench/fit.py``, the model.fit workload), ``torch_peer`` (torch in its own process), ``revision``
(the layer at a git revision, for ``--against``)."""
