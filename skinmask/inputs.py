"""Turn what the user typed (files, folders, quoted globs) into inputs with mirrored output paths."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, UsageError
from .media import is_image, is_video


@dataclass(frozen=True)
class InputItem:
    """One input file and where its outputs go, relative to the output folder (without suffix)."""

    path: Path
    rel: Path  # e.g. Path("sub/face") -> out/sub/face.png

    @property
    def kind(self) -> str:
        return "video" if is_video(self.path) else "image"


def _glob_root(pattern: str) -> Path:
    """The folder above a pattern's first wildcard: outputs mirror the tree below it."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _walk(folder: Path, skip: Path | None) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue  # never read our own outputs back in (output folder inside the input tree)
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        if path.is_file() and (is_image(path) or is_video(path)):
            found.append(path)
    return found


def expand_inputs(specs: list[str], output_dir: Path | None = None) -> tuple[list[InputItem], list[InputError]]:
    """Files, folders (recursive) and globs -> inputs, plus one error per spec that matched nothing.

    A file keeps its stem at the top of the output folder; files found in a folder or by a glob keep
    their sub-folders relative to that folder or the glob's fixed prefix.
    """
    out_resolved = output_dir.resolve() if output_dir is not None else None
    items: list[InputItem] = []
    errors: list[InputError] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            files = _walk(path, out_resolved and _relative_skip(path, out_resolved))
            if not files:
                errors.append(InputError("folder holds no images or videos", path))
            items += [InputItem(f, f.relative_to(path).with_suffix("")) for f in files]
        elif path.exists():
            items.append(InputItem(path, Path(path.stem)))
        elif glob.has_magic(spec):
            root = _glob_root(spec)
            files = sorted(Path(p) for p in glob.glob(spec, recursive=True))
            files = [f for f in files if f.is_file() and (is_image(f) or is_video(f))]
            if not files:
                errors.append(InputError("pattern matches no images or videos", spec))
            items += [InputItem(f, f.relative_to(root).with_suffix("")) for f in files]
        else:
            errors.append(InputError("no such file or folder", path))
    return items, errors


def _relative_skip(folder: Path, out_resolved: Path) -> Path | None:
    try:
        out_resolved.relative_to(folder.resolve())
    except ValueError:
        return None
    return folder / out_resolved.relative_to(folder.resolve())


def check_output_collisions(items: list[InputItem]) -> None:
    """Two inputs that would write the same output (a.jpg and a.png side by side) are a usage error."""
    seen: dict[Path, Path] = {}
    for item in items:
        if item.rel in seen and seen[item.rel] != item.path:
            raise UsageError(f"{seen[item.rel]} and {item.path} would both write output '{item.rel}'; "
                             "predict them into different output folders")
        seen[item.rel] = item.path
