"""Fitting LPIPS's heads to a class's answers (teach.class_fit): the triplets are what the BAPPS export
writes, the split keeps every photo on one side, the scores are the official formula on distances the
engine computes directly, and the heads file loads back."""

from __future__ import annotations

import io
import json
import zipfile
from functools import lru_cache

import numpy as np
import pytest
import torch

from core.judgments import bapps
from core.judgments.features import uniform_heads
from core.judgments.heads import engine_with_heads, load_heads
from core.judgments.scores import human_ceiling_2afc, score_2afc
from core.lpips import weights
from core.lpips.engine import Engine
from store import QuizStore
from store.errors import QuizInputError
from store.export import export_bapps
from teach import class_fit
from teach.preparation import prepare_round
from teach.quiz import summarize

SEED, ROUNDS, SIDE = 7, 8, 96


@lru_cache(maxsize=None)
def engine() -> Engine:
    return Engine("alex", "0.1", True, "cpu")


@pytest.fixture(scope="module")
def voted(tmp_path_factory):
    """A session of 8 small rounds; round r gets 1 + r % 3 votes, the share of B varying by round."""
    db = tmp_path_factory.mktemp("fit") / "quiz.sqlite3"
    store = QuizStore(db)
    code, _ = store.create_session("Fit", n_rounds=ROUNDS, seed=SEED)
    for index in range(ROUNDS):
        store.save_round(code, prepare_round(SEED, index, engines={}, max_side=SIDE, others=("psnr",)))
    tokens = [store.join(code) for _ in range(3)]
    for index in range(ROUNDS):
        for k, token in enumerate(tokens[:1 + index % 3]):
            store.cast_vote(code, token, index, "B" if (index + k) % 2 else "A")
    yield store, code
    store.close()


def test_triplets_are_the_bapps_exports(voted, tmp_path):
    store, code = voted
    data = class_fit.class_triplets(store, code)
    exported = export_bapps(store, code, tmp_path)
    assert list(data.rounds) == sorted(exported.rounds) == list(range(ROUNDS))
    # The export writes one set per image size; its triplets, in order, are exported.rounds.
    written = []
    for folder in exported.folders:
        read = bapps.read_2afc(folder)
        ref, p0, p1 = read.images(0, len(read))
        written += [(read.judge[i], ref[i], p0[i], p1[i]) for i in range(len(read))]
    for index, (judge, ref, p0, p1) in zip(exported.rounds, written):
        i = data.rounds.index(index)
        assert data.judge[i] == pytest.approx(judge, abs=1e-12)
        # the pixels the export writes are the ones fitted on
        assert torch.equal(data.ref[i][0], ref) and torch.equal(data.p0[i][0], p0) and torch.equal(data.p1[i][0], p1)
    # the votes, counted independently: share of B among each round's votes
    votes = store.votes(code)
    for i, index in enumerate(data.rounds):
        mine = [v.choice for v in votes if v.round_index == index]
        assert data.judge[i] == mine.count("B") / len(mine) and data.votes[i] == len(mine)


def test_readiness_counts_rounds_and_photos(voted):
    store, code = voted
    ready = class_fit.readiness(summarize(store, code))
    samples = {store.stored_round(code, i).sample for i in range(ROUNDS)}
    assert (ready.rounds, ready.images, ready.votes) == (ROUNDS, len(samples), sum(1 + i % 3 for i in range(ROUNDS)))
    assert ready.ok == (len(samples) >= 2) and ready.message == ""
    short = class_fit.Readiness(rounds=2, images=2, votes=2)
    assert not short.ok and "at least 4 rounds with votes" in short.message and "2 voted rounds of 2 photos" in short.message
    assert not class_fit.Readiness(rounds=9, images=1, votes=9).ok


def test_fit_scores_split_and_file(voted, tmp_path):
    store, code = voted
    data = class_fit.class_triplets(store, code)
    seen = []
    fit = class_fit.fit_class(data, engine(), init="v0.1", nepoch=20, nepoch_decay=20,
                              progress=lambda f, text: seen.append(f))
    assert seen and seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    # No photo on both sides; every voted round on one side.
    held_photos = {data.samples[data.rounds.index(i)] for i in fit.heldout_rounds}
    train_photos = {data.samples[data.rounds.index(i)] for i in fit.train_rounds}
    assert not held_photos & train_photos and set(fit.heldout_photos) == held_photos
    assert sorted(fit.heldout_rounds + fit.train_rounds) == list(data.rounds)
    # Held-out scores: the official formula on distances from full forward passes.
    held = [data.rounds.index(i) for i in fit.heldout_rounds]
    judge = data.judge[held]
    for label, heads in (("v0.1 heads", weights.load_linear_heads("alex", "0.1")),
                         ("baseline (uniform) heads", uniform_heads("alex")), ("fitted heads", fit.heads)):
        e = engine_with_heads(heads, "alex", device="cpu")
        d0 = [float(e.distance(data.ref[i], data.p0[i])) for i in held]
        d1 = [float(e.distance(data.ref[i], data.p1[i])) for i in held]
        assert fit.heldout[label] == pytest.approx(score_2afc(d0, d1, judge), abs=1e-6), label  # judge in float32 there
    assert fit.human_heldout == pytest.approx(float(np.mean(judge ** 2 + (1 - judge) ** 2)), abs=1e-12)
    assert fit.human_heldout == pytest.approx(human_ceiling_2afc(judge))
    # The files: the zip holds the heads and their manifest; loaded back, the heads are the fit's.
    bundle = zipfile.ZipFile(io.BytesIO(fit.bundle))
    assert sorted(bundle.namelist()) == [fit.file_name, fit.file_name + ".json"]
    bundle.extractall(tmp_path)
    loaded = load_heads(tmp_path / fit.file_name, "alex")
    assert all(torch.equal(loaded[k], fit.heads[k]) for k in fit.heads)
    manifest = json.loads((tmp_path / (fit.file_name + ".json")).read_text())
    assert manifest["session"] == code and manifest["from"] == "v0.1" and manifest["net"] == "alex"
    assert manifest["heldout_2afc"] == fit.heldout["fitted heads"]
    assert manifest["heldout_triplets"] == len(held) and manifest["epochs"] == 20
    # Layer moves: from v0.1 to the file's weights, computed here layer by layer.
    published = weights.load_linear_heads("alex", "0.1")
    for k, move in enumerate(fit.moves):
        w0 = published[f"lin{k}.model.1.weight"].double().reshape(-1)
        w1 = loaded[f"lin{k}.model.1.weight"].double().reshape(-1)
        assert move.mean_abs_change == pytest.approx(float((w1 - w0).abs().mean()), rel=1e-9, abs=1e-15)
        assert move.relative_change == pytest.approx(float((w1 - w0).abs().sum() / w0.abs().sum()), rel=1e-9, abs=1e-15)
    assert any(m.mean_abs_change > 0 for m in fit.moves)  # 40 epochs move the weights


def test_from_scratch_and_a_stop(voted):
    store, code = voted
    data = class_fit.class_triplets(store, code)
    fit = class_fit.fit_class(data, engine(), init="scratch", nepoch=2, nepoch_decay=2, seed=3)
    assert fit.init == "scratch" and all((w >= 0).all() for w in fit.heads.values())
    assert len(fit.history) == 4
    with pytest.raises(class_fit.FitStopped):
        class_fit.fit_class(data, engine(), nepoch=1, nepoch_decay=0, should_stop=lambda: True)
    with pytest.raises(QuizInputError, match="'v0.1' or 'scratch'"):
        class_fit.fit_class(data, engine(), init="uniform")


def test_too_few_answers_say_how_many(tmp_path):
    with QuizStore(tmp_path / "q.sqlite3") as store:
        code, _ = store.create_session("Small", n_rounds=3, seed=SEED)
        for index in range(3):
            store.save_round(code, prepare_round(SEED, index, engines={}, max_side=SIDE, others=("psnr",)))
        token = store.join(code)
        store.cast_vote(code, token, 0, "A")
        data = class_fit.class_triplets(store, code)
        assert len(data) == 1
        with pytest.raises(QuizInputError, match=r"at least 4 rounds with votes.*1 voted round of 1 photo"):
            class_fit.fit_class(data, engine())
