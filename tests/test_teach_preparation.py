"""teach.preparation: rounds prepared ahead (images as PNG, metric values) and the background preparer."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from core.errors import LpipsExplorerError
from core.metrics.psnr import psnr
from teach.preparation import PNG_SIGNATURE, PreparedRound, RoundPreparer, encode_png, prepare_round
from teach.quiz import QuizInputError, make_round, render_round

OTHERS = ("psnr", "ssim")  # no network: these tests stay fast


def decode(png: bytes) -> torch.Tensor:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None].float() / 255


def test_prepared_images_are_exactly_the_measured_pixels():
    prepared = prepare_round(13, 4, engines={}, max_side=80, others=OTHERS)
    assert prepared.spec == make_round(13, 4) and prepared.index == 4
    rendered = render_round(make_round(13, 4), max_side=80)
    for png, image in zip((prepared.ref_png, prepared.a_png, prepared.b_png), rendered):
        assert png.startswith(PNG_SIGNATURE)
        assert torch.equal(decode(png), image)  # lossless: what students see is what was measured
    # The stored values are those of the decoded images, computed here independently.
    ref, a, b = (decode(p) for p in (prepared.ref_png, prepared.a_png, prepared.b_png))
    assert list(prepared.metrics) == ["psnr", "ssim"]
    assert prepared.metrics["psnr"]["a"] == pytest.approx(psnr(ref, a).item(), rel=1e-6)
    assert prepared.metrics["psnr"]["b"] == pytest.approx(psnr(ref, b).item(), rel=1e-6)


def test_encode_png_checks_its_input():
    assert encode_png(np.zeros((4, 5, 3), np.uint8)).startswith(PNG_SIGNATURE)
    with pytest.raises(QuizInputError, match="H×W×3 uint8"):
        encode_png(np.zeros((4, 5), np.uint8))


class MemorySink:
    """A sink like the quiz store: keeps the first copy of each round."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.rounds: dict[int, PreparedRound] = {}
        self.fail_at = fail_at
        self.saves = 0
        self.lock = threading.Lock()

    def prepared_rounds(self, code: str) -> list[int]:
        with self.lock:
            return sorted(self.rounds)

    def save_round(self, code: str, prepared: PreparedRound) -> bool:
        if prepared.index == self.fail_at:
            raise LpipsExplorerError("the disk is full (simulated)")
        with self.lock:
            self.saves += 1
            return self.rounds.setdefault(prepared.index, prepared) is prepared


def test_preparer_prepares_every_round_and_resumes_where_it_stopped():
    sink = MemorySink(fail_at=2)
    preparer = RoundPreparer(sink)
    try:
        preparer.submit("ABCDEF", seed=5, n_rounds=4, engines={}, max_side=48, others=OTHERS)
        status = preparer.wait("ABCDEF", timeout=120)
        # A failure stops the preparation with the message; the rounds before it are kept.
        assert (status.ready, status.running, status.error) == (2, False, "the disk is full (simulated)")
        assert sorted(sink.rounds) == [0, 1] and not status.done
        sink.fail_at = None
        preparer.submit("ABCDEF", seed=5, n_rounds=4, engines={}, max_side=48, others=OTHERS)
        status = preparer.wait("ABCDEF", timeout=120)
        assert (status.ready, status.running, status.error, status.done) == (4, False, None, True)
        assert sink.saves == 4  # rounds 0 and 1 were not prepared twice
        assert [sink.rounds[i].spec for i in range(4)] == [make_round(5, i) for i in range(4)]
        assert status.seconds_per_round is not None and status.seconds_per_round > 0
        assert preparer.status("OTHER1") is None
    finally:
        preparer.close()


def test_preparer_submits_a_running_session_once():
    sink = MemorySink()
    preparer = RoundPreparer(sink, nice=0)
    try:
        for _ in range(5):  # every student's page may ask
            preparer.submit("ABCDEF", seed=6, n_rounds=3, engines={}, max_side=48, others=OTHERS)
        assert preparer.wait("ABCDEF", timeout=120).ready == 3
        assert sink.saves == 3
        with pytest.raises(QuizInputError):
            preparer.submit("ABCDEF", seed=-1, n_rounds=3, engines={})
    finally:
        preparer.close()
