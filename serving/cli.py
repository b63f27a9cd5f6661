"""`keras-lstm serve`: the local TF-Serving-compatible gRPC (and REST) server.

    keras-lstm serve --model-config models/models.config
    keras-lstm serve --model-base models/adding --model-name adding

Flags mirror tensorflow_model_server's (--port, --model_config_file -> --model-config,
--enable_batching, --batching_parameters_file, --file_system_poll_wait_seconds,
--model_config_file_poll_wait_seconds, --tensorflow_intra_op_parallelism,
--tensorflow_inter_op_parallelism, --rest_api_port, --rest_api_num_threads, --rest_api_timeout_in_ms,
--monitoring_config_file). It binds
127.0.0.1 unless --host says otherwise. Ctrl-C or SIGTERM stops it cleanly: health turns
NOT_SERVING and new calls get UNAVAILABLE for --drain-seconds, requests in flight finish
(up to --grace-seconds), then it exits 0.

A flag it cannot use (a missing or unparseable config file, a port out of range or taken, a missing TLS
file) is one line on stderr and exit code 2, before TensorFlow loads any model. A base path with no
version yet is not an error, as in TF Serving: it is logged at every poll until a version appears.
"""

from __future__ import annotations

import argparse
import errno
import functools
import logging
import math
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used, so that `--help` stays quick
    from serving.batching import BatchingOptions
    from serving.manager import ModelManager
    from serving.model_config import ModelSource, Mount
    from serving.server import ConfigResolver

__all__ = [
    "ServeArgumentError",
    "configure",
    "disable_xla_compilation",
    "main",
    "run",
    "set_tensorflow_threads",
    "thread_count",
]

log = logging.getLogger("serving.server")


class ServeArgumentError(ValueError):
    """A ``keras-lstm serve`` flag cannot be used: a config file that is missing or does not parse, a
    port out of range or taken, a TLS file missing, flags that do not go together. Raised before the
    server starts; the command prints it as one line and exits with code 2. Fix: pass what it says."""

    def __init__(self, argument: str, value: object, expected: str):
        self.argument, self.value, self.expected = argument, value, expected
        super().__init__(f"Argument `{argument}` must be {expected}; received {argument}={value!r}.")


def configure(parser: argparse.ArgumentParser) -> None:
    models = parser.add_argument_group("models")
    models.add_argument("--model-config", type=Path, help="ModelServerConfig text file (models/models.config)")
    models.add_argument("--model-base", type=Path, help="one model's base path, holding <version>/ directories")
    models.add_argument("--model-name", help="the name to serve --model-base under")
    models.add_argument(
        "--mount",
        action="append",
        default=[],
        metavar="HOST_DIR:/CONTAINER_DIR",
        help="read config base_paths under CONTAINER_DIR from HOST_DIR, like a docker volume "
        "(default: the config file's directory for /models)",
    )
    models.add_argument(
        "--file-system-poll-wait-seconds",
        type=_seconds,
        default=1.0,
        help="how often to look for new and removed versions (0: never)",
    )
    models.add_argument(
        "--model-config-file-poll-wait-seconds",
        type=_seconds,
        default=0.0,
        help="how often to re-read --model-config and serve what it names then (0: read once, "
        "as TF Serving's default; ModelService.HandleReloadConfigRequest works either way)",
    )
    net = parser.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="address to bind; 0.0.0.0 or :: for all interfaces")
    net.add_argument("--port", type=_port_or("pick a free one"), default=8500, help="gRPC port (0: pick a free one)")
    net.add_argument("--port-file", type=Path, help="write the bound port here once serving")
    net.add_argument("--max-message-bytes", type=_positive, default=64 * 1024 * 1024, help="gRPC message size limit")
    net.add_argument("--grpc-threads", type=_positive, default=64, help="threads answering RPCs")
    net.add_argument("--grace-seconds", type=_seconds, default=30.0, help="how long shutdown waits for requests")
    net.add_argument(
        "--drain-seconds",
        type=_seconds,
        default=1.0,
        help="on shutdown, how long new calls get UNAVAILABLE (retryable) before the port closes",
    )
    net.add_argument("--ssl-cert", type=Path, help="server certificate chain (PEM); enables TLS")
    net.add_argument("--ssl-key", type=Path, help="server private key (PEM)")
    net.add_argument(
        "--auth-token",
        default=os.environ.get("SERVING_AUTH_TOKEN"),
        help="require 'authorization: Bearer TOKEN' call metadata, like an auth proxy would "
        "(default: $SERVING_AUTH_TOKEN; unset: no check)",
    )
    net.add_argument("--ssl-client-ca", type=Path, help="require client certificates signed by this CA (PEM)")
    rest = parser.add_argument_group("REST API (TF Serving's, beside gRPC: docs/rest.md)")
    rest.add_argument(
        "--rest-api-port",
        type=_port_or("off"),
        default=0,
        metavar="PORT",
        help="serve TF Serving's REST API on this port of --host (0: off, TF Serving's default)",
    )
    rest.add_argument(
        "--rest-api-num-threads",
        type=_positive,
        default=4 * (os.cpu_count() or 1),
        metavar="N",
        help="threads answering REST requests (default: %(default)s, 4 per core as TF Serving)",
    )
    rest.add_argument(
        "--rest-api-timeout-in-ms",
        type=_millis,
        default=30000,
        metavar="MS",
        help="deadline of each REST predict (0: none; default: %(default)s, as TF Serving)",
    )
    rest.add_argument(
        "--monitoring-config-file",
        type=Path,
        metavar="FILE",
        help="MonitoringConfig text file (models/monitoring.config); with prometheus_config enabled, "
        "Prometheus metrics are served on the REST port at its path",
    )
    from serving.admission import DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_SEQUENCE_LENGTH

    limits = parser.add_argument_group("request limits (what one request may make the server hold)")
    limits.add_argument(
        "--max-request-elements",
        type=_positive,
        default=DEFAULT_MAX_ELEMENTS,
        metavar="N",
        help="elements one Predict request may claim, summed over its inputs (a value filled out to "
        "a whole shape counts in full; a REST body's JSON values are counted before it is "
        "parsed), and its answer may hold (init_state's batch_size or the batch, times one row "
        "of every output); over it: INVALID_ARGUMENT (RESOURCE_EXHAUSTED for an answer) before "
        "anything is allocated (default: %(default)s = 2**24, a 64 MiB message of float32)",
    )
    limits.add_argument(
        "--max-sequence-length",
        type=_positive,
        default=DEFAULT_MAX_SEQUENCE_LENGTH,
        metavar="STEPS",
        help="longest sequence (dimension 1 of an input shaped [?, ?, ...]) a request may send; "
        "longer: INVALID_ARGUMENT (default: %(default)s)",
    )
    batch = parser.add_argument_group("batching")
    batch.add_argument("--enable-batching", action="store_true", help="batch concurrent requests")
    batch.add_argument(
        "--batching-parameters-file",
        type=Path,
        help="BatchingParameters text file (models/batching.config); implies --enable-batching",
    )
    tf_threads = parser.add_argument_group("tensorflow")
    tf_threads.add_argument(
        "--tensorflow-intra-op-parallelism",
        type=thread_count,
        default=0,
        metavar="N",
        help="threads one op may use, e.g. a matmul (0: TensorFlow picks, the number of cores)",
    )
    tf_threads.add_argument(
        "--tensorflow-inter-op-parallelism",
        type=thread_count,
        default=0,
        metavar="N",
        help="threads running independent ops of the model's graph, shared by all requests "
        "(0: TensorFlow picks; 1 spends less CPU per request when requests already "
        "keep every core busy)",
    )
    tf_threads.add_argument(
        "--xla-cpu-compilation-enabled",
        action="store_true",
        help="run functions marked for XLA (exports made with `keras-lstm export --xla`), as "
        "TF Serving's --xla_cpu_compilation_enabled; without it they fail, as there",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        sources, batching, metrics_path = _checked(args)
    except ServeArgumentError as err:
        print(f"keras-lstm serve: error: {err}", file=sys.stderr)
        return 2
    return _serve(args, sources, batching, metrics_path)


def _checked(args: argparse.Namespace) -> tuple[list[ModelSource], BatchingOptions | None, str | None]:
    """Every flag that can be checked before the server starts: the config files read and parsed, the
    TLS files read, the ports free. Raises ServeArgumentError."""
    sources = _sources(args)
    if args.rest_api_port and args.rest_api_port == args.port:
        raise ServeArgumentError("--rest-api-port", args.rest_api_port, f"a port other than --port {args.port}")
    if bool(args.ssl_cert) != bool(args.ssl_key):
        given, missing = ("--ssl-cert", "--ssl-key") if args.ssl_cert else ("--ssl-key", "--ssl-cert")
        raise ServeArgumentError(missing, None, f"given with {given} (TLS needs both)")
    for flag, path in (
        ("--ssl-cert", args.ssl_cert),
        ("--ssl-key", args.ssl_key),
        ("--ssl-client-ca", args.ssl_client_ca),
    ):
        if path is not None:
            _read(flag, path, "a readable PEM file")
    if args.port_file is not None and (args.port_file.is_dir() or not args.port_file.parent.is_dir()):
        raise ServeArgumentError("--port-file", str(args.port_file), "a file path in an existing directory")
    batching = _batching(args)
    metrics_path = _metrics_path(args)
    _check_bindable("--port", args.host, args.port)
    if args.rest_api_port:
        _check_bindable("--rest-api-port", args.host, args.rest_api_port)
    return sources, batching, metrics_path


def _batching(args: argparse.Namespace) -> BatchingOptions | None:
    from serving.batching import BatchingOptions
    from serving.config_protos import BatchingParameters

    if args.batching_parameters_file is None:
        return BatchingOptions() if args.enable_batching else None
    flag, path = "--batching-parameters-file", args.batching_parameters_file
    params = _parse_file(flag, path, BatchingParameters)
    try:
        batching = BatchingOptions.from_proto(params)
    except ValueError as err:
        raise ServeArgumentError(flag, str(path), f"BatchingParameters the server can use ({err})") from None
    if params.allowed_batch_sizes or params.pad_variable_length_inputs:
        log.warning(
            "batching: allowed_batch_sizes and pad_variable_length_inputs are ignored by the "
            "local server (it never pads; requests of different shapes batch separately)"
        )
    return batching


def _serve(
    args: argparse.Namespace, sources: list[ModelSource], batching: BatchingOptions | None, metrics_path: str | None
) -> int:
    # Heavy imports (TensorFlow) only once the arguments are known to be usable.
    import tensorflow as tf

    set_tensorflow_threads(args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism)
    if not args.xla_cpu_compilation_enabled:
        disable_xla_compilation()
    from serving.admission import RequestLimits
    from serving.manager import ModelManager
    from serving.server import LocalServer, ServerOptions

    options = ServerOptions(
        host=args.host,
        port=args.port,
        max_message_bytes=args.max_message_bytes,
        grpc_threads=args.grpc_threads,
        ssl_cert=args.ssl_cert,
        ssl_key=args.ssl_key,
        ssl_client_ca=args.ssl_client_ca,
        auth_token=args.auth_token,
        limits=RequestLimits(max_elements=args.max_request_elements, max_sequence_length=args.max_sequence_length),
        rest_api_port=args.rest_api_port,
        rest_api_threads=args.rest_api_num_threads,
        rest_api_timeout_s=args.rest_api_timeout_in_ms / 1000 or None,
        metrics_path=metrics_path,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda num, frame: stop.set())

    manager = ModelManager(sources, poll_s=args.file_system_poll_wait_seconds)
    server = LocalServer(manager, options, batching, resolve_config=_config_resolver(args))
    server.start()
    log.info(
        "tensorflow threads: intra-op %d, inter-op %d (0: TensorFlow's choice)",
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )
    if batching is not None:
        log.info("batching: %s", batching)
    log.info("serving gRPC on %s:%d (%s)", args.host, server.port, "TLS" if args.ssl_cert else "plaintext")
    if server.rest is not None:
        log.info(
            "serving REST on %s:%d (plaintext, as TF Serving's)%s",
            args.host,
            server.rest.port,
            f"; Prometheus metrics at {options.metrics_path}" if options.metrics_path else "",
        )
    if args.port_file is not None:
        tmp = args.port_file.with_suffix(".tmp")
        tmp.write_text(str(server.port))
        tmp.replace(args.port_file)
    if args.model_config is not None and args.model_config_file_poll_wait_seconds > 0:
        threading.Thread(target=_watch_config, args=(args, manager, stop), name="config-poller", daemon=True).start()
    while not stop.wait(0.1):
        pass
    log.info("shutting down: finishing requests in flight (up to %.0fs)", args.grace_seconds)
    server.stop(args.grace_seconds, args.drain_seconds)
    log.info("stopped")
    return 0


def _metrics_path(args: argparse.Namespace) -> str | None:
    """The Prometheus path --monitoring-config-file asks for, if any; refused when unreadable."""
    if args.monitoring_config_file is None:
        return None
    from google.protobuf import text_format

    from serving.metrics import monitoring_path

    try:
        path = monitoring_path(args.monitoring_config_file)
    except OSError as err:
        raise ServeArgumentError(
            "--monitoring-config-file",
            str(args.monitoring_config_file),
            f"a readable MonitoringConfig text file ({err.strerror})",
        ) from None
    except text_format.ParseError as err:
        raise ServeArgumentError(
            "--monitoring-config-file", str(args.monitoring_config_file), f"a MonitoringConfig text file ({err})"
        ) from None
    if path is not None and not args.rest_api_port:
        log.warning(
            "--monitoring-config-file enables Prometheus, but the REST API is off (--rest-api-port 0), "
            "so no metrics are served"
        )
    return path


def _port_or(zero_means: str) -> Callable[[str], int]:
    """An argparse type: a TCP port number, 0 (`zero_means`) to 65535."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if not 0 <= value <= 65535:
            raise argparse.ArgumentTypeError(f"got {text!r}; expected a port number, 0 ({zero_means}) to 65535")
        return value

    return parse


def _at_least_zero(convert: Callable[[str], float], expected: str) -> Callable[[str], float]:
    """An argparse type: `convert(text)`, refused (naming the text and `expected`) unless it is 0 or more."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            value = -1
        if not (value >= 0 and math.isfinite(value)):  # also refuses nan and inf
            raise argparse.ArgumentTypeError(f"got {text!r}; expected {expected}")
        return value

    return parse


_seconds = _at_least_zero(float, "a number of seconds, 0 or more")
_millis = _at_least_zero(int, "a whole number of milliseconds, 0 (none) or more")


def _positive(text: str) -> int:
    """An argparse type: a whole number, 1 or more. (keras_lstm.argtypes has its twin; the serving package does
    not import keras_lstm, whose import checks the Keras backend setting.)"""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"got {text!r}; expected a whole number, 1 or more")
    return value


thread_count = _at_least_zero(int, "a whole number of threads, 0 (TensorFlow picks) or more")


def set_tensorflow_threads(intra_op: int, inter_op: int) -> None:
    """TensorFlow's two thread pools (0: TensorFlow picks); before the first op, which fixes them."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(intra_op)
    tf.config.threading.set_inter_op_parallelism_threads(inter_op)


def disable_xla_compilation() -> None:
    """What ``tensorflow_model_server`` does unless started with ``--xla_cpu_compilation_enabled``: call
    ``tensorflow::DisableXlaCompilation()`` (TensorFlow's C++ library, process-wide), after which a function
    marked for XLA fails in ``Session::Run`` with "XLA compilation disabled". No Python API exposes it, so it is
    called by its C++ name in the library TensorFlow loaded; a TensorFlow without it gets a warning."""
    import ctypes

    import tensorflow as tf

    library = Path(tf.__file__).resolve().parent / "libtensorflow_cc.so.2"
    try:
        ctypes.CDLL(str(library))._ZN10tensorflow21DisableXlaCompilationEv()
    except (OSError, AttributeError) as err:
        logging.getLogger("serving.server").warning(
            "cannot disable XLA compilation as TF Serving does (%s): exports made with --xla will run here", err
        )


def _read(flag: str, path: Path, expected: str) -> str:
    """The text of the file a flag names; ServeArgumentError when it cannot be read."""
    try:
        return path.read_text()
    except OSError as err:
        raise ServeArgumentError(flag, str(path), f"{expected} ({err.strerror})") from None
    except UnicodeDecodeError:
        raise ServeArgumentError(flag, str(path), f"{expected} (it is not UTF-8 text)") from None


def _parse_file(flag: str, path: Path, message_class: Any) -> Any:  # TF Serving's config messages have no stubs
    """The protobuf text file a flag names, parsed by config_protos.parse_text_file; ServeArgumentError
    when it cannot be read or parsed."""
    from google.protobuf import text_format

    from serving.config_protos import parse_text_file

    name = message_class.DESCRIPTOR.name
    try:
        return parse_text_file(path, message_class)
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "it is not UTF-8 text"
        raise ServeArgumentError(flag, str(path), f"a readable {name} text file ({reason})") from None
    except text_format.ParseError as err:
        raise ServeArgumentError(flag, str(path), f"a {name} text file ({err})") from None


def _check_bindable(flag: str, host: str, port: int) -> None:
    """Refuse a --host that names no address of this machine, or a port already taken there, now
    rather than after the models load. Port 0 (any free port) is always free."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as err:
        raise ServeArgumentError(
            "--host", host, f"an address of this machine, e.g. 127.0.0.1, 0.0.0.0 or :: ({err})"
        ) from None
    if port == 0:
        return
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no obstacle
        try:
            probe.bind(address)
        except OSError as err:
            if err.errno == errno.EADDRNOTAVAIL:
                raise ServeArgumentError("--host", host, f"an address of this machine ({err.strerror})") from None
            raise ServeArgumentError(flag, port, f"a port free on {host} ({err.strerror})") from None


def _mounts(args: argparse.Namespace) -> list[Mount]:
    from serving.model_config import Mount

    mounts = []
    for text in args.mount:
        try:
            mounts.append(Mount.parse(text))
        except ValueError:
            raise ServeArgumentError("--mount", text, "HOST_DIR:/CONTAINER_DIR (an absolute container path)") from None
    return mounts


def _config_resolver(args: argparse.Namespace) -> ConfigResolver:
    """How a reload request's ModelServerConfig becomes models: paths as in --model-config (or the cwd)."""
    from serving.model_config import sources_from_config

    config_dir = args.model_config.parent.resolve() if args.model_config is not None else Path.cwd()
    return functools.partial(
        sources_from_config, config_dir=config_dir, mounts=_mounts(args), where="ReloadConfigRequest"
    )


def _watch_config(args: argparse.Namespace, manager: ModelManager, stop: threading.Event) -> None:
    """Re-read --model-config every --model-config-file-poll-wait-seconds; serve what it names once it changes.

    A file that cannot be read or served is logged (once per change) and the models served stay as they are."""
    from serving.model_config import load_model_config

    path, seen = args.model_config, args.model_config.read_text()
    while not stop.wait(args.model_config_file_poll_wait_seconds):
        try:
            text = path.read_text()
            if text == seen:
                continue
            seen = text
            sources = load_model_config(path, _mounts(args))
            manager.replace_sources(sources)
            log.info("model config %s reloaded: serving %s", path, sorted(s.name for s in sources))
        except Exception as err:
            log.error("model config %s not reloaded, the models served stay as they are: %s", path, err)


def _sources(args: argparse.Namespace) -> list[ModelSource]:
    """The models to serve. A base path that does not exist yet is not refused: the server logs it at every
    poll until a version appears there, as TF Serving does."""
    from serving.config_protos import ModelServerConfig
    from serving.model_config import single_model, sources_from_config

    if args.model_config is not None:
        if args.model_base is not None or args.model_name is not None:
            flag = "--model-base" if args.model_base is not None else "--model-name"
            value = args.model_base if args.model_base is not None else args.model_name
            raise ServeArgumentError(flag, str(value), "left out with --model-config (the config names the models)")
        config = _parse_file("--model-config", args.model_config, ModelServerConfig)
        mounts = _mounts(args)
        try:
            return sources_from_config(config, args.model_config.parent.resolve(), mounts, where=str(args.model_config))
        except ValueError as err:
            raise ServeArgumentError(
                "--model-config", str(args.model_config), f"a config this server can serve ({err})"
            ) from None
    if args.model_base is None and args.model_name is None:
        raise ServeArgumentError("--model-config", None, "given, or --model-base DIR with --model-name NAME")
    if args.model_base is None:
        raise ServeArgumentError(
            "--model-base", None, f"given with --model-name {args.model_name} (the directory holding its versions)"
        )
    if not args.model_name:
        raise ServeArgumentError(
            "--model-name", args.model_name, f"a model name given with --model-base {args.model_base}"
        )
    return single_model(args.model_name, args.model_base)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.cli", description=__doc__.splitlines()[0])
    configure(parser)
    return run(parser.parse_args(argv))  # a bad flag: one line on stderr and exit code 2, as keras-lstm serve


if __name__ == "__main__":
    sys.exit(main())
