"""The model manager: which versions are loaded, polling the base paths, labels, status.

Like TF Serving's ServerCore with a FileSystemStoragePathSource: every `poll_s` it lists
each model's base path, picks the versions its policy wants (numeric directories that
hold a saved_model.pb), loads new ones first, and only then unloads old ones. A version
leaves the routing table before it is unloaded, and its requests in flight finish
before it is dropped, so a version change never fails a request.

Export a new version into a temporary directory and rename it to `<version>/`; a
directory without saved_model.pb is not a version yet. While a model has no version on disk,
every poll logs it as TF Serving does: "Could not find base path ..." (an error) when the base path
does not exist, "No versions of servable NAME found under base path ..." (a warning) when it holds
no version; the server keeps running and loads the first version that appears. As in TF Serving, a base path
that cannot be found changes nothing loaded (its poll is an error), while an empty one unloads what was loaded.
(TF Serving's source abandons the whole poll at the first missing base path; here the other models still poll.)

`replace_sources` is TF Serving's config reload (HandleReloadConfigRequest, or
--model_config_file_poll_wait_seconds): new models load, removed models leave the routing
table and unload once their requests finish, changed policies and labels apply.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from tensorflow_serving.apis import model_pb2

from serving.errors import BadRequestError, ModelNotFoundError, clip
from serving.model_config import ModelSource
from serving.servable import Servable

__all__ = ["ModelManager", "VersionState"]

log = logging.getLogger("serving.server")


@dataclass
class VersionState:
    """What GetModelStatus reports for one version (state names as in ModelVersionStatus)."""

    state: str
    error_code: grpc.StatusCode = grpc.StatusCode.OK
    error_message: str = ""
    failed_mtime: float | None = None  # a failed load is retried only once the directory changes


class ModelManager:
    """Owns every loaded Servable. `start()` loads what is on disk, then polls in a thread."""

    def __init__(self, sources: Sequence[ModelSource], *, poll_s: float = 1.0, drain_s: float = 30.0) -> None:
        self.sources = {s.name: s for s in sources}
        self._poll_s = poll_s
        self._drain_s = drain_s
        self._lock = threading.Lock()  # the routing table and the states
        self._changing = threading.RLock()  # one poll or config change at a time
        self._loaded: dict[str, dict[int, Servable]] = {name: {} for name in self.sources}
        self._states: dict[str, dict[int, VersionState]] = {name: {} for name in self.sources}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        for source in self.sources.values():
            log.info(
                "model %s: base path %s, policy %s, labels %s",
                source.name,
                source.base_path,
                source.policy.describe(),
                source.labels or "{}",
            )
        self.poll_once()
        if self._poll_s > 0:
            self._thread = threading.Thread(target=self._poll_loop, name="model-poller", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _poll_loop(self) -> None:
        while not self._stop.wait(self._poll_s):
            try:
                self.poll_once()
            except Exception:  # a bad directory must not kill the poller
                log.exception("polling the model base paths failed")

    def poll_once(self) -> None:
        with self._changing:
            for source in self.sources.values():
                self._poll_model(source)

    def replace_sources(self, sources: Sequence[ModelSource]) -> None:
        """Serve exactly `sources` from now on; returns once new models are loaded and removed ones unloaded.

        A model whose base path changed is a new model: its old versions are unloaded first."""
        new = {s.name: s for s in sources}
        with self._changing:
            old = self.sources
            for name, source in old.items():
                if name not in new or new[name].base_path != source.base_path:
                    for version in sorted(self._loaded[name]):
                        self._unload(name, version)
                    log.info(
                        "model %s: %s", name, "removed" if name not in new else f"base path now {new[name].base_path}"
                    )
            with self._lock:
                for name in new:
                    self._loaded.setdefault(name, {})
                    self._states.setdefault(name, {})
                for name in old.keys() - new.keys():
                    del self._loaded[name]  # requests now get NOT_FOUND; the states keep reporting END
                self.sources = new
            for name in new.keys() - old.keys():
                log.info("model %s: base path %s, policy %s", name, new[name].base_path, new[name].policy.describe())
            self.poll_once()

    def _poll_model(self, source: ModelSource) -> None:
        if not source.base_path.is_dir():  # at every poll, in TF Serving's words; what is loaded stays loaded
            # (TF Serving's source reports the error and leaves the aspired versions as they were)
            log.error(
                "FileSystemStoragePathSource encountered a filesystem access error: Could not find base path "
                "%s for servable %s",
                source.base_path,
                source.name,
            )
            return
        on_disk = _versions_on_disk(source.base_path)
        wanted = source.policy.choose(sorted(on_disk))
        if not on_disk:  # at every poll until a version appears; what was loaded unloads, as in TF Serving
            log.warning(
                "No versions of servable %s found under base path %s. Did you forget to name your leaf "
                "directory as a number (eg. '/1/')?",
                source.name,
                source.base_path,
            )
        for version in sorted(wanted - set(self._loaded[source.name])):
            self._load(source, version, on_disk[version])
        for version in sorted(set(self._loaded[source.name]) - wanted):
            self._unload(source.name, version)

    def _load(self, source: ModelSource, version: int, path: Path) -> None:
        state = self._states[source.name].get(version)
        mtime = path.stat().st_mtime
        if state is not None and state.failed_mtime == mtime:
            return  # failed before, unchanged since
        self._set_state(source.name, version, VersionState("LOADING"))
        try:
            servable = Servable(source.name, version, path)
            try:
                servable.warm_up()
            except BaseException:
                servable.close()
                raise
        except Exception as err:
            log.error("model %s version %d failed to load from %s: %s", source.name, version, path, err)
            self._set_state(
                source.name,
                version,
                VersionState("END", grpc.StatusCode.UNKNOWN, f"{type(err).__name__}: {err}", failed_mtime=mtime),
            )
            return
        with self._lock:
            self._loaded[source.name][version] = servable
            self._states[source.name][version] = VersionState("AVAILABLE")
        log.info("model %s version %d: AVAILABLE (signatures %s)", source.name, version, sorted(servable.signatures))

    def _unload(self, name: str, version: int) -> None:
        with self._lock:  # leave the routing table first: no new request can pick it
            servable = self._loaded[name].pop(version)
            self._states[name][version] = VersionState("UNLOADING")
        if not servable.drain(self._drain_s):
            log.warning("model %s version %d: requests still in flight after %.0fs", name, version, self._drain_s)
        else:
            servable.close()
        self._set_state(name, version, VersionState("END"))
        log.info("model %s version %d: unloaded", name, version)

    def _set_state(self, name: str, version: int, state: VersionState) -> None:
        with self._lock:
            self._states[name][version] = state

    # -- lookups ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def acquire(self, spec: model_pb2.ModelSpec) -> Iterator[Servable]:
        """The servable a request names, held (counted in flight) for the `with` block."""
        with self._lock:
            servable = self._resolve(spec)
            servable.acquire()
        try:
            yield servable
        finally:
            servable.release()

    def _resolve(self, spec: model_pb2.ModelSpec) -> Servable:
        # Messages as TF Serving words them, so that logs read the same against both; the name cut short.
        name = clip(spec.name)
        versions = self._loaded.get(spec.name)
        if versions is None:
            wanted = f"Specific({name}, {spec.version.value})" if spec.HasField("version") else f"Latest({name})"
            raise ModelNotFoundError(f"Servable not found for request: {wanted}", code=grpc.StatusCode.NOT_FOUND)
        version = self._wanted_version(spec)
        if version is None:
            if versions:
                return versions[max(versions)]
            raise ModelNotFoundError(f"Servable not found for request: Latest({name})", code=grpc.StatusCode.NOT_FOUND)
        if versions and version in versions:
            return versions[version]
        raise ModelNotFoundError(
            f"Servable not found for request: Specific({name}, {version})", code=grpc.StatusCode.NOT_FOUND
        )

    def _wanted_version(self, spec: model_pb2.ModelSpec) -> int | None:
        """The version a spec names (a label resolved through the config); None for latest."""
        choice = spec.WhichOneof("version_choice")
        if choice == "version":
            return int(spec.version.value)
        if choice == "version_label":
            labels = self.sources[spec.name].labels if spec.name in self.sources else {}
            if spec.version_label not in labels:
                raise BadRequestError(
                    f"Unrecognized servable version label: {clip(spec.version_label)}",
                    code=grpc.StatusCode.INVALID_ARGUMENT,
                )
            return labels[spec.version_label]
        return None

    def status(self, spec: model_pb2.ModelSpec) -> list[tuple[int, VersionState]]:
        """Every version's state, or one version's when the spec names a number. A version label is
        ignored, as TF Serving's GetModelStatus ignores it (get_model_status_impl.cc)."""
        with self._lock:
            states = self._states.get(spec.name)
            if states is None:
                raise ModelNotFoundError(
                    f"Could not find any versions of model {clip(spec.name)}", code=grpc.StatusCode.NOT_FOUND
                )
            if not spec.HasField("version"):
                return sorted(states.items())
            wanted = int(spec.version.value)
            if wanted not in states:
                raise ModelNotFoundError(
                    f"Could not find version {wanted} of model {clip(spec.name)}", code=grpc.StatusCode.NOT_FOUND
                )
            return [(wanted, states[wanted])]


def _versions_on_disk(base_path: Path) -> dict[int, Path]:
    """Numeric subdirectories that hold a complete SavedModel."""
    if not base_path.is_dir():
        return {}
    return {
        int(child.name): child
        for child in base_path.iterdir()
        if child.name.isdigit() and child.is_dir() and (child / "saved_model.pb").is_file()
    }
