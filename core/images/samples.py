"""The bundled sample gallery: public-domain / CC0 photos in ``gallery/`` beside this module
(package data: they install with the wheel).

``gallery/index.json`` lists each sample (key, file, title, one-line description, credit);
``gallery/LICENSES.md`` documents where every file comes from and its license.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from ..errors import ImageLoadError

if TYPE_CHECKING:  # listing the gallery must not pay for importing torch (the app shows it first)
    import torch

__all__ = ["SAMPLES_DIR", "Sample", "list_samples", "load_sample"]

#: Folder holding the sample images and their ``index.json``.
SAMPLES_DIR = Path(__file__).resolve().parent / "gallery"


@dataclass(frozen=True)
class Sample:
    """One gallery entry: ``key`` identifies it, ``path`` is the image file."""

    key: str
    title: str
    description: str
    path: Path
    credit: str = ""


def list_samples(samples_dir: Path | None = None) -> list[Sample]:
    """Return the samples listed in ``index.json``, in gallery order.

    >>> samples = list_samples()
    >>> len(samples) >= 9, all(s.path.is_file() for s in samples)
    (True, True)
    """
    folder = Path(samples_dir) if samples_dir is not None else SAMPLES_DIR
    index = folder / "index.json"
    try:
        raw = json.loads(index.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImageLoadError(
            f"The sample gallery index {index} is missing; reinstall the package (or restore core/images/gallery/ from the repository)."
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImageLoadError(f"The sample gallery index {index} cannot be read ({exc}).") from None
    entries = raw.get("samples") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise ImageLoadError(f"{index} must be an object with a \"samples\" list.")
    samples: list[Sample] = []
    for number, entry in enumerate(entries, start=1):
        samples.append(_parse_entry(entry, number, folder, index))
    keys = [s.key for s in samples]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ImageLoadError(f"{index} lists these sample keys more than once: {', '.join(duplicates)}.")
    return samples


def load_sample(key: str, samples_dir: Path | None = None) -> torch.Tensor:
    """Load the sample ``key`` as a 1×3×H×W float tensor in [0, 1].

    >>> load_sample("cat").shape
    torch.Size([1, 3, 300, 451])
    """
    samples = list_samples(samples_dir)
    for sample in samples:
        if sample.key == key:
            from .imageio import load_image

            return load_image(sample.path)
    available = ", ".join(s.key for s in samples)
    raise ImageLoadError(f"There is no sample called {key!r}; available samples: {available}.")


def _parse_entry(entry: object, number: int, folder: Path, index: Path) -> Sample:
    fields = ("key", "file", "title", "description")
    if not isinstance(entry, dict) or not all(isinstance(entry.get(f), str) and entry.get(f) for f in fields):
        raise ImageLoadError(
            f"Entry {number} of {index} needs non-empty text fields {', '.join(fields)}; got {entry!r}."
        )
    file_name = entry["file"]
    if Path(file_name).name != file_name or file_name in (".", ".."):
        raise ImageLoadError(
            f"Entry {number} of {index} names file {file_name!r}; it must be a plain file name inside {folder}."
        )
    credit = entry.get("credit", "")
    return Sample(
        key=entry["key"],
        title=entry["title"],
        description=entry["description"],
        path=folder / file_name,
        credit=credit if isinstance(credit, str) else "",
    )
