"""Maximum differentiation (MAD) competition between two metrics.

After Wang & Simoncelli, "Maximum differentiation (MAD) competition: a methodology for
comparing computational models of perceptual quantities", Journal of Vision 8(12):8, 2008.

Starting from the reference plus white Gaussian noise scaled so that the *held* metric has the
chosen ``level``, two images are optimized at once: one towards what the *attacked* metric calls
most similar to the reference (``best``), one towards what it calls least similar (``worst``),
both kept on the held metric's level set. If the held metric were perceptual, the two images
would look alike; they do not.

Each step (projected gradient ascent on the level set, with pixels kept in [0, 1]):

1. the attacked metric's gradient, pointing towards more (worst) or less (best) difference;
2. minus its component along the held metric's gradient (pixels pinned at 0 or 1 are left out),
   so that to first order the step leaves the held metric unchanged; normalized to a step whose
   RMS shrinks from ``step_size`` × the start's RMS error to a tenth of it (cosine schedule);
3. Newton corrections along the held metric's gradient, ``x -= (h(x) - level) ∇h / |∇h|²``,
   until the held metric is back within half the tolerance (at most ``corrections`` per step).

At the end each image is rounded to 8 bits and its error ``x - ref`` scaled by a factor found by
bisection so that the held metric *of the 8-bit image* (what is saved and reported) is on the
level: within 0.05 dB for PSNR, 1e-3 for SSIM and LPIPS (a tenth of that is aimed for).

>>> import torch
>>> from core.synthesis import mad
>>> ref = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
>>> result = mad(ref, hold="psnr", level=20.0, attack="ssim", steps=5)
>>> abs(result.best_scores["psnr"] - 20.0) <= 0.05, result.worst_scores["ssim"] < result.best_scores["ssim"]
(True, True)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import InvalidArgumentError
from ..images.tensors import check_unit_batch
from .common import ProgressFn, StepReport, StopCheck, check_steps, score_images, MAX_SIZE
from .objectives import METRICS, Objective, metric_key

__all__ = ["HOLD_TOLERANCE", "MadResult", "MadStep", "UnreachableLevelError", "mad", "reachable_range"]

#: How far from the level the held metric of each saved image may be (the acceptance figure).
HOLD_TOLERANCE = {"psnr": 0.05, "ssim": 1e-3, "lpips_alex": 1e-3, "lpips_vgg": 1e-3}
#: The start path: reference + t × unit Gaussian noise, t from one grey level to pure noise.
NOISE_MIN = 1.0 / 255.0
NOISE_MAX = 1.0


class UnreachableLevelError(InvalidArgumentError):
    """The held metric cannot reach the level from the start image; the message names the range."""


@dataclass(frozen=True)
class MadStep:
    """Both metrics of both images before one step (continuous values, as the optimizer sees them)."""

    step: int
    best_hold: float
    best_attack: float
    worst_hold: float
    worst_attack: float


@dataclass(frozen=True)
class MadResult:
    """A finished (or stopped) MAD competition. Images are 1×3×H×W, 8-bit exact, on the CPU;
    scores are the registry's values of those 8-bit images (keys of :data:`SCORE_KEYS`)."""

    hold: str
    attack: str
    level: float
    ref: torch.Tensor
    start: torch.Tensor
    best: torch.Tensor
    worst: torch.Tensor
    best_scores: dict[str, float | None]
    worst_scores: dict[str, float | None]
    start_scores: dict[str, float | None]
    history: tuple[MadStep, ...]
    steps: int  # steps asked for
    steps_done: int
    stopped: bool
    seconds: float
    reachable: tuple[float, float]
    device: str
    seed: int
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def hold_error(self) -> float:
        """The larger distance of the two saved images' held metric from the level."""
        return max(abs(self.best_scores[self.hold] - self.level), abs(self.worst_scores[self.hold] - self.level))

    def history_rows(self) -> list[dict[str, float | int]]:
        """One row per step: ``step, best_<hold>, best_<attack>, worst_<hold>, worst_<attack>``."""
        h, a = self.hold, self.attack
        return [{"step": s.step, f"best_{h}": s.best_hold, f"best_{a}": s.best_attack,
                 f"worst_{h}": s.worst_hold, f"worst_{a}": s.worst_attack} for s in self.history]

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: hold, attack, level, best, worst (every metric), steps, seconds..."""
        return {"hold": self.hold, "attack": self.attack, "level": self.level,
                "best": dict(self.best_scores), "worst": dict(self.worst_scores), "start": dict(self.start_scores),
                "steps": self.steps_done, "steps_requested": self.steps, "stopped": self.stopped,
                "seconds": round(self.seconds, 3), "reachable": list(self.reachable), "device": self.device,
                "seed": self.seed, "size": list(self.ref.shape[-2:]), **self.settings}


def _noise(ref: torch.Tensor, seed: int) -> torch.Tensor:
    # Drawn on the CPU, then moved: one seed gives the same start on every device.
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(ref.shape, generator=gen, dtype=torch.float32).to(ref.device)


def _on_path(ref: torch.Tensor, noise: torch.Tensor, t: float) -> torch.Tensor:
    return (ref + t * noise).clamp_(0.0, 1.0)


def _format_level(key: str, value: float) -> str:
    return METRICS[key].format(value)


def reachable_range(hold: Objective, noise: torch.Tensor) -> tuple[float, float]:
    """The held metric's values at the two ends of the start path (one grey level of noise,
    pure noise), lowest first."""
    with torch.no_grad():
        ends = hold.value(torch.cat([_on_path(hold.ref, noise, NOISE_MIN), _on_path(hold.ref, noise, NOISE_MAX)]))
    low, high = sorted(float(v) for v in ends)
    return low, high


def _start_on_level(hold: Objective, noise: torch.Tensor, level: float, reach: tuple[float, float]) -> torch.Tensor:
    """Bisection in log(noise strength) for the start image whose held metric is ``level``."""
    label = METRICS[hold.key].label
    if not reach[0] <= level <= reach[1]:
        raise UnreachableLevelError(
            f"{label} = {_format_level(hold.key, level)} cannot be reached from the start (the reference plus "
            f"Gaussian noise): from one grey level of noise to pure noise, {label} spans "
            f"{_format_level(hold.key, reach[0])} to {_format_level(hold.key, reach[1])}. "
            f"Choose a level in that range (well inside it leaves the competition room to work).")
    sign = -1.0 if hold.info.higher_is_better else 1.0  # badness grows with the noise
    lo, hi = math.log(NOISE_MIN), math.log(NOISE_MAX)
    with torch.no_grad():
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            value = float(hold.value(_on_path(hold.ref, noise, math.exp(mid)))[0])
            if abs(value - level) < HOLD_TOLERANCE[hold.key] * 0.05:
                break
            if sign * (value - level) < 0:
                lo = mid
            else:
                hi = mid
    return _on_path(hold.ref, noise, math.exp(mid))


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).flatten(1).sum(1).view(-1, 1, 1, 1)


def _correct(hold: Objective, x: torch.Tensor, level: float, tolerance: float, max_iter: int,
             cached: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Newton steps along the held metric's gradient back onto its level; returns the image
    with the held value and gradient at it (reused by the next step)."""
    value, grad = cached if cached is not None else hold.value_and_grad(x)
    for _ in range(max_iter):
        off = value - level
        if bool((off.abs() <= tolerance).all()):
            break
        scale = off.view(-1, 1, 1, 1) / _dot(grad, grad).clamp_min(1e-30)
        x = (x - scale * grad).clamp_(0.0, 1.0)
        value, grad = hold.value_and_grad(x)
    return x, value, grad


def _land(hold: Objective, x: torch.Tensor, level: float, tolerance: float) -> torch.Tensor:
    """The 8-bit image nearest ``x`` on the level: ``round8(ref + s (x - ref))`` with ``s`` found
    by bisection, held metric measured exactly as the registry measures it."""
    ref = hold.ref
    error = x - ref
    sign = -1.0 if hold.info.higher_is_better else 1.0

    def image(s: float) -> torch.Tensor:
        return (ref + s * error).clamp(0, 1).mul(255).round().div(255)

    def off(s: float) -> float:
        with torch.no_grad():
            return sign * (float(hold.value(image(s), exact=True)[0]) - level)

    best_s, best_off = 1.0, off(1.0)
    if abs(best_off) <= tolerance:
        return image(best_s)
    lo, hi = (1.0, None) if best_off < 0 else (None, 1.0)
    s = 1.0
    for _ in range(12):  # bracket: more error raises badness
        s = s * 1.25 if best_off < 0 else s / 1.25
        value = off(s)
        if abs(value) < abs(best_off):
            best_s, best_off = s, value
        if value < 0:
            lo = s if lo is None or s > lo else lo
        else:
            hi = s if hi is None or s < hi else hi
        if lo is not None and hi is not None:
            break
    if lo is None or hi is None:
        return image(best_s)
    for _ in range(30):
        if abs(best_off) <= tolerance:
            break
        mid = 0.5 * (lo + hi)
        value = off(mid)
        if abs(value) < abs(best_off):
            best_s, best_off = mid, value
        if value < 0:
            lo = mid
        else:
            hi = mid
    return image(best_s)


def mad(ref: torch.Tensor, hold: str = "psnr", level: float = 24.0, attack: str = "lpips_alex", *,
        steps: int = 200, seed: int = 0, step_size: float = 0.1, corrections: int = 3,
        device: str | torch.device | None = None, progress: ProgressFn | None = None,
        should_stop: StopCheck | None = None, score: bool = True) -> MadResult:
    """Run a MAD competition: hold ``hold`` at ``level``, find the best and worst images for ``attack``.

    ``ref`` is one [0, 1] image (1×3×H×W, at most 512² pixels; it is rounded to 8 bits). Metric
    names: ``psnr`` (``mse``), ``ssim``, ``lpips_alex``, ``lpips_vgg``. ``level`` is in the held
    metric's unit (PSNR in dB). ``progress`` is called after every step with a
    :class:`StepReport`; ``should_stop()`` is checked before every step, and a stopped run still
    lands its images on the level and returns them (``stopped=True``). A level outside what
    the start path reaches raises :class:`UnreachableLevelError` naming the reachable range.
    """
    started = time.perf_counter()
    hold_key, attack_key = metric_key(hold), metric_key(attack)
    if hold_key == attack_key:
        raise InvalidArgumentError(f"The held and the attacked metric are both {METRICS[hold_key].label}; "
                                   "choose two different metrics.")
    check_steps(steps)
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not math.isfinite(level):
        raise InvalidArgumentError(f"`level` must be a finite number in the held metric's unit, got {level!r}.")
    if not (isinstance(step_size, (int, float)) and 0 < step_size <= 1):
        raise InvalidArgumentError(f"`step_size` must be in (0, 1] (a fraction of the start's RMS error), got {step_size!r}.")
    batch = check_unit_batch(ref, "ref")
    if batch.shape[0] != 1:
        raise InvalidArgumentError(f"MAD takes one reference image (1×3×H×W), got a batch of {batch.shape[0]}.")
    if batch.shape[-1] * batch.shape[-2] > MAX_SIZE * MAX_SIZE:
        raise InvalidArgumentError(f"MAD runs on at most {MAX_SIZE}×{MAX_SIZE} pixels, got "
                                   f"{batch.shape[-1]}×{batch.shape[-2]}; use a smaller --size.")
    ref8 = batch.float().clamp(0, 1).mul(255).round().div(255)
    holder = Objective(hold_key, ref8, device)
    attacker = Objective(attack_key, ref8, holder.device)
    level = float(level)
    noise = _noise(holder.ref, seed)
    reach = reachable_range(holder, noise)
    start = _start_on_level(holder, noise, level, reach)
    tolerance = HOLD_TOLERANCE[hold_key]
    x = start.repeat(2, 1, 1, 1)  # 0: best, 1: worst
    rms0 = float((start - holder.ref).square().mean().sqrt())
    # Best moves against the attacked metric's badness, worst along it.
    direction = torch.tensor([-1.0, 1.0], device=x.device).view(2, 1, 1, 1)
    flip = -1.0 if attacker.info.higher_is_better else 1.0
    x, held, held_grad = _correct(holder, x, level, tolerance / 2, corrections)
    history: list[MadStep] = []
    stopped = False
    done = 0
    for k in range(steps):
        if should_stop is not None and should_stop():
            stopped = True
            break
        attacked, attack_grad = attacker.value_and_grad(x)
        history.append(MadStep(k, float(held[0]), float(attacked[0]), float(held[1]), float(attacked[1])))
        move = direction * flip * attack_grad
        # Pixels pinned at 0 or 1 that the move would push further out do not move.
        free = ~(((x <= 0) & (move < 0)) | ((x >= 1) & (move > 0)))
        move, normal = move * free, held_grad * free
        move = move - _dot(move, normal) / _dot(normal, normal).clamp_min(1e-30) * normal
        rms = move.square().flatten(1).mean(1).sqrt().view(-1, 1, 1, 1).clamp_min(1e-30)
        size = step_size * rms0 * (0.1 + 0.45 * (1 + math.cos(math.pi * k / steps)))
        x = (x + size * move / rms).clamp_(0.0, 1.0)
        x, held, held_grad = _correct(holder, x, level, tolerance / 2, corrections)
        done = k + 1
        if progress is not None:
            current = x
            progress(StepReport(done, steps, {
                f"best_{hold_key}": float(held[0]), f"best_{attack_key}": float(attacked[0]),
                f"worst_{hold_key}": float(held[1]), f"worst_{attack_key}": float(attacked[1])},
                lambda current=current: current.detach().cpu().clone()))
    with torch.no_grad():
        final_attack = attacker.value(x)
    history.append(MadStep(done, float(held[0]), float(final_attack[0]), float(held[1]), float(final_attack[1])))
    best = _land(holder, x[:1], level, tolerance / 10)
    worst = _land(holder, x[1:], level, tolerance / 10)
    start8 = start.clamp(0, 1).mul(255).round().div(255)
    if score:
        best_scores, worst_scores, start_scores = score_images(holder.ref, torch.cat([best, worst, start8]),
                                                               holder.device)
    else:
        best_scores = worst_scores = start_scores = {}
    return MadResult(
        hold=hold_key, attack=attack_key, level=level, ref=holder.ref.cpu(), start=start8.cpu(), best=best.cpu(),
        worst=worst.cpu(), best_scores=best_scores, worst_scores=worst_scores, start_scores=start_scores,
        history=tuple(history), steps=steps, steps_done=done, stopped=stopped,
        seconds=time.perf_counter() - started, reachable=reach, device=str(holder.device), seed=int(seed),
        settings={"step_size": step_size, "corrections": corrections})
