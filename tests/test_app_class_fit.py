"""The quiz dashboard's "Fit LPIPS to this class" and Explore's heads "from a file…", driven headless
through ``streamlit.testing.v1.AppTest``.

The held-out scores the dashboard shows are checked against the official 2AFC formula on
distances the engine computes here, round by round; the heads the dashboard hands to Explore give
the same distance in Explore, on the command line (``compare --heads``) and through the drop-in
(``core.LPIPS(model_path=...)``), to 1e-6. Uploaded files that are damaged, for another network
or hold negative weights are refused with a message naming the fault, and the heads loaded before
stay in use.
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cli
from core import LPIPS, distortions
from core.images.imageio import downscale_to_fit
from core.images.samples import load_sample
from core.images.tensors import from_numpy, quantize_8bit, to_uint8
from core.judgments.features import heads_from_vector, uniform_heads
from core.judgments.heads import engine_with_heads, save_heads
from core.judgments.scores import score_2afc
from core.lpips import weights
from core.lpips.heads import pack_heads
from store import QuizStore
from teach.preparation import prepare_round

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

APP = Path(__file__).resolve().parents[1] / "views" / "app.py"
TIMEOUT = 180
SMALL = 256
SEED, ROUNDS, SIDE = 7, 8, 96


def assert_clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def clear_caches() -> None:
    import streamlit as st

    st.cache_resource.clear()  # the quiz store, the fit registry (engines rebuild from cached weights)


@pytest.fixture()
def class_db(tmp_path, monkeypatch):
    """A session of 8 small rounds with 3 students' votes; its code and key."""
    path = tmp_path / "quiz.sqlite3"
    monkeypatch.setenv("LPIPS_EXPLORER_QUIZ_DB", str(path))
    monkeypatch.setenv("LPIPS_EXPLORER_HEADS_DIR", str(tmp_path / "heads"))
    clear_caches()
    with QuizStore(path) as store:
        code, key = store.create_session("Fit class", n_rounds=ROUNDS, seed=SEED)
        for index in range(ROUNDS):
            store.save_round(code, prepare_round(SEED, index, engines={}, max_side=SIDE, others=("psnr",)))
        tokens = [store.join(code) for _ in range(3)]
        for index in range(ROUNDS):
            for k, token in enumerate(tokens):
                store.cast_vote(code, token, index, "B" if (index * 7 + k * 3) % 5 < 2 else "A")
    yield path, code, key
    clear_caches()


def dashboard(code: str, key: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["settings.max_side"] = SMALL
    at.session_state["quiz.dash.code"] = code
    at.session_state["quiz.dash.key"] = key
    at.run()
    at.switch_page("quiz.py").run()
    at.segmented_control(key="quiz.role").set_value("The teacher").run()
    assert_clean(at)
    return at


def wait_for_fit(at, seconds: float = 240.0) -> None:
    """Rerun the page until the fit's results are on it (the fit runs in a thread)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(c.value.startswith("Held out: rounds") for c in at.caption):
            return
        time.sleep(0.5)
        at.run()
        assert_clean(at)
    raise AssertionError("the fit did not finish: " + str([p.proto.text for p in at.get("progress")]))


def test_fit_shows_official_scores_and_hands_its_heads_to_explore(class_db, tmp_path):
    path, code, key = class_db
    at = dashboard(code, key)
    assert any(s.value == "Fit LPIPS to this class" for s in at.subheader)
    at.radio(key="classfit.length").set_value("as the paper (5 + 5 epochs)")
    at.button(key="classfit.start").click().run()
    assert_clean(at)
    wait_for_fit(at)

    # The held-out rounds the page names, scored here with full forward passes.
    note = next(c.value for c in at.caption if c.value.startswith("Held out: rounds"))
    held = [int(i) - 1 for i in re.match(r"Held out: rounds ([\d, ]+) \(", note).group(1).split(", ")]
    with QuizStore(path) as store:
        votes = store.votes(code)
        rounds = {i: store.stored_round(code, i) for i in range(ROUNDS)}
    assert len({rounds[i].sample for i in held} & {rounds[i].sample for i in range(ROUNDS) if i not in held}) == 0

    def image(png):
        return from_numpy(np.array(Image.open(io.BytesIO(png)).convert("RGB")))

    judge = [sum(v.choice == "B" for v in votes if v.round_index == i) / 3 for i in held]
    scores = next(d.value for d in at.dataframe if "held-out 2AFC" in d.value.columns)
    table = {row["heads"]: row["held-out 2AFC"] for row in scores.to_dict("records")}
    for label, heads in (("v0.1 heads", weights.load_linear_heads("alex", "0.1")),
                         ("baseline (uniform) heads", uniform_heads("alex"))):
        e = engine_with_heads(heads, "alex", device="cpu")
        d0 = [float(e.distance(image(rounds[i].ref_png), image(rounds[i].a_png))) for i in held]
        d1 = [float(e.distance(image(rounds[i].ref_png), image(rounds[i].b_png))) for i in held]
        assert table[label] == f"{100 * score_2afc(d0, d1, judge):.1f}%", label
    ceiling = np.mean([p * p + (1 - p) ** 2 for p in judge])
    assert table["people (ceiling)"] == f"{100 * ceiling:.1f}%"
    assert at.get("plotly_chart") and any(b.key == "classfit.explore" for b in at.button)

    # "Use this class's heads in Explore": Explore opens with them.
    at.button(key="classfit.explore").click().run()
    assert_clean(at)
    assert at.session_state["settings.version"] == "file" and at.session_state["settings.net"] == "alex"
    heads = at.session_state["settings.heads"]
    assert heads["name"] == f"class-{code}-alex.safetensors"
    assert any("Heads in use" in c.value for c in at.sidebar.caption)
    row = at.session_state["explore.last"]["row"]
    assert row.get("heads") == heads["name"]  # the LPIPS row names the heads it used
    assert any(heads["name"] in m.label for m in at.metric)

    # The same pair through the command line and the drop-in, with the file the dashboard offers.
    ref, _ = downscale_to_fit(load_sample("astronaut"), SMALL)
    ref = from_numpy(to_uint8(ref))
    dist = quantize_8bit(distortions.apply([distortions.Step("gaussian_blur", {"sigma": 1.5})], ref, seed=0))
    file = Path(heads["path"])  # the dashboard's zip, unpacked: the heads file and its manifest
    assert file.with_name(file.name + ".json").is_file()
    paths = []
    for name, t in (("ref.png", ref), ("dist.png", dist)):
        Image.fromarray(to_uint8(t)).save(tmp_path / name)
        paths.append(str(tmp_path / name))
    import contextlib

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["compare", *paths, "--metrics", "lpips", "--heads", str(file), "--device", "cpu",
                         "--json"]) == 0
    via_cli = json.loads(out.getvalue())["lpips"]
    with torch.no_grad():
        via_dropin = float(LPIPS(net="alex", model_path=str(file))(ref, dist, normalize=True))
    assert abs(row["lpips"] - via_cli) <= 1e-6 and abs(row["lpips"] - via_dropin) <= 1e-6
    # and the fitted heads are not v0.1's (the number is the file's)
    v01 = float(LPIPS(net="alex")(ref, dist, normalize=True))
    assert row["lpips"] != v01


def test_too_few_answers_say_how_many(tmp_path, monkeypatch):
    path = tmp_path / "quiz.sqlite3"
    monkeypatch.setenv("LPIPS_EXPLORER_QUIZ_DB", str(path))
    clear_caches()
    try:
        with QuizStore(path) as store:
            code, key = store.create_session("Small", n_rounds=2, seed=SEED)
            for index in range(2):
                store.save_round(code, prepare_round(SEED, index, engines={}, max_side=SIDE, others=("psnr",)))
            store.cast_vote(code, store.join(code), 0, "A")
        at = dashboard(code, key)
        assert any("at least 4 rounds with votes" in i.value and "1 voted round of 1 photo" in i.value for i in at.info)
        assert not any(b.key == "classfit.start" for b in at.button)
    finally:
        clear_caches()


# ---------------------------------------------------------------------------------------------
# Explore: heads from a file.
# ---------------------------------------------------------------------------------------------

def explore(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("LPIPS_EXPLORER_HEADS_DIR", str(tmp_path / "heads"))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["settings.max_side"] = SMALL
    at.run()
    assert_clean(at)
    at.radio(key="settings.version").set_value("file").run()
    assert_clean(at)
    assert any("No heads file loaded" in i.value for i in at.sidebar.info)
    return at


def _fitted(net: str = "alex", scale: float = 0.3) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    size = {"alex": 1152, "vgg": 1472}[net]
    return heads_from_vector(torch.rand(size, generator=gen) * scale, net)


def test_explore_refuses_bad_files_and_keeps_the_loaded_heads(tmp_path, monkeypatch):
    good = save_heads(tmp_path / "good.safetensors", _fitted(), net="alex", origin="test", data="-")
    at = explore(tmp_path, monkeypatch)
    at.sidebar.file_uploader(key="settings.heads_upload").upload("good.zip", pack_heads(good), "application/zip").run()
    assert_clean(at)
    assert at.session_state["settings.heads"]["name"] == "good.safetensors"
    want = float(engine_with_heads(_fitted(), "alex", device="cpu").distance(
        *_explore_pair()))
    assert abs(at.session_state["explore.last"]["row"]["lpips"] - want) <= 1e-6

    vgg = save_heads(tmp_path / "vgg.safetensors", _fitted("vgg"), net="vgg", origin="test", data="-")
    negative = tmp_path / "negative.safetensors"
    from safetensors.torch import save_file

    bad = _fitted()
    bad["lin2.model.1.weight"][0, 5] = -0.25
    save_file(bad, str(negative))
    damaged = good.read_bytes()[:-40]
    cases = [("vgg.safetensors", vgg.read_bytes(), "holds heads for VGG16, not AlexNet"),
             ("negative.safetensors", negative.read_bytes(), "negative weights"),
             ("damaged.safetensors", damaged, "damaged or truncated"),
             ("notes.zip", b"PK not a zip", "not a readable zip")]
    for name, data, message in cases:
        at.sidebar.file_uploader(key="settings.heads_upload").upload(name, data, "application/octet-stream").run()
        assert not at.exception, [e.value for e in at.exception]
        errors = [e.value.replace("\\", "") for e in at.sidebar.error]  # as a browser shows the markdown
        assert len(errors) == 1 and message in errors[0] and "good.safetensors" in errors[0], (name, errors)
        assert str(tmp_path) not in errors[0]  # the server's folders are not shown
        assert at.session_state["settings.heads"]["name"] == "good.safetensors"  # nothing lost
        assert abs(at.session_state["explore.last"]["row"]["lpips"] - want) <= 1e-6


def _explore_pair():
    ref, _ = downscale_to_fit(load_sample("astronaut"), SMALL)
    ref = from_numpy(to_uint8(ref))
    return ref, quantize_8bit(distortions.apply([distortions.Step("gaussian_blur", {"sigma": 1.5})], ref, seed=0))


def test_a_jnd_session_says_fitting_uses_2afc():
    """A JND session (its SessionInfo has kind='jnd'): the panel explains, offers no fit."""

    def page():
        from types import SimpleNamespace

        from views.class_fit import class_fit_panel

        session = SimpleNamespace(code="ABCDEF", kind="jnd", n_rounds=4)
        class_fit_panel(None, SimpleNamespace(session=session, rounds=()))

    at = AppTest.from_function(page, default_timeout=TIMEOUT).run()
    assert_clean(at)
    assert any("Fitting uses 2AFC answers" in i.value for i in at.info)
    assert not at.button
