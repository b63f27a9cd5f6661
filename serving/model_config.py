"""Which models to serve, from TF Serving's ModelServerConfig text file or from two flags.

One `models/models.config` serves both the container and local runs. In the container,
compose mounts the repository's `models/` at `/models`, and the config names absolute
paths such as `/models/adding`. Locally the same mount is applied the other way round:
`--mount HOST:CONTAINER` (default: the config file's own directory for `/models`) maps a
base_path under CONTAINER to the same path under HOST. Relative base_paths are read
against the config file's directory. The resolved paths are logged at startup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TypeAlias

from tensorflow_serving.config import file_system_storage_path_source_pb2, model_server_config_pb2

from serving.config_protos import parse_text_file

__all__ = [
    "DEFAULT_CONTAINER_ROOT",
    "ModelSource",
    "Mount",
    "VersionPolicy",
    "load_model_config",
    "single_model",
    "sources_from_config",
]

DEFAULT_CONTAINER_ROOT = "/models"
_Policy: TypeAlias = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy


@dataclass(frozen=True)
class VersionPolicy:
    """TF Serving's ServableVersionPolicy: kind is "latest" (num_versions), "all" or "specific"."""

    kind: str = "latest"
    num_versions: int = 1
    versions: frozenset[int] = frozenset()

    @classmethod
    def from_proto(cls, policy: _Policy) -> VersionPolicy:
        which = policy.WhichOneof("policy_choice")
        if which == "all":
            return cls(kind="all")
        if which == "specific":
            if not policy.specific.versions:
                raise ValueError("model_version_policy specific {} needs at least one version")
            return cls(kind="specific", versions=frozenset(int(v) for v in policy.specific.versions))
        num = policy.latest.num_versions if which == "latest" else 0
        return cls(kind="latest", num_versions=int(num) or 1)  # TF Serving: unset -> 1

    def choose(self, on_disk: Sequence[int]) -> set[int]:
        """The versions to keep loaded, out of the versions found on disk."""
        if self.kind == "all":
            return set(on_disk)
        if self.kind == "specific":
            return set(on_disk) & self.versions
        return set(sorted(on_disk)[-self.num_versions :])

    def describe(self) -> str:
        if self.kind == "latest":
            return f"latest {self.num_versions}"
        return "all" if self.kind == "all" else f"specific {sorted(self.versions)}"


@dataclass(frozen=True)
class ModelSource:
    """One model: its name, the directory holding `<version>/` subdirectories, policy and labels."""

    name: str
    base_path: Path
    policy: VersionPolicy = VersionPolicy()
    labels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Mount:
    """`HOST:CONTAINER`: a base_path under CONTAINER is read from the same place under HOST."""

    host: Path
    container: str

    @classmethod
    def parse(cls, text: str) -> Mount:
        host, sep, container = text.rpartition(":")
        if not sep or not host or not container.startswith("/"):
            raise ValueError(f"--mount wants HOST_DIR:/CONTAINER_DIR, got {text!r}")
        return cls(Path(host), container.rstrip("/") or "/")

    def apply(self, base_path: str) -> Path | None:
        path, root = PurePosixPath(base_path), PurePosixPath(self.container)
        if path == root or root in path.parents:
            return self.host / path.relative_to(root)
        return None


def resolve_base_path(base_path: str, config_dir: Path, mounts: Sequence[Mount]) -> Path:
    if not base_path.startswith("/"):
        return (config_dir / base_path).resolve()
    for mount in mounts:
        mapped = mount.apply(base_path)
        if mapped is not None:
            return mapped.resolve()
    return Path(base_path)


def load_model_config(path: str | Path, mounts: Sequence[Mount] = ()) -> list[ModelSource]:
    """Read a ModelServerConfig text file (model_config_list only, platform "tensorflow")."""
    path = Path(path)
    config = parse_text_file(path, model_server_config_pb2.ModelServerConfig)
    return sources_from_config(config, path.parent.resolve(), mounts, where=str(path))


def sources_from_config(
    config: model_server_config_pb2.ModelServerConfig,
    config_dir: Path,
    mounts: Sequence[Mount] = (),
    where: str = "model config",
) -> list[ModelSource]:
    """The models a ModelServerConfig names; relative base_paths are read against `config_dir`.

    Raises ValueError naming `where` (the file, or the reload request) for what is not supported."""
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(f"{where}: only model_config_list is supported")
    mounts = list(mounts) or [Mount(config_dir, DEFAULT_CONTAINER_ROOT)]
    sources, names = [], set()
    for model in config.model_config_list.config:
        if not model.name or not model.base_path:
            raise ValueError(f"{where}: every model needs a name and a base_path")
        if model.name in names:
            raise ValueError(f"{where}: model {model.name!r} is configured twice")
        if model.model_platform not in ("", "tensorflow"):
            raise ValueError(f"{where}: model {model.name!r}: platform {model.model_platform!r} is not supported")
        names.add(model.name)
        sources.append(
            ModelSource(
                name=model.name,
                base_path=resolve_base_path(model.base_path, config_dir, mounts),
                policy=VersionPolicy.from_proto(model.model_version_policy),
                labels={k: int(v) for k, v in model.version_labels.items()},
            )
        )
    return sources


def single_model(name: str, base_path: str | Path) -> list[ModelSource]:
    """`--model-name NAME --model-base DIR`: one model, latest version only (TF Serving's default)."""
    return [ModelSource(name=name, base_path=Path(base_path).resolve())]
