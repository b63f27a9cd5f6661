"""Every config file in docker/ and models/ parses with TF Serving's own protos, and the
container files agree with each other and with models/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from serving.config_protos import BatchingParameters, ModelServerConfig, MonitoringConfig, parse_text_file
from serving.model_config import load_model_config

REPO = Path(__file__).resolve().parents[1]
PROTO_FOR = {
    "models.config": ModelServerConfig,
    "batching.config": BatchingParameters,
    "monitoring.config": MonitoringConfig,
}
CONFIGS = sorted(p for d in ("docker", "models") for p in (REPO / d).rglob("*.config"))
COMPOSE = (REPO / "docker" / "compose.yaml").read_text()
DOCKERFILE = (REPO / "docker" / "Dockerfile").read_text()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_config_parses_with_tf_serving_protos(path):
    assert path.name in PROTO_FOR, f"{path}: no proto registered for this config file"
    message = parse_text_file(path, PROTO_FOR[path.name])
    assert message.ByteSize() > 0


def test_all_three_configs_exist():
    assert {p.name for p in CONFIGS} >= set(PROTO_FOR)


def test_model_config_names_the_container_path():
    config = parse_text_file(REPO / "models" / "models.config", ModelServerConfig)
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path, model.model_platform) == ("adding", "/models/adding", "tensorflow")
    # ... which the local server reads from models/adding (the compose mount, reversed).
    (source,) = load_model_config(REPO / "models" / "models.config")
    assert source.base_path == REPO / "models" / "adding"


def test_batching_and_monitoring_values():
    batching = parse_text_file(REPO / "models" / "batching.config", BatchingParameters)
    for field in ("max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches"):
        assert batching.HasField(field) and getattr(batching, field).value > 0, field
    monitoring = parse_text_file(REPO / "models" / "monitoring.config", MonitoringConfig)
    assert monitoring.prometheus_config.enable and monitoring.prometheus_config.path.startswith("/")


def test_dockerfile_pins_a_serving_release():
    match = re.search(r"^FROM tensorflow/serving:(\d+)\.(\d+)\.(\d+)\s*$", DOCKERFILE, re.M)
    assert match, "FROM must pin an exact tensorflow/serving:X.Y.Z tag"
    assert f"image: keras-lstm-serving:{'.'.join(match.groups())}" in COMPOSE


def test_serving_image_runs_the_tensorflow_we_export_with():
    """A graph written by a newer TensorFlow may use ops or attributes an older server does not know:
    the image's TF Serving release, pyproject's tensorflow and tensorflow-serving-api pins and the
    installed TensorFlow share one minor version."""
    import tensorflow as tf

    image = re.search(r"^FROM tensorflow/serving:(\d+)\.(\d+)\.\d+", DOCKERFILE, re.M).groups()
    pyproject = (REPO / "pyproject.toml").read_text()
    for package in ("tensorflow", "tensorflow-serving-api"):
        pin = re.search(rf'"{package}>=(\d+)\.(\d+),<(\d+)\.(\d+)"', pyproject)
        assert pin, f"pyproject.toml must pin {package} to one minor version (>=X.Y,<X.Y+1)"
        low, high = pin.groups()[:2], pin.groups()[2:]
        assert low == image and (int(high[0]), int(high[1])) == (int(low[0]), int(low[1]) + 1), (package, pin.group(0))
    assert tuple(tf.__version__.split(".")[:2]) == image, tf.__version__


def _flags(text: str) -> set[str]:
    return set(re.findall(r"--[a-z_]+=[^\s\",\\]+", text))


def test_compose_runs_what_the_issue_asks():
    assert "- ../models:/models:ro" in COMPOSE
    assert "healthcheck:" in COMPOSE and "/v1/models/adding" in COMPOSE
    flags = _flags(COMPOSE)
    assert {
        "--model_config_file=/models/models.config",
        "--enable_batching=true",
        "--batching_parameters_file=/models/batching.config",
        "--monitoring_config_file=/models/monitoring.config",
        "--xla_cpu_compilation_enabled=true",
    } <= flags
    cmd = DOCKERFILE[DOCKERFILE.index("CMD [") :]
    assert flags == _flags(cmd[: cmd.index("]")]), "compose command and Dockerfile CMD disagree"
    for flag in flags:  # every file the container reads is in models/
        value = flag.split("=", 1)[1]
        if value.startswith("/models/"):
            assert (REPO / "models" / value.removeprefix("/models/")).is_file(), flag
