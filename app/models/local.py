"""GGUF files on this machine: in the Hugging Face cache (any tool's downloads) and in the user's
models folder. Partial downloads (`*.incomplete`) and files that fail the header check are never
listed as models."""
from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from app import paths
from app.models import gguf_file


@dataclass
class LocalModel:
    path: str
    name: str
    size_bytes: int
    source: str                # hf-cache or folder
    repo: str | None = None
    architecture: str = ""
    quantization: str = ""
    problem: str | None = None  # why it cannot be used, when it cannot
    infill: bool = False        # fill-in-the-middle tokens in its tokenizer metadata

    @property
    def usable(self) -> bool:
        return self.problem is None


def _describe(path: Path, source: str, repo: str | None) -> LocalModel:
    try:
        info = gguf_file.inspect(path)
        return LocalModel(str(path), path.name, info.file_size, source, repo, info.architecture,
                          info.quantization, infill=info.infill)
    except (gguf_file.GGUFError, OSError) as exc:  # one bad file must not hide the others
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        return LocalModel(str(path), path.name, size, source, repo, problem=str(exc))


def file_infill(path: str | Path) -> bool | None:
    """Whether the GGUF at `path` declares fill-in-the-middle tokens; None when it cannot be
    read. Remembered per file version: a table of catalog rows asks for each downloaded file."""
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return _file_infill(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _file_infill(path: str, size: int, mtime_ns: int) -> bool | None:
    try:
        return gguf_file.inspect(path).infill
    except (gguf_file.GGUFError, OSError):
        return None


def hf_cache_models(cache: Path | None = None) -> list[LocalModel]:
    base = Path(cache) if cache else paths.hf_cache_dir()
    out = []
    if not base.is_dir():
        return out
    for repo_dir in sorted(base.glob("models--*")):
        repo = repo_dir.name[len("models--"):].replace("--", "/")
        for snap in sorted((repo_dir / "snapshots").glob("*")):
            for f in sorted(snap.rglob("*.gguf")):
                if f.exists():  # a dangling link is a blob that was deleted
                    out.append(_describe(f, "hf-cache", repo))
    return out


def folder_models(folder: Path | None = None) -> list[LocalModel]:
    base = Path(folder) if folder else paths.models_dir()
    if not base.is_dir():
        return []
    return [_describe(f, "folder", None) for f in sorted(base.rglob("*.gguf"))]


def all_models(cache: Path | None = None, folder: Path | None = None) -> list[LocalModel]:
    return hf_cache_models(cache) + folder_models(folder)


def import_model(src: str | Path, folder: Path | None = None, capacity: int | None = None,
                 n_ctx: int = 4096, link: bool = False) -> LocalModel:
    """Validate a .gguf and copy (or link) it into the models folder.

    Refuses, with a one-line reason (GGUFError or ValueError), a file that is not a complete GGUF
    or that needs more memory than this machine has (RAM plus GPU memory, or `capacity`).
    """
    from app.engine import hardware

    info = gguf_file.inspect(src)
    need = hardware.plan_offload(hardware.ModelLayout.from_gguf(info), n_ctx).ram_bytes
    if capacity is None:
        hw = hardware.detect()
        capacity = hw.ram_total + sum(g.total_bytes for g in hw.gpus)
    if need > capacity:
        raise ValueError(f"{Path(src).name} needs {need / 1e9:.1f} GB of memory with a {n_ctx}-token "
                         f"context; this machine has {capacity / 1e9:.1f} GB")
    dest_dir = paths.ensure(Path(folder) if folder else paths.models_dir())
    dest = dest_dir / Path(src).name
    if dest.exists():
        raise ValueError(f"{dest} already exists")
    tmp = dest.with_name(dest.name + ".importing")
    if link:
        os.symlink(Path(src).resolve(), tmp)
    else:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return _describe(dest, "folder", None)


def delete_model(path: str | Path, cache: Path | None = None, folder: Path | None = None) -> Path:
    """Delete a model file; in the HF cache, its blob and snapshot link go together.

    Every path is resolved first (`..`, symlinked folders), and only files really inside the
    models folder or the HF cache are touched; anything else is a ValueError. Returns what the
    path named, resolved (for the message).
    """
    given = Path(path)
    if not os.path.lexists(given):
        raise ValueError(f"{given} does not exist")
    # The entry itself may be a link (a snapshot pointer, an imported --link): resolve only the
    # folder it sits in, so that deleting it never follows it out of our folders.
    entry = Path(os.path.realpath(given.parent)) / given.name
    if entry.name in ("", ".", ".."):
        raise ValueError(f"{given} is not a model file")
    if entry.is_dir() and not entry.is_symlink():
        raise ValueError(f"{given} is a folder, not a model file; not deleting it")
    hf = Path(os.path.realpath(Path(cache) if cache else paths.hf_cache_dir()))
    own = Path(os.path.realpath(Path(folder) if folder else paths.models_dir()))
    if _inside(entry, hf):
        target = Path(os.path.realpath(entry))
        entry.unlink()
        # The blob goes too, but only a file of the cache's own blobs folders.
        if target != entry and _inside(target, hf) and target.parent.name == "blobs" and target.is_file():
            target.unlink()
        return entry
    if _inside(entry, own):
        entry.unlink()  # an imported link goes, the file it points to stays
        return entry
    raise ValueError(f"{given} is neither in the Hugging Face cache ({hf}) nor in the models "
                     f"folder ({own}); not deleting it")


def _inside(p: Path, folder: Path) -> bool:
    return p != folder and p.is_relative_to(folder)
