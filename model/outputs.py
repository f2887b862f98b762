"""Output files of every chanscale CLI: checked before any work, written atomically.

A CLI checks each output path it was given (``check_file``, ``check_dir``) before it loads or
computes anything, so a bad path costs one line and exit status 2, not a finished run. It then
writes all of its outputs through ``Outputs``: each goes to a temporary file next to its final
name, and only when every one of them is complete are they renamed into place, so a run leaves
all of its files or none (a rename within a folder does not fail half-way).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable


class OutputError(ValueError):
    """An output path cannot be written (the message says which and why)."""


def _writable_ancestor(path: Path, flag: str) -> None:
    """The nearest existing folder above ``path`` must accept a new file (probed with a temporary
    file, removed at once: permission bits do not tell for root or a read-only file system)."""
    anc = path.parent
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise OutputError(f"{flag} {path}: {anc} is a file, so no folder can be made under it; "
                          f"choose another path")
    try:
        fd, probe = tempfile.mkstemp(dir=anc, prefix=".chanscale-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(f"{flag} {path}: cannot write in {anc} ({e.strerror or e}); choose another path") from None


def check_file(path, flag: str) -> Path:
    """``path`` can be written as a file (made or replaced). OutputError otherwise."""
    p = Path(path)
    if str(path).strip() == "":
        raise OutputError(f"{flag} needs a file name")
    if p.is_dir():
        raise OutputError(f"{flag} {p} is a folder; give a file name")
    _writable_ancestor(p, flag)
    return p


def check_dir(path, flag: str) -> Path:
    """``path`` is a folder that can take new files, or can be made as one. OutputError otherwise."""
    p = Path(path)
    if str(path).strip() == "":
        raise OutputError(f"{flag} needs a folder name")
    if p.exists() and not p.is_dir():
        raise OutputError(f"{flag} {p} is a file; give a folder")
    _writable_ancestor(p / "x" if p.is_dir() else p, flag)
    return p


def dir_from_cli(path, flag: str) -> Path | None:
    """``check_dir`` for a command line: the folder, or None after printing ``error: <reason>``
    to stderr (the caller exits 2)."""
    try:
        return check_dir(path, flag)
    except OutputError as e:
        print(f"error: {e}", file=sys.stderr)
        return None


def write_text(path, text: str) -> Path:
    """Write one text file atomically (its folder made if needed); an ordinary 0644 file."""
    out = Outputs()
    out.text(path, text)
    out.commit()
    return Path(path)


class Outputs:
    """A run's output files, written together: ``add`` (or ``text``) each, then ``commit``.

    Each writer gets a temporary path in its final folder and writes the file there; ``commit``
    renames them all into place once every writer has finished, or removes every temporary file
    (and every folder it made) if one fails."""

    def __init__(self):
        self._items: list[tuple[Path, Callable[[Path], None]]] = []

    def add(self, path, write: Callable[[Path], None]) -> None:
        self._items.append((Path(path), write))

    def text(self, path, text: str) -> None:
        self.add(path, lambda tmp: tmp.write_text(text))

    def files(self, folder, contents: dict[str, bytes]) -> None:
        """Each ``{name: bytes}`` as ``folder/name`` (e.g. a run's rendered plots)."""
        for name, data in contents.items():
            self.add(Path(folder) / name, lambda tmp, data=data: tmp.write_bytes(data))

    def commit(self) -> list[Path]:
        made, temps = [], []
        try:
            for path, write in self._items:
                missing = [a for a in [path.parent, *path.parent.parents] if not a.exists()]
                for d in reversed(missing):
                    d.mkdir()
                    made.append(d)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
                os.close(fd)
                temps.append((Path(tmp), path))
                write(Path(tmp))
                os.chmod(tmp, 0o644)  # mkstemp makes it private; these are ordinary data files
            for tmp, path in temps:
                os.replace(tmp, path)
        except BaseException:
            for tmp, _ in temps:
                tmp.unlink(missing_ok=True)
            for d in reversed(made):
                shutil.rmtree(d, ignore_errors=True)
            raise
        return [path for path, _ in self._items]
