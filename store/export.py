"""A quiz session's judgments in the BAPPS layout (``python -m store export CODE DIR``).

Each round that people voted on becomes one 2AFC triplet of ``DIR/2afc/<split>/<CODE>/``: the
reference as ``ref/``, image A as ``p0/``, image B as ``p1/`` (the very pixels the class saw, as
stored), and ``judge/`` the share of the class that picked B — the official layout, so the
official ``test_dataset_model.py`` and ``train.py``, ``lpips-explorer bapps score|fit`` and
:func:`core.judgments.bapps.read_2afc` read what a class produced. Rounds nobody voted on, or not
prepared yet, have no judgment and are left out (counted in the result). A set holds patches of
one size (readers batch them); rounds of photos with other aspect ratios go to one set per size,
``<CODE>-<W>x<H>``.

A JND session's voted rounds become pairs of ``DIR/jnd/<split>/<CODE>/``: the first image shown
as ``p0/`` (the reference), the second as ``p1/`` (its distortion) and ``same/`` the share of the
class that answered "same" — the layout of the official ``jnd/val/<set>`` folders, which
:func:`core.judgments.bapps.read_jnd` and the official ``test_dataset_model.py --dataset_mode jnd``
read. Rounds whose two images were identical are the quiz's checks (as the paper's sentinels,
which are not in its data) and are left out, counted in ``identical``.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.judgments.bapps import write_2afc, write_jnd

from store.base import BaseQuizStore
from store.errors import QuizInputError

__all__ = ["BappsExport", "export_bapps"]

_SPLIT = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class BappsExport:
    """What :func:`export_bapps` wrote: the sets' folders, the triplets or pairs (round indices, in
    the order written), and the rounds left out because they had no votes, were not prepared or
    (JND) showed two identical images."""

    folders: tuple[Path, ...]
    rounds: tuple[int, ...]
    without_votes: tuple[int, ...]
    not_prepared: tuple[int, ...]
    identical: tuple[int, ...] = ()


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


def export_bapps(store: BaseQuizStore, code: str, root: str | os.PathLike, split: str = "val") -> BappsExport:
    """Write session ``code``'s voted rounds under ``root/2afc/<split>/<CODE>/`` (a JND session:
    ``root/jnd/<split>/<CODE>/``); see the module notes."""
    if not isinstance(split, str) or not _SPLIT.fullmatch(split):
        raise QuizInputError(f"The split is a folder name of letters, digits, '_' or '-' (e.g. val, train), got {split!r}.")
    info = store.require_session(code)
    jnd = info.kind == "jnd"
    # 2AFC: the share that picked B (p1); JND: the share that answered "same".
    chosen = "same" if jnd else "B"
    votes_chosen: dict[int, int] = {}
    votes: dict[int, int] = {}
    for vote in store.votes(info.code):
        votes[vote.round_index] = votes.get(vote.round_index, 0) + 1
        votes_chosen[vote.round_index] = votes_chosen.get(vote.round_index, 0) + (vote.choice == chosen)
    kept, without, missing, identical = [], [], [], []
    by_size: dict[tuple[int, int], list[tuple[int, np.ndarray, np.ndarray, np.ndarray, float]]] = {}
    for index in range(info.n_rounds):
        if not votes.get(index):
            without.append(index)
            continue
        stored = store.stored_round(info.code, index)
        if stored is None:
            missing.append(index)
            continue
        if jnd and not stored.chain_a.get("steps") and not stored.chain_b.get("steps"):
            identical.append(index)
            continue
        ref = _pixels(stored.ref_png)
        by_size.setdefault(ref.shape[:2], []).append(
            (index, ref, _pixels(stored.a_png), _pixels(stored.b_png), votes_chosen[index] / votes[index]))
    if not by_size:
        raise QuizInputError(f"Session {info.code} has no voted rounds yet; there is nothing to export."
                             + (" (Rounds of two identical images are checks and are not exported.)"
                                if identical else ""))
    base = Path(root) / ("jnd" if jnd else "2afc") / split
    names = {size: info.code if len(by_size) == 1 else f"{info.code}-{size[1]}x{size[0]}" for size in by_size}
    for name in names.values():
        if (base / name).exists() and any((base / name).iterdir()):
            raise QuizInputError(f"{base / name} already holds files; choose another folder (an export never overwrites).")
    folders = []
    for size, triplets in by_size.items():
        judged = np.array([t[4] for t in triplets], dtype=np.float64)
        if jnd:
            folder = write_jnd(base / names[size], np.stack([t[2] for t in triplets]),
                               np.stack([t[3] for t in triplets]), judged)
        else:
            folder = write_2afc(base / names[size], np.stack([t[1] for t in triplets]),
                                np.stack([t[2] for t in triplets]), np.stack([t[3] for t in triplets]), judged)
        folders.append(folder)
        kept += [t[0] for t in triplets]
    return BappsExport(tuple(folders), tuple(kept), tuple(without), tuple(missing), tuple(identical))
