"""Atomic file writes: a crash leaves either the old file or the new one, never half of one."""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import torch


_UMASK = os.umask(0)
os.umask(_UMASK)


def _atomic(path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide results from the rest of a lab
        os.replace(tmp, path)
    except OSError as e:  # a full disk or a read-only folder: say which file (the partial one is removed)
        Path(tmp).unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror or str(e), e.filename or str(path)) from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_torch(obj, path) -> Path:
    """torch.save through a temporary file and os.replace."""
    return _atomic(path, lambda f: torch.save(obj, f))


def save_json(obj, path) -> Path:
    return _atomic(path, lambda f: f.write((json.dumps(obj, indent=2, default=str) + "\n").encode()))


def save_text(text: str, path) -> Path:
    return _atomic(path, lambda f: f.write(text.encode()))


def copy_file(src, dst) -> Path:
    """Copy through a temporary file and os.replace: the destination is the old file or the new one, never half."""
    return _atomic(dst, lambda f: f.write(Path(src).read_bytes()))


def set_aside_unreadable(root, pattern: str = "**/*.json") -> list[Path]:
    """Rename every file under `root` matching `pattern` that is not valid JSON (truncated, damaged) to
    `<name>.unreadable` and say so: the job that writes it then runs again, and nothing is deleted. A file gone
    meanwhile (Snakemake clearing an output, another parse of the Snakefile) is skipped."""
    moved = []
    for f in sorted(Path(root).glob(pattern)) if Path(root).is_dir() else []:
        try:
            json.loads(f.read_text())
            continue
        except (ValueError, UnicodeDecodeError):
            pass
        except OSError:
            continue
        try:
            os.replace(f, f.with_name(f.name + ".unreadable"))
        except OSError:
            continue
        print(f"sgm-bench: {f} is not valid JSON (truncated or damaged): kept as {f.name}.unreadable; the job that "
              "writes it runs again", file=sys.stderr)
        moved.append(f)
    return moved


def file_hash(path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes (first 16 hex digits), streamed."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()[:16]


def package_hash() -> str:
    """sha256 of sgm_bench's own source files: a cached result is reused only by the code that made it."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(Path(__file__).parent.rglob("*.py")):
        h.update(f.relative_to(Path(__file__).parent).as_posix().encode() + f.read_bytes())
    return h.hexdigest()[:16]


def content_digest(value) -> str:
    """sha256 (16 hex digits) of a value made of dicts, lists, tensors, numbers and strings: what a saved partial
    result is checked against before it is trusted."""
    import hashlib

    h = hashlib.sha256()

    def walk(v):
        if isinstance(v, dict):
            h.update(b"{")
            for k in sorted(v, key=str):
                h.update(repr(k).encode())
                walk(v[k])
            h.update(b"}")
        elif isinstance(v, (list, tuple)):
            h.update(b"[")
            for x in v:
                walk(x)
            h.update(b"]")
        elif isinstance(v, torch.Tensor):
            t = v.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            if t.numel():
                h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(repr(v).encode())

    walk(value)
    return h.hexdigest()[:16]


def resumable(path, key: str, compute, fresh: bool = False):
    """compute(), or the value saved at `path` under the same key: a job re-run after a crash (or after a change to
    another of its parts) skips the parts it finished. The key must name everything the value depends on; the saved
    value carries its own digest, and one that no longer matches it (edited, or damaged) is recomputed, with a line.
    `fresh` (Snakemake's --forcerun of the job): never reused."""
    path = Path(path)
    if fresh and path.exists():
        print(f"sgm-bench: forced: {path} computed again", file=sys.stderr)
    elif path.exists():
        try:
            saved = torch.load(path, weights_only=True)
        except Exception as e:  # noqa: BLE001 - an unreadable partial result is recomputed, never trusted
            print(f"sgm-bench: {path} unreadable ({type(e).__name__}); recomputing", file=sys.stderr)
        else:
            if isinstance(saved, dict) and saved.get("key") == key:
                if saved.get("digest") == content_digest(saved.get("value")):
                    return saved["value"]
                print(f"sgm-bench: {path} does not match its digest (edited or damaged); recomputing", file=sys.stderr)
    value = compute()
    save_torch({"key": key, "value": value, "digest": content_digest(value)}, path)
    return value
