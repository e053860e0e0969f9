"""The one way the package writes a file: atomically, and as strict JSON where it is JSON.

Every file stegafast writes (images, ``.sfc`` streams, JSON reports, plots, ONNX
graphs, checkpoints, ``run.json``, checkpoint indexes) goes through
``atomic_write``: the bytes go to a temporary file beside the destination
(``.<name>.<random>.partial``), which is flushed, fsync'ed and renamed over the
destination (``os.replace``, atomic on POSIX and Windows); then the folder is
fsync'ed so the rename itself survives a power cut. A crash at any moment
leaves either the old file or the new one, never a truncated mix; a failed
write (a full disk, a read-only or missing folder) removes the temporary file,
keeps the old file and raises ``OutputError`` (a ``UserError`` and an
``OSError``), which a command prints as one line. A temporary file left by a
killed process carries ``TEMP_SUFFIX``; training's set-up removes those in a
run folder.

The one exception is the append-only metric logs of a training run
(``metrics.jsonl``, ``metrics.csv``): rewriting a whole log at every step would
make logging cost grow with the run, and an append that a crash cuts short
loses only its own line, which the reader skips.

JSON is strict (RFC 8259): ``to_strict_json`` turns every non-finite float (NaN,
+-infinity, as a diverged loss gives) into ``null``, so any JSON reader can
parse what the package writes; ``json.dumps(..., allow_nan=False)`` enforces it.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .errors import OutputError

__all__ = [
    "TEMP_SUFFIX",
    "OutputError",
    "atomic_write",
    "write_bytes",
    "write_text",
    "write_json",
    "to_strict_json",
    "strict_json_dumps",
]

TEMP_SUFFIX = ".partial"


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":  # folders cannot be opened for fsync on Windows
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_temp(path: Path) -> tuple[int, Path]:
    # Not tempfile.mkstemp: its files are private (0600); these get the umask's permissions like any file.
    while True:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), temp
        except FileExistsError:
            continue


def _keep_mode(temp: Path, path: Path) -> None:
    """A replaced file keeps its permission bits (a file made read-only for others stays so)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return
    os.chmod(temp, mode)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None], *, parents: bool = False) -> Path:
    """Call ``write(file)`` on a temporary binary file beside ``path``, make it durable,
    then rename it to ``path``; returns ``path`` as a Path.

    parents: create missing folders above ``path`` first (else a missing folder is an error)
    On any error the temporary file is removed and ``path`` keeps its previous
    content; an ``OSError`` (full disk, read-only or missing folder, ``path`` a
    folder) becomes ``OutputError("cannot write PATH: reason")``. Other
    exceptions from ``write`` propagate unchanged.
    """
    path = Path(path)
    try:
        if parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = _create_temp(path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        _keep_mode(temp, path)
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    try:
        _fsync_folder(path.parent)
    except OSError as exc:
        raise OutputError(f"cannot make {path} durable: {_reason(exc)}") from None
    return path


def write_bytes(path: str | os.PathLike, data: bytes, *, parents: bool = False) -> Path:
    """``data`` as the whole content of ``path``, through ``atomic_write``."""
    return atomic_write(path, lambda f: f.write(data), parents=parents)


def write_text(path: str | os.PathLike, text: str, *, parents: bool = False) -> Path:
    """``text`` as UTF-8, through ``atomic_write``."""
    return write_bytes(path, text.encode("utf-8"), parents=parents)


def to_strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, +-inf, also inside dicts, lists and
    tuples) replaced by None, so it serialises as strict JSON (``null``)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: to_strict_json(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_strict_json(value) for value in obj]
    return obj


def strict_json_dumps(obj: Any, **options) -> str:
    """``json.dumps`` of ``to_strict_json(obj)`` with ``allow_nan=False`` (``options``
    as json.dumps takes them: indent, sort_keys, ...)."""
    return json.dumps(to_strict_json(obj), allow_nan=False, **options)


def write_json(
    path: str | os.PathLike, obj: Any, *, indent: int | None = 2, sort_keys: bool = True, parents: bool = False
) -> Path:
    """``obj`` as strict JSON (non-finite floats as null) and a final newline, through ``atomic_write``."""
    return write_text(path, strict_json_dumps(obj, indent=indent, sort_keys=sort_keys) + "\n", parents=parents)
