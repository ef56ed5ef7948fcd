"""The Synthesis page, driven headless through ``streamlit.testing.v1.AppTest``.

The optimization runs in a background thread; AppTest does not fire the page's polling timer,
so the test reruns the script until the run has finished, as the timer would. The numbers the
page shows are checked against core computed here on the images the run produced.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import core
from core.synthesis import METRICS

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

PAGE = Path(__file__).resolve().parents[1] / "views" / "synthesis.py"
TIMEOUT = 120


def start(**state) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def wait_for_job(at: AppTest, key: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while at.session_state[key].active:
        assert time.monotonic() < deadline, "the run did not finish in time"
        time.sleep(0.3)
    at.run()  # the redraw the polling fragment would trigger
    assert not at.exception, [e.value for e in at.exception]


def markdown_text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_mad_runs_in_the_background_and_shows_images_chart_scores():
    at = start(**{"mad.size": 64, "mad.steps": 10})
    assert [t.label for t in at.tabs] == ["MAD competition", "A metric as a loss"]
    assert "Limits: at most 300 steps" in "\n".join(c.value for c in at.caption)
    at.button(key="mad.run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job = at.session_state["synthesis.mad.job"]
    wait_for_job(at, "synthesis.mad.job")
    result = job.result
    assert job.view()["state"] == "done" and result.steps_done == 10, repr(job.view()["error"])
    assert not at.error
    # Reference, best and worst, and the chart of both metrics over the steps.
    captions = [image.proto.imgs[0].caption for image in at.get("image")]
    assert captions[0] == "Reference" and captions[1].startswith("Best for LPIPS (alex)")
    assert captions[2].startswith("Worst for LPIPS (alex)") and len(captions) == 3
    assert len(at.get("plotly_chart")) == 1
    # The table's numbers are the registry's values of the saved images.
    text = markdown_text(at)
    best_psnr = core.psnr(result.ref, result.best).item()
    worst_lpips = core.lpips_distance(result.ref, result.worst).item()
    assert METRICS["psnr"].format(best_psnr) in text
    assert METRICS["lpips_alex"].format(worst_lpips) in text
    assert abs(best_psnr - 24.0) <= 0.05
    assert "What to look for" in text
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["best.png", "worst.png", "history.csv"]


def test_stop_ends_a_run_early():
    at = start(**{"mad.size": 64, "mad.steps": 300})
    at.button(key="mad.run").click().run()
    job = at.session_state["synthesis.mad.job"]
    deadline = time.monotonic() + 60
    while job.view()["step"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    at.run()
    at.button(key="mad.stop").click().run()
    wait_for_job(at, "synthesis.mad.job")
    result = job.result
    assert result.stopped and 2 <= result.steps_done < 300
    assert "Stopped after" in "\n".join(c.value for c in at.caption)
    assert at.button(key="mad.run").disabled is False


def test_unreachable_level_is_shown_as_an_error_naming_the_range():
    # Gravel at 64², seed 0: pure noise reaches LPIPS (alex) of only about 0.6.
    at = start(**{"mad.size": 64, "mad.steps": 10, "mad.hold": "lpips_alex", "mad.level.lpips_alex": 0.8,
                  "mad.sample": "gravel"})
    at.button(key="mad.run").click().run()
    wait_for_job(at, "synthesis.mad.job")
    assert at.session_state["synthesis.mad.job"].view()["state"] == "failed"
    assert at.error and "cannot be reached" in at.error[0].value and "spans" in at.error[0].value
    assert not at.exception


def test_loss_mode_shows_every_result_with_every_metric():
    at = start(**{"loss.size": 64, "loss.steps": 10, "loss.losses": ["l2", "lpips_alex"]})
    at.button(key="loss.run").click().run()
    wait_for_job(at, "synthesis.loss.job")
    result = at.session_state["synthesis.loss.job"].result
    assert [r.loss.text for r in result.runs] == ["l2", "lpips_alex"]
    text = markdown_text(at)
    for run in result.runs:
        psnr = core.psnr(result.ref, run.image).item()
        assert f"PSNR **{METRICS['psnr'].format(psnr)}**" in text
    assert "What to look for" in text and "blurry average" in text
    assert len(at.get("plotly_chart")) == 1
    assert not at.error and not at.exception
