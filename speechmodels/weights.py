"""Where a model's files come from: a local path, an installed package that bundles them,
or a Hugging Face repo id (downloaded once into huggingface_hub's normal cache)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from loguru import logger

PACKAGE_PREFIX = "package:"


class WeightsNotFound(FileNotFoundError):
    """The weights named in a model config cannot be found or fetched."""


def resolve_weights(model: str, revision: str | None = None) -> Path:
    """Turn ``ModelConfig.model`` into a local file or folder.

    - ``package:<pkg>[/<subpath>]``: a file or folder inside an installed package (located
      without importing the package, so its import-time side effects never run);
    - an existing path;
    - ``owner/name``: a Hugging Face repo, fetched with ``snapshot_download`` (progress bars
      on, ``HF_HUB_OFFLINE=1`` honoured: then only the cache is used).
    """
    if model.startswith(PACKAGE_PREFIX):
        return _package_path(model[len(PACKAGE_PREFIX):])
    local = Path(model).expanduser()
    if local.exists():
        return local
    if _looks_like_repo_id(model):
        return _hub_snapshot(model, revision)
    raise WeightsNotFound(f"model {model!r} is neither an existing path, a 'package:' reference nor a repo id")


def _package_path(spec: str) -> Path:
    package, _, subpath = spec.partition("/")
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise WeightsNotFound(f"package {package!r} is not installed (needed for model 'package:{spec}')")
    path = Path(next(iter(found.submodule_search_locations))) / subpath
    if not path.exists():
        raise WeightsNotFound(f"package {package!r} has no {subpath!r}")
    return path


def _looks_like_repo_id(model: str) -> bool:
    parts = model.split("/")
    return len(parts) == 2 and all(parts) and not model.startswith((".", "~"))


def _hub_snapshot(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    logger.info("fetching {} (revision {}) through the Hugging Face cache", repo_id, revision or "main")
    try:
        return Path(snapshot_download(repo_id, revision=revision))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        raise WeightsNotFound(f"cannot fetch {repo_id!r} from the Hugging Face hub or its cache: {exc}") from exc


def find_file(root: Path, *candidates: str, pattern: str | None = None) -> Path:
    """The first of ``candidates`` under ``root`` (or ``root`` itself if it is a file);
    else the only file matching ``pattern`` anywhere under it."""
    if root.is_file():
        return root
    for name in candidates:
        if (root / name).is_file():
            return root / name
    if pattern:
        matches = sorted(root.rglob(pattern))
        if len(matches) == 1:
            return matches[0]
    raise WeightsNotFound(f"none of {list(candidates) or pattern} found under {root}")


def find_part(model: str, revision: str | None, folder: str, filename: str) -> tuple[Path, dict]:
    """One part of a multi-part repo laid out as HSE's are (``<folder>/<filename>`` beside
    ``<folder>/config.json``; or the folder itself): the weights file and its parsed config."""
    import json

    weights = find_file(resolve_weights(model, revision), f"{folder}/{filename}", filename)
    config_file = find_file(weights.parent, "config.json")
    try:
        return weights, json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsNotFound(f"cannot read {config_file}: {exc}") from exc
