"""A metric as a loss: optimize a degraded image towards the reference, one loss at a time.

The image starts as the reference with a distortion from the registry (noise, blur, JPEG...)
and is optimized with Adam on one loss: ``l2`` (mean squared error), ``ssim`` (1 − SSIM),
``lpips_alex``, ``lpips_vgg``, or a weighted mix such as ``0.5*l2+0.5*lpips_alex``. Each term
is divided by its value at the start, so the weights of a mix compare like with like.

``scale`` limits what the optimizer may paint: with 1 every pixel is free and every loss can
in principle reach the reference itself, so what differs is what each loss fixes first and
what it leaves; with 2 or 4 the image is a bilinear upscaling of a grid 2× or 4× coarser (a
small "upscaler"), the reference is out of reach, and each loss has to choose what to give up:
the classic outcome (L2 gives blur; LPIPS alone, sharper detail with high-frequency artefacts;
a mix, in between) shows most clearly there.

>>> import torch
>>> from core.synthesis import restore
>>> ref = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
>>> result = restore(ref, losses=["l2"], steps=20, degradation="gaussian_blur", strength=2.0, score=False)
>>> result.runs[0].history[-1]["loss"] < result.runs[0].history[0]["loss"]
True
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ..errors import InvalidArgumentError
from ..images.tensors import check_unit_batch
from .common import MAX_SIZE, ProgressFn, StepReport, StopCheck, check_steps, score_images
from .objectives import Objective

__all__ = ["DEGRADATIONS", "LOSS_TERMS", "LossSpec", "RestoreResult", "RestoreRun", "degrade", "parse_loss",
           "restore"]

#: The loss terms and how each is computed from its metric.
LOSS_TERMS = {"l2": "psnr", "ssim": "ssim", "lpips_alex": "lpips_alex", "lpips_vgg": "lpips_vgg"}
TERM_LABELS = {"l2": "L2", "ssim": "SSIM", "lpips_alex": "LPIPS-alex", "lpips_vgg": "LPIPS-vgg"}
#: The degradations offered first (any registry distortion works): name → main parameter.
DEGRADATIONS = {"gaussian_noise": "sigma", "gaussian_blur": "sigma", "jpeg": "quality"}
SCALES = (1, 2, 4)
_TERM = re.compile(r"^\s*(?:(\d+(?:\.\d*)?|\.\d+)\s*\*\s*)?([a-z][a-z0-9_]*)\s*$")


@dataclass(frozen=True)
class LossSpec:
    """A loss: weighted terms, e.g. ``{"l2": 0.5, "lpips_alex": 0.5}``."""

    weights: tuple[tuple[str, float], ...]

    @property
    def label(self) -> str:
        if len(self.weights) == 1:
            return TERM_LABELS[self.weights[0][0]]
        return " + ".join(f"{w:g}×{TERM_LABELS[t]}" for t, w in self.weights)

    @property
    def text(self) -> str:
        """The spelling :func:`parse_loss` reads back (and a file-name-safe slug source)."""
        if len(self.weights) == 1:
            return self.weights[0][0]
        return "+".join(f"{w:g}*{t}" for t, w in self.weights)

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9_.]+", "-", self.text.replace("*", "x").replace("+", "_plus_"))


def parse_loss(text: str | LossSpec) -> LossSpec:
    """``"l2"``, ``"lpips_alex"``, ``"mix"`` (= ``0.5*l2+0.5*lpips_alex``) or ``"0.7*l2+0.3*lpips_vgg"``.

    >>> parse_loss("0.5*l2+0.5*lpips_alex").label
    '0.5×L2 + 0.5×LPIPS-alex'
    >>> parse_loss("psnr")
    Traceback (most recent call last):
    ...
    core.errors.InvalidArgumentError: Unknown loss term 'psnr' in 'psnr'; use l2, ssim, lpips_alex, lpips_vgg, weighted like 0.5*l2+0.5*lpips_alex, or mix.
    """
    if isinstance(text, LossSpec):
        return text
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgumentError(f"A loss is text such as l2 or 0.5*l2+0.5*lpips_alex, got {text!r}.")
    spelled = text.strip().lower()
    if spelled == "mix":
        spelled = "0.5*l2+0.5*lpips_alex"
    weights: dict[str, float] = {}
    for part in spelled.split("+"):
        match = _TERM.match(part)
        name = match.group(2) if match else part.strip()
        if not match or name not in LOSS_TERMS:
            raise InvalidArgumentError(f"Unknown loss term {name!r} in {text!r}; use {', '.join(LOSS_TERMS)}, "
                                       "weighted like 0.5*l2+0.5*lpips_alex, or mix.")
        weight = float(match.group(1)) if match.group(1) else 1.0
        if not (math.isfinite(weight) and weight > 0):
            raise InvalidArgumentError(f"Loss weights must be positive numbers, got {weight!r} for {name}.")
        weights[name] = weights.get(name, 0.0) + weight
    return LossSpec(tuple(weights.items()))


@dataclass(frozen=True)
class RestoreRun:
    """One loss's result: the final 8-bit image, its scores, and the history (per step: the
    loss and each of its terms' metric values: ``psnr`` for l2, ``ssim``, ``lpips_alex``...)."""

    loss: LossSpec
    image: torch.Tensor
    scores: dict[str, float | None]
    history: tuple[dict[str, float], ...]
    steps_done: int
    seconds: float


@dataclass(frozen=True)
class RestoreResult:
    """All losses' runs from one degraded start (images 1×3×H×W, 8-bit exact, on the CPU)."""

    ref: torch.Tensor
    start: torch.Tensor
    start_scores: dict[str, float | None]
    runs: tuple[RestoreRun, ...]
    degradation: str
    strength: float
    scale: int
    steps: int
    stopped: bool
    seconds: float
    device: str
    seed: int
    settings: dict[str, Any] = field(default_factory=dict)

    def history_rows(self) -> list[dict[str, Any]]:
        """Long format: one row per loss and step (``loss, step, value, <term metrics>``)."""
        rows = []
        for run in self.runs:
            for entry in run.history:
                rows.append({"loss": run.loss.text, **entry})
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"degradation": self.degradation, "strength": self.strength, "scale": self.scale,
                "start": dict(self.start_scores),
                "runs": [{"loss": r.loss.text, "label": r.loss.label, "scores": dict(r.scores),
                          "steps": r.steps_done, "seconds": round(r.seconds, 3)} for r in self.runs],
                "steps": self.steps, "stopped": self.stopped, "seconds": round(self.seconds, 3),
                "device": self.device, "seed": self.seed, "size": list(self.ref.shape[-2:]), **self.settings}


def degrade(ref: torch.Tensor, degradation: str, strength: float | None = None, seed: int = 0) -> torch.Tensor:
    """``ref`` with one registry distortion at ``strength`` (its main parameter; default: the
    registry's default), rounded to 8 bits."""
    from .. import distortions

    if degradation not in distortions.REGISTRY:
        raise InvalidArgumentError(f"Unknown degradation {degradation!r}; use one of {', '.join(distortions.REGISTRY)}.")
    spec = distortions.REGISTRY[degradation]
    main = spec.params[0]
    params = {} if strength is None else {main.name: int(round(strength)) if main.kind == "int" else float(strength)}
    out = distortions.apply([distortions.Step(degradation, params)], ref, seed=seed)
    return out.clamp(0, 1).mul(255).round().div(255)


def _check_scale(scale: int) -> int:
    if scale not in SCALES:
        raise InvalidArgumentError(f"`scale` must be one of {', '.join(map(str, SCALES))} (1: every pixel free; "
                                   f"2 or 4: a grid that much coarser, upscaled), got {scale!r}.")
    return scale


def restore(ref: torch.Tensor, losses: Sequence[str | LossSpec] = ("l2", "ssim", "lpips_alex", "mix"), *,
            degradation: str = "gaussian_noise", strength: float | None = None, steps: int = 200,
            lr: float = 0.01, scale: int = 1, seed: int = 0, device: str | torch.device | None = None,
            progress: ProgressFn | None = None, should_stop: StopCheck | None = None,
            score: bool = True) -> RestoreResult:
    """Optimize the degraded reference towards ``ref`` with each loss in ``losses``, one after
    the other, ``steps`` Adam steps (learning rate ``lr``, in pixel units) each.

    ``progress`` gets a :class:`StepReport` after each step (``step`` counts over all losses);
    ``should_stop()`` ends the run early: the losses done so far (and the one under way, at its
    current step) are returned with ``stopped=True``.
    """
    started = time.perf_counter()
    check_steps(steps)
    _check_scale(scale)
    specs = [parse_loss(loss) for loss in losses]
    if not specs:
        raise InvalidArgumentError("Give at least one loss (l2, ssim, lpips_alex, lpips_vgg or a mix).")
    if not (isinstance(lr, (int, float)) and 0 < lr <= 1):
        raise InvalidArgumentError(f"`lr` must be in (0, 1] (pixel units per Adam step), got {lr!r}.")
    batch = check_unit_batch(ref, "ref")
    if batch.shape[0] != 1:
        raise InvalidArgumentError(f"restore takes one reference image (1×3×H×W), got a batch of {batch.shape[0]}.")
    height, width = batch.shape[-2:]
    if height * width > MAX_SIZE * MAX_SIZE:
        raise InvalidArgumentError(f"restore runs on at most {MAX_SIZE}×{MAX_SIZE} pixels, got {width}×{height}.")
    if height % scale or width % scale:
        raise InvalidArgumentError(f"scale {scale} needs a size divisible by {scale}, got {width}×{height}.")
    ref8 = batch.float().clamp(0, 1).mul(255).round().div(255)
    start = degrade(ref8, degradation, strength, seed)
    objectives: dict[str, Objective] = {}
    first = Objective(LOSS_TERMS[specs[0].weights[0][0]], ref8, device)
    dev = first.device
    objectives[first.key] = first
    for spec in specs:
        for term, _ in spec.weights:
            key = LOSS_TERMS[term]
            if key not in objectives:
                objectives[key] = Objective(key, ref8, dev)
    ref_d, start_d = ref8.to(dev), start.to(dev)
    total = steps * len(specs)
    runs: list[RestoreRun] = []
    stopped = False
    for index, spec in enumerate(specs):
        if stopped:
            break
        run_started = time.perf_counter()
        grid = start_d if scale == 1 else F.interpolate(start_d, scale_factor=1 / scale, mode="area")
        param = grid.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([param], lr=lr)

        def image(p: torch.Tensor) -> torch.Tensor:
            if scale == 1:
                return p
            return F.interpolate(p, size=(height, width), mode="bilinear", align_corners=False)

        def terms(x: torch.Tensor) -> dict[str, torch.Tensor]:
            out = {}
            for term, _ in spec.weights:
                value = objectives[LOSS_TERMS[term]].value(x)[0]
                out[term] = value
            return out

        def term_loss(term: str, value: torch.Tensor) -> torch.Tensor:
            if term == "l2":  # from PSNR back to the MSE it came from
                return torch.pow(10.0, -value / 10.0)
            if term == "ssim":
                return 1.0 - value
            return value

        with torch.no_grad():
            base = {t: max(float(term_loss(t, v)), 1e-12) for t, v in terms(image(param)).items()}
        history: list[dict[str, float]] = []
        done = 0
        for k in range(steps + 1):
            with torch.enable_grad():
                values = terms(image(param))
                loss = sum(w * term_loss(t, values[t]) / base[t] for t, w in spec.weights)
            entry = {"step": k, "loss": float(loss.detach())}
            entry.update({LOSS_TERMS[t]: float(v.detach()) for t, v in values.items()})
            history.append(entry)
            if k == steps:
                break
            if should_stop is not None and should_stop():
                stopped = True
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                param.clamp_(0.0, 1.0)
            done = k + 1
            if progress is not None:
                snapshot = param
                progress(StepReport(index * steps + done, total, {"run": float(index), **{name: value for name, value in entry.items() if name != "step"}},
                    lambda snapshot=snapshot: image(snapshot.detach()).clamp(0, 1).cpu().clone()))
        with torch.no_grad():
            final = image(param.detach()).clamp(0, 1).mul(255).round().div(255)
        runs.append(RestoreRun(spec, final.cpu(), {}, tuple(history), done, time.perf_counter() - run_started))
    start_scores: dict[str, float | None] = {}
    if score:
        scored = score_images(ref_d.cpu(), torch.cat([start] + [r.image for r in runs]), dev)
        start_scores = scored[0]
        runs = [RestoreRun(r.loss, r.image, s, r.history, r.steps_done, r.seconds) for r, s in zip(runs, scored[1:])]
    return RestoreResult(ref=ref8.cpu(), start=start.cpu(), start_scores=start_scores, runs=tuple(runs),
                         degradation=degradation, strength=float(strength) if strength is not None else math.nan,
                         scale=scale, steps=steps, stopped=stopped, seconds=time.perf_counter() - started,
                         device=str(dev), seed=int(seed), settings={"lr": lr})
