"""The BAPPS folder layout (Zhang et al. 2018), read and written.

The official data set is laid out as::

    2afc/<split>/<set>/ref/000000.png   the reference patch (64×64 RGB)
                      /p0/000000.png    distorted patch 0
                      /p1/000000.png    distorted patch 1
                      /judge/000000.npy fraction of people who found p1 closer, shape (1,)
    jnd/val/<set>/p0/000000.png         the two patches of a same/different pair
                 /p1/000000.png
                 /same/000000.npy       fraction of people who saw no difference, shape (1,)

with ``<split>`` ``train`` or ``val`` and ``<set>`` ``traditional``, ``cnn``, ``superres`` …
The official loaders (``data/dataset/twoafc_dataset.py``, ``jnd_dataset.py`` of
richzhang/PerceptualSimilarity) pair the files of the four folders by their sorted position and
read each ``.npy`` with ``np.load(path).reshape((1, 1, 1))``. Here the same files are paired by
name, which is stricter: a missing or extra file is reported by name instead of silently shifting
every later triplet.

>>> import numpy as np, tempfile
>>> patches = np.zeros((2, 64, 64, 3), np.uint8)
>>> folder = write_2afc(tempfile.mkdtemp() + "/2afc/val/demo", patches, patches, patches, [0.0, 0.6])
>>> data = read_2afc(folder)
>>> len(data), data.judge.tolist(), data.names
(2, [0.0, 0.6], ('000000', '000001'))
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch

from core.errors import LpipsExplorerError

__all__ = ["BappsError", "IMAGE_EXTENSIONS", "JndSet", "TwoAfcSet", "list_sets", "load_patches", "read_2afc",
           "read_jnd", "write_2afc", "write_jnd"]

#: The image extensions the official loaders accept (``data/image_folder.py``).
IMAGE_EXTENSIONS = (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".ppm", ".PPM", ".bmp", ".BMP")
_LAYOUT = "2afc/<split>/<set>/{ref,p0,p1,judge} or jnd/val/<set>/{p0,p1,same}"


class BappsError(LpipsExplorerError, ValueError):
    """A folder is not in the BAPPS layout, or one of its files is missing or unreadable.

    ``path`` is the file or folder at fault.
    """

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class TwoAfcSet:
    """One 2AFC set: ``len(self)`` triplets, each a reference, two distorted patches and a judgment.

    ``judge[i]`` is the fraction of people who found ``p1[i]`` closer to ``ref[i]`` (float64).
    Images stay on disk until :meth:`images` reads a slice of them.
    """

    folder: Path
    names: tuple[str, ...]
    ref: tuple[Path, ...]
    p0: tuple[Path, ...]
    p1: tuple[Path, ...]
    judge: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    def images(self, start: int = 0, stop: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Triplets ``start:stop`` as three N×3×H×W float tensors in [0, 1]."""
        window = slice(start, stop)
        return load_patches(self.ref[window]), load_patches(self.p0[window]), load_patches(self.p1[window])

    def subset(self, indices: Sequence[int] | np.ndarray) -> TwoAfcSet:
        """The triplets at ``indices``, in that order (a held-out split, a sample)."""
        idx = [int(i) for i in np.asarray(indices).reshape(-1)]
        return TwoAfcSet(self.folder, tuple(self.names[i] for i in idx), tuple(self.ref[i] for i in idx),
                         tuple(self.p0[i] for i in idx), tuple(self.p1[i] for i in idx), self.judge[idx].copy())


@dataclass(frozen=True)
class JndSet:
    """One JND set: pairs of patches and the fraction of people who saw no difference (``same``)."""

    folder: Path
    names: tuple[str, ...]
    p0: tuple[Path, ...]
    p1: tuple[Path, ...]
    same: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    def images(self, start: int = 0, stop: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Pairs ``start:stop`` as two N×3×H×W float tensors in [0, 1]."""
        window = slice(start, stop)
        return load_patches(self.p0[window]), load_patches(self.p1[window])


# ---------------------------------------------------------------------------------------------
# Reading.
# ---------------------------------------------------------------------------------------------

def _files(folder: Path, extensions: tuple[str, ...]) -> dict[str, Path]:
    """Stem → path of the files directly in ``folder`` with one of ``extensions``, sorted by name."""
    found: dict[str, Path] = {}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_file() and entry.name.endswith(extensions):
            stem = os.path.splitext(entry.name)[0]
            if stem in found:
                raise BappsError(f"{folder} holds two files for triplet {stem!r} ({found[stem].name} and "
                                 f"{entry.name}); keep one.", Path(entry.path))
            found[stem] = Path(entry.path)
    return found


def _check_folder(folder: str | os.PathLike, parts: tuple[str, ...], kind: str) -> Path:
    path = Path(folder)
    if not path.is_dir():
        raise BappsError(f"{path} is not a folder; give one {kind} set folder of the BAPPS layout ({_LAYOUT}).", path)
    missing = [p for p in parts if not (path / p).is_dir()]
    if len(missing) == len(parts):
        found = sorted(p.name for p in path.iterdir() if p.is_dir())[:6]
        hint = (f" It holds {', '.join(found)}: give one of those set folders (or use list_sets())."
                if found else "")
        raise BappsError(f"{path} is not a BAPPS {kind} set: it has none of the folders "
                         f"{', '.join(p + '/' for p in parts)} ({_LAYOUT}).{hint}", path)
    if missing:
        raise BappsError(f"{path} is not a complete BAPPS {kind} set: it lacks {', '.join(m + '/' for m in missing)}.",
                         path / missing[0])
    return path


def _matched(path: Path, parts: tuple[str, ...], judgment: str) -> tuple[list[str], list[dict[str, Path]]]:
    """The triplet names present in every part folder, or an error naming the first gap."""
    listings = [_files(path / p, (".npy",) if p == judgment else IMAGE_EXTENSIONS) for p in parts]
    counts = [len(found) for found in listings]
    if counts[0] == 0:
        raise BappsError(f"{path / parts[0]} holds no images ({', '.join(IMAGE_EXTENSIONS[::2])}).", path / parts[0])
    if len(set(counts)) > 1:
        listed = ", ".join(f"{p}/ {n}" for p, n in zip(parts, counts))
        gap = _first_gap(path, parts, listings, judgment)
        raise BappsError(f"{path}: the folders hold different numbers of files ({listed}). {gap}",
                         path)
    names = list(listings[0])
    for part, found in zip(parts[1:], listings[1:]):
        if list(found) != names:
            raise BappsError(f"{path}: {_first_gap(path, parts, listings, judgment)}", path / part)
    return names, listings


def _first_gap(path: Path, parts: tuple[str, ...], listings: list[dict[str, Path]], judgment: str) -> str:
    every = sorted(set().union(*listings))
    for name in every:
        for part, found in zip(parts, listings):
            if name not in found:
                has = next(p for p, f in zip(parts, listings) if name in f)
                extension = ".npy" if part == judgment else ".png"
                what = "judgment" if part == judgment else "image"
                return (f"{part}/{name}{extension} is missing ({has}/ has {name!r}); every triplet needs one "
                        f"{what} in {part}/ with the same name.")
    return "The file names differ between the folders."


def _fractions(files: list[Path], what: str) -> np.ndarray:
    values = np.empty(len(files), dtype=np.float64)
    for i, file in enumerate(files):
        try:
            value = np.load(file, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise BappsError(f"{file} could not be read as a NumPy .npy file ({exc}); it should hold the "
                             f"{what} as one float, shape (1,).", file) from None
        if value.size != 1 or not np.issubdtype(value.dtype, np.number):
            raise BappsError(f"{file} holds an array of shape {value.shape} and dtype {value.dtype}; it should hold "
                             f"the {what} as one float, shape (1,).", file)
        number = float(value.reshape(-1)[0])
        if not 0.0 <= number <= 1.0:  # also refuses NaN
            raise BappsError(f"{file} holds {number!r}, but the {what} is a fraction of people in [0, 1].", file)
        values[i] = number
    return values


def read_2afc(folder: str | os.PathLike) -> TwoAfcSet:
    """The 2AFC set in ``folder`` (``…/2afc/<split>/<set>``), its judgments read and checked.

    Raises :class:`BappsError` naming the file when the folder is not a 2AFC set, a folder lacks
    a file the others have, or a judgment is unreadable or outside [0, 1]. Images are checked
    when :meth:`TwoAfcSet.images` reads them.
    """
    parts = ("ref", "p0", "p1", "judge")
    path = _check_folder(folder, parts, "2AFC")
    names, (ref, p0, p1, judge) = _matched(path, parts, "judge")
    return TwoAfcSet(path, tuple(names), tuple(ref.values()), tuple(p0.values()), tuple(p1.values()),
                     _fractions(list(judge.values()), "share of people who chose p1"))


def read_jnd(folder: str | os.PathLike) -> JndSet:
    """The JND set in ``folder`` (``…/jnd/val/<set>``), its judgments read and checked."""
    parts = ("p0", "p1", "same")
    path = _check_folder(folder, parts, "JND")
    names, (p0, p1, same) = _matched(path, parts, "same")
    return JndSet(path, tuple(names), tuple(p0.values()), tuple(p1.values()),
                  _fractions(list(same.values()), "share of people who saw no difference"))


def list_sets(root: str | os.PathLike, kind: Literal["2afc", "jnd"] = "2afc",
              split: str | None = None) -> dict[str, Path]:
    """``"<split>/<set>"`` → folder for every set under ``root/<kind>`` (``root`` is the data set's root).

    >>> import tempfile
    >>> list_sets(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    core.judgments.bapps.BappsError: ... has no 2afc/ folder; give the root of a BAPPS download ...
    """
    if kind not in ("2afc", "jnd"):
        raise BappsError(f"Argument `kind` must be one of ('2afc', 'jnd'), got {kind!r}.")
    base = Path(root) / kind
    if not base.is_dir():
        raise BappsError(f"{root} has no {kind}/ folder; give the root of a BAPPS download ({_LAYOUT}).", base)
    sets: dict[str, Path] = {}
    for split_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        if split is not None and split_dir.name != split:
            continue
        for set_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            sets[f"{split_dir.name}/{set_dir.name}"] = set_dir
    return sets


def load_patches(paths: Sequence[Path]) -> torch.Tensor:
    """Image files of one size as an N×3×H×W float tensor in [0, 1].

    Read with Pillow directly rather than :func:`core.load_image`: a training set is tens of
    thousands of 64×64 files, where per-file checks for uploads (size limits, EXIF) cost more
    than the decoding.
    """
    from PIL import Image, UnidentifiedImageError

    if len(paths) == 0:
        return torch.empty(0, 3, 64, 64)
    arrays = []
    for file in paths:
        try:
            with Image.open(file) as img:
                # convert() copies even an RGB image; skipping it saves a third of the read time.
                arrays.append(np.asarray(img if img.mode == "RGB" else img.convert("RGB")))
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise BappsError(f"{file} could not be read as an image ({exc}); replace it or remove the triplet "
                             "from every folder.", Path(file)) from None
        if arrays[-1].shape != arrays[0].shape:
            raise BappsError(f"{file} is {arrays[-1].shape[1]}×{arrays[-1].shape[0]} pixels, but {paths[0]} is "
                             f"{arrays[0].shape[1]}×{arrays[0].shape[0]}; patches of one set must share a size.",
                             Path(file))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255.0)


# ---------------------------------------------------------------------------------------------
# Writing.
# ---------------------------------------------------------------------------------------------

def _uint8_patches(patches, name: str) -> np.ndarray:
    array = np.asarray(patches)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
        raise BappsError(f"`{name}` must be uint8 patches of shape N×H×W×3, got dtype {array.dtype} and shape "
                         f"{array.shape}; convert [0, 1] tensors with core.to_uint8().")
    return array


def _checked_fractions(values, n: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size != n:
        raise BappsError(f"`{name}` has {array.size} values for {n} patches; give one per triplet.")
    bad = ~((array >= 0) & (array <= 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise BappsError(f"`{name}` must be fractions of people in [0, 1]; value {i} is {float(array[i])!r}.")
    return array


def _write(folder: Path, parts: dict[str, np.ndarray], judgment: tuple[str, np.ndarray], start: int) -> Path:
    from PIL import Image

    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise BappsError(f"`start` must be a whole number ≥ 0 (the first file's number), got {start!r}.")
    for part in (*parts, judgment[0]):
        (folder / part).mkdir(parents=True, exist_ok=True)
    for i in range(judgment[1].size):
        name = f"{start + i:06d}"
        for part, patches in parts.items():
            # compress_level=1: lossless either way, and ~5× faster to write than the default.
            Image.fromarray(patches[i]).save(folder / part / f"{name}.png", compress_level=1)
        np.save(folder / judgment[0] / f"{name}.npy", judgment[1][i:i + 1])
    return folder


def write_2afc(folder: str | os.PathLike, ref, p0, p1, judge, *, start: int = 0) -> Path:
    """Write triplets (uint8 N×H×W×3 patches and ``judge`` fractions) as a BAPPS 2AFC set.

    Files are numbered ``start, start + 1 …`` (``000000.png``), so a large set can be written in
    chunks; each judgment is a float64 array of shape (1,), as the official files. Returns
    ``folder``.
    """
    patches = {"ref": _uint8_patches(ref, "ref"), "p0": _uint8_patches(p0, "p0"), "p1": _uint8_patches(p1, "p1")}
    n = patches["ref"].shape[0]
    if any(p.shape != patches["ref"].shape for p in patches.values()):
        raise BappsError(f"`ref`, `p0` and `p1` must have the same shape; got "
                         f"{', '.join(str(p.shape) for p in patches.values())}.")
    return _write(Path(folder), patches, ("judge", _checked_fractions(judge, n, "judge")), start)


def write_jnd(folder: str | os.PathLike, p0, p1, same, *, start: int = 0) -> Path:
    """Write pairs (uint8 N×H×W×3 patches and ``same`` fractions) as a BAPPS JND set."""
    patches = {"p0": _uint8_patches(p0, "p0"), "p1": _uint8_patches(p1, "p1")}
    if patches["p0"].shape != patches["p1"].shape:
        raise BappsError(f"`p0` and `p1` must have the same shape; got {patches['p0'].shape} and {patches['p1'].shape}.")
    return _write(Path(folder), patches, ("same", _checked_fractions(same, patches["p0"].shape[0], "same")), start)
