"""Atomic outputs and provenance records shared by every stage.

Every derived file is written to a temporary name in its final directory and
moved into place with :func:`os.replace`, so a killed job never leaves a
half-written file under a final name. Every derived file records the
neurobolt version and a hash of the configuration section that produced it.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from . import __version__


def config_hash(config: Mapping[str, Any] | None) -> str:
    """Return a short, order-independent hash of a configuration mapping.

    Parameters
    ----------
    config : mapping | None
        JSON-serialisable configuration (usually one section of the config).

    Returns
    -------
    digest : str
        The first 16 hex digits of the SHA-256 of the canonical JSON.
    """
    canonical = json.dumps(config or {}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def provenance(config: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Return the provenance record stored in every derived file."""
    return {"neurobolt_version": __version__, "config_hash": config_hash(config)}


def sha256_file(path: str | os.PathLike, *, chunk_size: int = 1 << 20) -> str:
    """Return the SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fid:
        while chunk := fid.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` and move it into place on success.

    The temporary name ends with the final name (``_eeg.fif``, ``.nii.gz``) so that
    libraries that dispatch on the extension or naming conventions still work. On any exception the
    temporary file is removed and nothing appears under ``path``.

    Parameters
    ----------
    path : path-like
        The final output path. Its parent directory is created if needed.

    Yields
    ------
    tmp : pathlib.Path
        Where to write. It does not exist yet.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    # ".tmp-<12 random hex digits>-<final name>": hidden, unique, ends like the final name.
    tmp = path.with_name(f".tmp-{secrets.token_hex(6)}-{path.name}")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to the temporary file for {path}")
        _fsync(tmp)  # the data reach the disk (or the NFS server) before the name does
        os.replace(tmp, path)
        _fsync(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete what a killed writer of ``path`` left behind (``.tmp-*-<name>`` beside it).

    Only one job ever writes a given output (Snakemake's rule), so a temporary file for
    the same final name found when a new write starts is a leftover of a killed run.

    Returns
    -------
    removed : list of pathlib.Path
    """
    path = Path(path)
    removed = []
    pattern = re.compile(r"\.tmp-[0-9a-f]{12}-" + re.escape(path.name))
    candidates = path.parent.glob(f".tmp-*-{glob.escape(path.name)}")
    for stale in (c for c in candidates if pattern.fullmatch(c.name)):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
            removed.append(stale)
    return removed


def _fsync(path: Path) -> None:
    """Flush a file (or a directory's entries) to stable storage where the OS allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # e.g. directories on some file systems
        pass
    finally:
        os.close(fd)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented UTF-8 JSON to ``path`` atomically."""
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
