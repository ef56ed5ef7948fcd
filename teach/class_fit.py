"""Fit LPIPS's linear heads to one class's 2AFC answers: the quiz dashboard's "Fit LPIPS to this class".

The LPIPS paper calibrated its heads on people's 2AFC judgments (BAPPS): non-negative weights per
channel, trained through a small ranking network with a cross-entropy loss against the share of
people who chose each patch. A class quiz collects the same judgments, so the same fit runs on
them (:func:`core.judgments.fit.fit_heads`, the official Trainer's objective and schedule):

* every round someone voted on is one triplet: the reference, image A as ``p0``, image B as
  ``p1`` (the very pixels the class saw, as stored), and ``judge``, the share of the class that
  picked B, exactly what ``python -m store export`` writes in the BAPPS layout;
* the rounds are split into a training and a held-out part **by photo**: every round of a photo
  is on one side, so the held-out score measures how the heads do on photos the fit never saw
  (rounds of one photo share its content; splitting them would let the fit learn the photo);
* each image goes through the backbone once (:func:`core.judgments.features.triplet_features`);
  after that, any heads' distances are dot products, so scoring v0.1, uniform ("baseline") and
  the fitted heads on the held-out rounds costs nothing more.

:func:`readiness` says, from the dashboard's summary alone (no image read), whether the class has
enough answers; :func:`class_triplets` reads them; :func:`fit_class` runs the fit with progress
and returns a :class:`ClassFit`: the held-out scores before and after, the human ceiling on the
same rounds, how much each layer's weights moved, and the heads file (safetensors + manifest).

>>> Readiness(rounds=3, images=1, votes=5).message
'Fitting needs at least 4 rounds with votes, showing at least 2 different photos (all rounds of a photo are held out together); this class has 3 voted rounds of 1 photo so far.'
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from core.images.tensors import from_numpy
from core.judgments.features import heads_vector, triplet_features, uniform_heads
from core.judgments.fit import EpochRecord, fit_heads, initial_heads, score_heads, split_by_reference
from core.judgments.scores import human_ceiling_2afc
from core.lpips import weights
from core.lpips.engine import Engine
from core.lpips.heads import pack_heads, save_heads
from core.lpips.names import CHANNELS, TAP_NAMES
from store.base import BaseQuizStore
from store.errors import QuizInputError

__all__ = ["HELDOUT_SHARE", "MIN_IMAGES", "MIN_ROUNDS", "TRAINING_LENGTHS", "ClassFit", "ClassTriplets", "FitStopped",
           "LayerMove", "Readiness", "class_triplets", "fit_class", "layer_moves", "readiness", "warm_up"]

#: The fewest voted rounds a fit starts with, and the fewest distinct photos among them: one
#: photo's rounds are held out, the others trained on, so two photos is the least that splits.
MIN_ROUNDS, MIN_IMAGES = 4, 2
#: The share of the voted rounds held out (whole photos are drawn until it is reached).
HELDOUT_SHARE = 0.25
#: Training lengths offered: (epochs at the full rate, epochs of linear decay). The paper's
#: 5 + 5 ran over 150,000+ triplets; a class has tens of rounds, one Adam step per epoch, so the
#: weights hardly move in 10 steps. Longer runs cost little: each step is a 50×1,152 product.
TRAINING_LENGTHS: dict[str, tuple[int, int]] = {
    "as the paper (5 + 5 epochs)": (5, 5),
    "longer (50 + 50 epochs)": (50, 50),
    "much longer (250 + 250 epochs)": (250, 250),
}

Init = Literal["v0.1", "scratch"]
Progress = Callable[[float, str], None]


class FitStopped(Exception):
    """Raised inside :func:`fit_class` when its ``should_stop`` says so (the page was closed)."""


@dataclass(frozen=True)
class Readiness:
    """Whether a class has enough 2AFC answers to fit and hold out: voted rounds, distinct
    photos among them, and votes."""

    rounds: int
    images: int
    votes: int

    @property
    def ok(self) -> bool:
        return self.rounds >= MIN_ROUNDS and self.images >= MIN_IMAGES

    @property
    def message(self) -> str:
        """What is missing, in a sentence ('' when nothing is)."""
        if self.ok:
            return ""
        photos = f"{self.images} photo{'' if self.images == 1 else 's'}"
        return (f"Fitting needs at least {MIN_ROUNDS} rounds with votes, showing at least {MIN_IMAGES} different "
                "photos (all rounds of a photo are held out together); this class has "
                f"{self.rounds} voted round{'' if self.rounds == 1 else 's'} of {photos} so far.")


def readiness(summary) -> Readiness:
    """:class:`Readiness` from a :class:`teach.quiz.Summary` (the dashboard's; no image is read)."""
    voted = [r for r in summary.rounds if r.votes_a + r.votes_b > 0]
    return Readiness(rounds=len(voted), images=len({r.sample for r in voted}),
                     votes=sum(r.votes_a + r.votes_b for r in voted))


@dataclass(frozen=True)
class ClassTriplets:
    """A class's voted rounds as 2AFC triplets (round order): images 1×3×H×W in [0, 1] as stored,
    ``judge`` the share of the class that picked B (= p1), ``votes`` each round's voter count."""

    code: str
    rounds: tuple[int, ...]
    samples: tuple[str, ...]
    ref: tuple[torch.Tensor, ...]
    p0: tuple[torch.Tensor, ...]
    p1: tuple[torch.Tensor, ...]
    judge: np.ndarray
    votes: np.ndarray

    def __len__(self) -> int:
        return len(self.rounds)


def _image(png: bytes) -> torch.Tensor:
    with Image.open(io.BytesIO(png)) as image:
        return from_numpy(np.array(image.convert("RGB")))


def class_triplets(store: BaseQuizStore, code: str) -> ClassTriplets:
    """Session ``code``'s voted, prepared rounds as triplets (what the BAPPS export writes)."""
    info = store.require_session(code)
    votes: dict[int, int] = {}
    votes_b: dict[int, int] = {}
    for vote in store.votes(info.code):
        votes[vote.round_index] = votes.get(vote.round_index, 0) + 1
        votes_b[vote.round_index] = votes_b.get(vote.round_index, 0) + (vote.choice == "B")
    rounds, samples, refs, p0s, p1s = [], [], [], [], []
    for index in sorted(votes):
        stored = store.stored_round(info.code, index)
        if stored is None:  # a vote needs a prepared round; kept safe for a store edited by hand
            continue
        rounds.append(index)
        samples.append(stored.sample)
        refs.append(_image(stored.ref_png))
        p0s.append(_image(stored.a_png))
        p1s.append(_image(stored.b_png))
    return ClassTriplets(info.code, tuple(rounds), tuple(samples), tuple(refs), tuple(p0s), tuple(p1s),
                         np.array([votes_b[i] / votes[i] for i in rounds], dtype=np.float64),
                         np.array([votes[i] for i in rounds], dtype=np.int64))


@dataclass(frozen=True)
class LayerMove:
    """How far one layer's head moved in the fit: the mean weight before and after, the mean
    absolute change per channel, and that change as a share of the layer's starting weight
    (Σ|Δw| / Σ|w₀|; ``None`` when the layer started at all zeros)."""

    layer: str
    channels: int
    mean_before: float
    mean_after: float
    mean_abs_change: float
    relative_change: float | None


def layer_moves(before: torch.Tensor, after: torch.Tensor, net: str) -> tuple[LayerMove, ...]:
    """:class:`LayerMove` per layer from two heads vectors (:func:`~core.judgments.features.heads_vector`).

    >>> w0 = torch.ones(1152); w1 = w0.clone(); w1[:64] = 1.5  # relu1's 64 channels moved by 0.5
    >>> [(m.layer, m.mean_abs_change, m.relative_change) for m in layer_moves(w0, w1, "alex")][:2]
    [('relu1', 0.5, 0.5), ('relu2', 0.0, 0.0)]
    """
    b = torch.as_tensor(before, dtype=torch.float64).reshape(-1)
    a = torch.as_tensor(after, dtype=torch.float64).reshape(-1)
    if b.shape != a.shape or b.numel() != sum(CHANNELS[net]):
        raise QuizInputError(f"Both heads vectors need {sum(CHANNELS[net])} weights for {net}, got {b.numel()} "
                             f"and {a.numel()}.")
    out = []
    for name, w0, w1 in zip(TAP_NAMES[net], b.split(list(CHANNELS[net])), a.split(list(CHANNELS[net]))):
        change = (w1 - w0).abs()
        scale = float(w0.abs().sum())
        out.append(LayerMove(name, int(w0.numel()), float(w0.mean()), float(w1.mean()), float(change.mean()),
                             float(change.sum()) / scale if scale > 0 else None))
    return tuple(out)


@dataclass(frozen=True)
class ClassFit:
    """The result of :func:`fit_class`.

    ``heldout`` and ``training`` map "v0.1 heads", "baseline (uniform) heads" and "fitted heads"
    to their 2AFC score on the held-out and the training rounds; ``human_heldout`` is the human
    ceiling on the held-out rounds. ``files`` holds the heads file and its manifest by name
    (``file_name`` is the heads file's), ``bundle`` both as one zip.
    """

    code: str
    net: str
    init: str
    nepoch: int
    nepoch_decay: int
    seed: int
    train_rounds: tuple[int, ...]
    heldout_rounds: tuple[int, ...]
    heldout_photos: tuple[str, ...]
    heldout: dict[str, float]
    training: dict[str, float]
    human_heldout: float
    human_training: float
    moves: tuple[LayerMove, ...]
    history: tuple[EpochRecord, ...]
    heads: dict[str, torch.Tensor]
    file_name: str
    files: dict[str, bytes]
    bundle: bytes
    seconds_features: float
    seconds_fit: float


def _features(engine: Engine, data: ClassTriplets, progress: Progress, stop: Callable[[], bool]):
    """φ(ref, A) and φ(ref, B) per round, in round order: rounds of one image size go through the
    backbone together (photos of other aspect ratios have other sizes)."""
    by_size: dict[tuple[int, ...], list[int]] = {}
    for i, ref in enumerate(data.ref):
        by_size.setdefault(tuple(ref.shape), []).append(i)
    size = sum(CHANNELS[engine.net])
    phi0, phi1 = torch.empty(len(data), size), torch.empty(len(data), size)
    done = 0
    for indices in by_size.values():
        for start in range(0, len(indices), 8):  # 8 rounds (24 images) per pass: a progress step each
            if stop():
                raise FitStopped()
            part = indices[start:start + 8]
            f0, f1 = triplet_features(engine, torch.cat([data.ref[i] for i in part]),
                                      torch.cat([data.p0[i] for i in part]), torch.cat([data.p1[i] for i in part]))
            phi0[part], phi1[part] = f0, f1
            done += len(part)
            progress(done / len(data), f"Features: {done} of {len(data)} rounds through {engine.net}")
    return phi0, phi1


_warm = False


def warm_up() -> None:
    """Run one Adam step on a throwaway weight, once per process, in the caller's thread.

    The first optimizer imports ``torch._dynamo`` and its first steps build typing forward
    references: both compile source text. Python 3.11's compiler keeps state that is not safe
    against another thread compiling at the same moment (a Streamlit page script, say): it fails
    with "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905). An app
    calls this in its script thread before starting :func:`fit_class` in a background thread.
    """
    global _warm
    if _warm:
        return
    w = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([w], lr=1e-4, betas=(0.5, 0.999))
    optimizer.zero_grad(set_to_none=True)
    (w * w).sum().backward()
    optimizer.step()
    _warm = True


def fit_class(data: ClassTriplets, engine: Engine, *, init: Init = "v0.1", nepoch: int = 50, nepoch_decay: int = 50,
              seed: int = 0, heldout: float = HELDOUT_SHARE, progress: Progress | None = None,
              should_stop: Callable[[], bool] | None = None) -> ClassFit:
    """Fit heads for ``engine.net`` to the class's answers; see the module notes.

    ``progress(fraction, text)`` is called as the features and the epochs advance (features are
    the first half of the bar, epochs the second); ``should_stop()`` is asked before each step
    and ends the fit with :class:`FitStopped`. Raises :class:`~store.errors.QuizInputError`
    when the class has too few answers (:data:`MIN_ROUNDS`, :data:`MIN_IMAGES`).
    """
    report = progress or (lambda fraction, text: None)
    stop = should_stop or (lambda: False)
    if init not in ("v0.1", "scratch"):
        raise QuizInputError(f"A class fit starts from 'v0.1' or 'scratch', got {init!r}.")
    ready = Readiness(len(data), len(set(data.samples)), int(data.votes.sum()))
    if not ready.ok:
        raise QuizInputError(ready.message)
    net = engine.net
    train, held = split_by_reference(data.samples, heldout, seed=seed)
    started = time.perf_counter()
    phi0, phi1 = _features(engine, data, lambda f, text: report(0.5 * f, text), stop)
    seconds_features = time.perf_counter() - started
    judge = torch.as_tensor(data.judge)
    t0, t1, tj = phi0[train], phi1[train], judge[train]
    h0, h1, hj = phi0[held], phi1[held], judge[held]
    total = nepoch + nepoch_decay

    def epoch_done(epoch: int, loss: float, score: float | None) -> None:
        report(0.5 + 0.5 * epoch / total, f"Fitting: epoch {epoch} of {total} (held-out 2AFC {100 * score:.1f}%)")
        if stop():
            raise FitStopped()

    published = weights.load_linear_heads(net, "0.1")
    baseline = uniform_heads(net)
    started = time.perf_counter()
    result = fit_heads(t0, t1, tj, net=net, init=init, heldout=(h0, h1, hj), nepoch=nepoch, nepoch_decay=nepoch_decay,
                       seed=seed, callback=epoch_done, threads=None)
    seconds_fit = time.perf_counter() - started
    start_heads = initial_heads(net, init, seed)  # where the fit started: v0.1, or the Trainer's random draw
    fitted = heads_vector(result.heads, net)
    labels = {"v0.1 heads": published, "baseline (uniform) heads": baseline, "fitted heads": result.heads}
    held_scores = {label: score_heads(h, h0, h1, hj, net) for label, h in labels.items()}
    train_scores = {label: score_heads(h, t0, t1, tj, net) for label, h in labels.items()}
    photos = tuple(sorted({data.samples[i] for i in held}))
    human_held, human_train = human_ceiling_2afc(hj.numpy()), human_ceiling_2afc(tj.numpy())
    file_name = f"class-{data.code}-{net}.safetensors"
    with tempfile.TemporaryDirectory(prefix="lpips-class-fit-") as folder:
        path = save_heads(
            Path(folder) / file_name, result.heads, net=net, origin=init,
            data=f"class quiz session {data.code}: {len(train)} voted rounds fitted, {len(held)} held out by photo",
            heldout_2afc=held_scores["fitted heads"],
            extra={"session": data.code, "epochs": nepoch, "decay": nepoch_decay, "seed": seed,
                   "triplets": len(train), "heldout_triplets": len(held), "heldout_photos": list(photos),
                   "heldout_2afc_before": {"v0.1": held_scores["v0.1 heads"],
                                           "baseline (uniform)": held_scores["baseline (uniform) heads"]},
                   "human_ceiling_heldout": human_held})
        files = {path.name: path.read_bytes(), path.name + ".json": Path(str(path) + ".json").read_bytes()}
        bundle = pack_heads(path)
    return ClassFit(
        code=data.code, net=net, init=init, nepoch=nepoch, nepoch_decay=nepoch_decay, seed=seed,
        train_rounds=tuple(data.rounds[i] for i in train), heldout_rounds=tuple(data.rounds[i] for i in held),
        heldout_photos=photos, heldout=held_scores, training=train_scores, human_heldout=human_held,
        human_training=human_train, moves=layer_moves(start_heads, fitted, net), history=result.history,
        heads=result.heads, file_name=file_name, files=files, bundle=bundle, seconds_features=seconds_features,
        seconds_fit=seconds_fit)
