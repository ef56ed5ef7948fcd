"""Fitting LPIPS's linear heads to 2AFC judgments, on stored φ vectors.

The official recipe (``lpips.trainer.Trainer`` with ``is_train=True``, driven by the official
``train.py``), kept here step for step:

* the heads are non-negative per-channel weights, clamped at 0 after every step
  (``Trainer.clamp_weights``);
* a small ranking network (``lpips.Dist2LogitLayer``, ``chn_mid=32``: three 1×1 convolutions on
  ``(d0, d1, d0 − d1, d0/(d1 + 0.1), d1/(d0 + 0.1))`` with leaky ReLUs and a sigmoid) turns the two
  distances into the probability that people chose p1, trained jointly with the heads;
* the loss is ``BCELoss`` against ``per = (judge·2 − 1 + 1)/2`` (``BCERankingLoss`` receives
  ``judge·2 − 1`` from ``Trainer.forward_train`` and maps it back, so ``per`` is the judgment);
* Adam over heads and ranking network, ``lr = 1e-4``, ``betas = (0.5, 0.999)``, batches of 50
  triplets in a fresh random order each epoch (the last one partial, as a ``DataLoader``);
* ``nepoch`` epochs at ``lr``, then ``nepoch_decay`` epochs of linear decay: ``train.py`` calls
  ``update_learning_rate`` after every epoch past ``nepoch``, so epoch ``nepoch + i`` runs at
  ``lr·(1 − (i − 1)/nepoch_decay)`` and the last one at ``lr/nepoch_decay`` (:func:`learning_rate`);
* the backbone is frozen (the default: no ``--train_trunk``).

Where this fast path departs from the official Trainer:

* **no dropout on the heads' inputs.** The official heads (``NetLinLayer(use_dropout=True)``)
  drop half of the squared feature differences, per position and channel, before weighting
  them. Working on spatial means, there is nothing left to drop; dropout's expectation is the
  same ``w · φ``, but its noise (a regulariser) is gone;
* **the distances come from φ, not from a forward pass**: equal to float rounding
  (:mod:`core.judgments.features`), with no gradient into the patches or the trunk;
* **random numbers**: the batch order and the initial weights come from ``seed`` through their
  own generators, not from PyTorch's global generator, so runs repeat but do not draw the same
  order as an official run;
* for SqueezeNet, the official ``clamp_weights`` also clamps the trunk's 1×1 Fire convolutions
  (it clamps every 1×1 conv of the model); here the trunk stays as published.

Initial heads: ``"scratch"`` draws them as the official Trainer does (its heads always start
untrained: ``LPIPS(pretrained=not is_train)``, PyTorch's default ``Conv2d`` init, uniform in
±1/√C, negatives kept until the first clamp); ``"v0.1"`` starts from the published heads;
``"uniform"`` from all ones (the uncalibrated baseline); or pass a heads dict.

>>> import torch
>>> [round(learning_rate(epoch, 1e-4, nepoch=5, nepoch_decay=5), 9) for epoch in (1, 5, 6, 7, 10)]
[0.0001, 0.0001, 0.0001, 8e-05, 2e-05]
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import torch
from torch import nn

from core.errors import InvalidArgumentError

from .features import CHANNELS, feature_size, heads_from_vector, heads_vector, uniform_heads
from .scores import score_2afc

__all__ = ["EpochRecord", "FitResult", "RankNet", "fit_heads", "initial_heads", "learning_rate", "score_heads",
           "split_by_reference"]

Init = Literal["scratch", "v0.1", "uniform"]
Callback = Callable[[int, float, "float | None"], None]


class RankNet(nn.Module):
    """``lpips.Dist2LogitLayer(chn_mid=32)``: the same layers, in the same order, with the same init."""

    def __init__(self, chn_mid: int = 32) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(5, chn_mid, 1, stride=1, padding=0, bias=True), nn.LeakyReLU(0.2, True),
            nn.Conv2d(chn_mid, chn_mid, 1, stride=1, padding=0, bias=True), nn.LeakyReLU(0.2, True),
            nn.Conv2d(chn_mid, 1, 1, stride=1, padding=0, bias=True), nn.Sigmoid(),
        )

    def forward(self, d0: torch.Tensor, d1: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
        """Probability that people chose p1, for distances of shape N×1×1×1."""
        return self.model(torch.cat((d0, d1, d0 - d1, d0 / (d1 + eps), d1 / (d0 + eps)), dim=1))


@dataclass(frozen=True)
class EpochRecord:
    """One epoch: its learning rate, mean training loss, 2AFC on the training and held-out sets."""

    epoch: int
    lr: float
    loss: float
    train_2afc: float
    heldout_2afc: float | None
    seconds: float


@dataclass(frozen=True)
class FitResult:
    """Fitted heads (official format, for ``LpipsNetwork(..., heads=...)``) and how the fit went."""

    net: str
    init: str
    seed: int
    heads: dict[str, torch.Tensor]
    rank_state: dict[str, torch.Tensor] = field(repr=False)
    history: tuple[EpochRecord, ...]
    settings: dict[str, float | int]

    @property
    def heldout_2afc(self) -> float | None:
        """The held-out 2AFC after the last epoch (``None`` without a held-out set)."""
        return self.history[-1].heldout_2afc if self.history else None


def learning_rate(epoch: int, lr: float, nepoch: int, nepoch_decay: int) -> float:
    """The rate the official ``train.py`` uses during ``epoch`` (1-based)."""
    rate = lr
    for _ in range(max(0, epoch - 1 - nepoch)):  # update_learning_rate runs after each epoch > nepoch
        rate = rate - lr / nepoch_decay  # one subtraction per call, as the official, for the same bits
    return rate


def initial_heads(net: str, init: Init | Mapping[str, torch.Tensor], seed: int = 0) -> torch.Tensor:
    """The starting heads as one vector (see the module docstring for the choices)."""
    if isinstance(init, Mapping):
        return heads_vector(init, net).clone()
    if init == "uniform":
        return heads_vector(uniform_heads(net), net)
    if init == "v0.1":
        from core.lpips import weights

        return heads_vector(weights.load_linear_heads(net, "0.1"), net)
    if init == "scratch":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # NetLinLayer's own code path: an nn.Conv2d(C, 1, 1, bias=False) per layer, in order.
            parts = [nn.Conv2d(c, 1, 1, stride=1, padding=0, bias=False).weight.detach().reshape(-1)
                     for c in CHANNELS[net]]
        return torch.cat(parts)
    raise InvalidArgumentError(f"Argument `init` must be one of ('scratch', 'v0.1', 'uniform') or a heads dict, "
                               f"got {init!r}.")


def _check_data(phi0, phi1, judge, net: str, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    size = feature_size(net)
    phi0, phi1 = torch.as_tensor(phi0, dtype=torch.float32), torch.as_tensor(phi1, dtype=torch.float32)
    judge = torch.as_tensor(np.asarray(judge, dtype=np.float64).reshape(-1), dtype=torch.float32)
    if phi0.ndim != 2 or phi0.shape != phi1.shape or phi0.shape[1] != size:
        raise InvalidArgumentError(f"{name}: `phi0` and `phi1` must both be N×{size} for {net}, got "
                                   f"{tuple(phi0.shape)} and {tuple(phi1.shape)}.")
    if judge.numel() != phi0.shape[0] or phi0.shape[0] == 0:
        raise InvalidArgumentError(f"{name}: one judgment per triplet is needed, got {judge.numel()} for "
                                   f"{phi0.shape[0]} triplets.")
    if not (torch.isfinite(phi0).all() and torch.isfinite(phi1).all()):
        raise InvalidArgumentError(f"{name}: φ holds NaN or infinite values; recompute the features.")
    if not ((judge >= 0) & (judge <= 1)).all():
        raise InvalidArgumentError(f"{name}: judgments must be fractions of people in [0, 1].")
    return phi0, phi1, judge


def _whole(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"`{name}` must be a whole number ≥ {minimum}, got {value!r}.")
    return value


def _agreement(phi0: torch.Tensor, phi1: torch.Tensor, judge: torch.Tensor, w: torch.Tensor) -> float:
    with torch.no_grad():
        return score_2afc((phi0 @ w).numpy(), (phi1 @ w).numpy(), judge.numpy())


def score_heads(heads: Mapping[str, torch.Tensor] | torch.Tensor, phi0, phi1, judge, net: str = "alex") -> float:
    """The 2AFC score of LPIPS with ``heads`` (a heads dict or vector) on triplets given by their φ.

    >>> import torch
    >>> phi0, phi1 = torch.zeros(2, 1152), torch.zeros(2, 1152)
    >>> phi0[0, 0], phi1[1, 0] = 1.0, 1.0  # triplet 0: p0 differs more; triplet 1: p1 does
    >>> score_heads(torch.ones(1152), phi0, phi1, [1.0, 0.0])
    1.0
    """
    phi0, phi1, judge = _check_data(phi0, phi1, judge, net, "scored set")
    w = heads if isinstance(heads, torch.Tensor) else heads_vector(heads, net)
    if w.numel() != feature_size(net):
        raise InvalidArgumentError(f"A heads vector for {net} has {feature_size(net)} weights, got {w.numel()}.")
    return _agreement(phi0, phi1, judge, w.detach().to(torch.float32).reshape(-1))


def fit_heads(phi0, phi1, judge, *, net: str = "alex", init: Init | Mapping[str, torch.Tensor] = "scratch",
              heldout: tuple | None = None, nepoch: int = 5, nepoch_decay: int = 5, batch_size: int = 50,
              lr: float = 1e-4, beta1: float = 0.5, seed: int = 0,
              rank_state: Mapping[str, torch.Tensor] | None = None,
              callback: Callback | None = None, threads: int | None = 1) -> FitResult:
    """Fit non-negative heads to 2AFC judgments with the official Trainer's objective and schedule.

    Args:
        phi0, phi1: N×D φ of (ref, p0) and (ref, p1) (:func:`~core.judgments.features.set_features`).
        judge: N fractions of people who chose p1.
        net: the backbone the φ come from (fixes D and the layer split).
        init: ``"scratch"`` (the official Trainer's start), ``"v0.1"``, ``"uniform"`` or a heads dict.
        heldout: optional ``(phi0, phi1, judge)`` scored after every epoch (never trained on).
        nepoch, nepoch_decay, batch_size, lr, beta1: as the official ``train.py``/``Trainer``.
        seed: initial weights and batch order; the same seed gives the same result.
        rank_state: start the ranking network from these weights (``model.0.weight`` …, the keys
            of ``lpips.Dist2LogitLayer``, e.g. an official ``*_net_rank.pth``) instead of its init.
        callback: ``callback(epoch, mean_loss, heldout_2afc_or_None)`` after every epoch.
        threads: PyTorch CPU threads while fitting (restored afterwards; ``None`` leaves the
            setting alone). The steps work on 50×D tensors, where handing work to a second
            thread costs more than it saves: on 2 cores one thread ran an epoch of 10,000
            triplets in 0.37 s, two threads in 2.3–3.9 s.

    Returns:
        :class:`FitResult` with the heads in the official format and one :class:`EpochRecord`
        per epoch.
    """
    if net not in CHANNELS:
        raise InvalidArgumentError(f"Argument `net` must be one of {tuple(CHANNELS)}, got {net!r}.")
    phi0, phi1, judge = _check_data(phi0, phi1, judge, net, "training set")
    held = None if heldout is None else _check_data(*heldout, net, "held-out set")
    _whole(nepoch, "nepoch", 0)
    _whole(nepoch_decay, "nepoch_decay", 0)
    _whole(batch_size, "batch_size", 1)
    if nepoch + nepoch_decay == 0:
        raise InvalidArgumentError("`nepoch` + `nepoch_decay` is 0: nothing would be trained; ask for at least one epoch.")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise InvalidArgumentError(f"`lr` must be a positive number, got {lr!r}.")
    if not (isinstance(beta1, (int, float)) and 0 <= beta1 < 1):
        raise InvalidArgumentError(f"`beta1` must be in [0, 1), got {beta1!r}.")

    if threads is not None:
        _whole(threads, "threads", 1)
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
    try:
        return _fit(phi0, phi1, judge, held, net, init, nepoch, nepoch_decay, batch_size, lr, beta1, seed,
                    rank_state, callback)
    finally:
        if threads is not None:
            torch.set_num_threads(previous)


def _fit(phi0, phi1, judge, held, net, init, nepoch, nepoch_decay, batch_size, lr, beta1, seed, rank_state,
         callback) -> FitResult:
    w = nn.Parameter(initial_heads(net, init, seed).to(torch.float32))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)  # the ranking net's own stream, independent of the heads'
        rank = RankNet()
    if rank_state is not None:
        try:
            rank.load_state_dict(dict(rank_state), strict=True)
        except (RuntimeError, KeyError) as exc:
            raise InvalidArgumentError(f"`rank_state` does not fit lpips.Dist2LogitLayer(chn_mid=32): {exc}") from None
    optimizer = torch.optim.Adam([w, *rank.parameters()], lr=lr, betas=(beta1, 0.999))
    bce = nn.BCELoss()
    # The official target: judge·2 − 1 in forward_train, (x + 1)/2 in BCERankingLoss, in float32.
    target = ((judge * 2.0 - 1.0) + 1.0) / 2.0
    order_gen = torch.Generator().manual_seed(seed)
    n = phi0.shape[0]
    history = []
    for epoch in range(1, nepoch + nepoch_decay + 1):
        start = time.perf_counter()
        rate = learning_rate(epoch, lr, nepoch, nepoch_decay)
        for group in optimizer.param_groups:
            group["lr"] = rate
        total, steps = 0.0, 0
        for idx in torch.randperm(n, generator=order_gen).split(batch_size):
            d0 = (phi0[idx] @ w).view(-1, 1, 1, 1)
            d1 = (phi1[idx] @ w).view(-1, 1, 1, 1)
            loss = bce(rank(d0, d1), target[idx].view(-1, 1, 1, 1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                w.clamp_(min=0)  # clamp_weights: heads stay non-negative after every step
            total += float(loss.detach())
            steps += 1
        detached = w.detach()
        held_score = None if held is None else _agreement(*held, detached)
        record = EpochRecord(epoch, rate, total / steps, _agreement(phi0, phi1, judge, detached), held_score,
                             time.perf_counter() - start)
        history.append(record)
        if callback is not None:
            callback(epoch, record.loss, held_score)
    return FitResult(net=net, init=init if isinstance(init, str) else "given", seed=seed,
                     heads=heads_from_vector(w.detach(), net),
                     rank_state={k: v.detach().clone() for k, v in rank.state_dict().items()},
                     history=tuple(history),
                     settings={"nepoch": nepoch, "nepoch_decay": nepoch_decay, "batch_size": batch_size,
                               "lr": lr, "beta1": beta1, "triplets": n})


def split_by_reference(references: Sequence[Hashable], heldout: float = 0.2,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a training and a held-out split where no reference is in both.

    ``references[i]`` names triplet ``i``'s reference (a source photo, a patch hash); whole
    references are drawn at random until the held-out split has at least ``heldout`` of the
    triplets.

    >>> train, held = split_by_reference(["a", "a", "b", "c", "c", "c"], 0.3, seed=1)
    >>> train.tolist(), held.tolist()
    ([2, 3, 4, 5], [0, 1])
    """
    if not (isinstance(heldout, (int, float)) and 0 < heldout < 1):
        raise InvalidArgumentError(f"`heldout` must be a fraction strictly between 0 and 1, got {heldout!r}.")
    keys = list(references)
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    if len(groups) < 2:
        raise InvalidArgumentError(f"Splitting by reference needs at least two distinct references, got {len(groups)}.")
    names = list(groups)
    order = np.random.default_rng(seed).permutation(len(names))
    held: list[int] = []
    for j in order:
        if len(held) >= heldout * len(keys) or len(held) + len(groups[names[j]]) == len(keys):
            break
        held += groups[names[j]]
    held_set = set(held)
    train = np.array([i for i in range(len(keys)) if i not in held_set], dtype=np.int64)
    return train, np.array(sorted(held), dtype=np.int64)
