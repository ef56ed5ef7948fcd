"""A quiz session exported in the BAPPS layout reads back as the same triplets and judgments
(core.judgments.bapps, the reader that `lpips-explorer bapps` uses, and the official layout)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.judgments import bapps
from store import QuizInputError, QuizStore
from store.__main__ import main as store_main
from store.export import export_bapps
from teach.preparation import prepare_round


@pytest.fixture
def voted(tmp_path):
    """A session of 4 rounds: rounds 0 and 2 voted by 3 and 2 students, round 1 by nobody, round 3 never prepared."""
    store = QuizStore(tmp_path / "quiz.sqlite3")
    code, _ = store.create_session("Class", n_rounds=4, seed=5)
    rounds = {i: prepare_round(5, i, engines={}, max_side=48, others=("psnr",)) for i in range(3)}
    for r in rounds.values():
        store.save_round(code, r)
    students = [store.join(code) for _ in range(3)]
    for token, pick in zip(students, "BBA"):
        store.cast_vote(code, token, 0, pick)
    for token, pick in zip(students[:2], "AB"):
        store.cast_vote(code, token, 2, pick)
    yield store, code, rounds
    store.close()


def _png_pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_round_trip_gives_the_same_triplets_and_judgments(voted, tmp_path):
    store, code, rounds = voted
    done = export_bapps(store, code, tmp_path / "out")
    assert sorted(done.rounds) == [0, 2] and done.without_votes == (1, 3) and done.not_prepared == ()
    shares = {0: 2 / 3, 2: 1 / 2}  # the share of the class that picked B
    sets = bapps.list_sets(tmp_path / "out", "2afc", "val")
    assert set(sets) == {f"val/{f.name}" for f in done.folders}
    seen = []
    for folder in done.folders:
        data = bapps.read_2afc(folder)
        ref, p0, p1 = data.images()
        for i in range(len(data)):
            index = done.rounds[len(seen)]
            seen.append(index)
            assert data.judge[i] == shares[index]
            stored = rounds[index]
            for got, png in ((ref, stored.ref_png), (p0, stored.a_png), (p1, stored.b_png)):
                pixels = (got[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                assert np.array_equal(pixels, _png_pixels(png))
        assert all(np.load(f).shape == (1,) for f in (folder / "judge").glob("*.npy"))
    assert sorted(seen) == [0, 2]


def test_the_command_exports_and_refuses_what_it_cannot(voted, tmp_path, capsys):
    store, code, _ = voted
    db = str(store.path)
    assert store_main(["export", code, str(tmp_path / "b"), "--split", "train", "--db", db]) == 0
    assert "2 judged rounds" in capsys.readouterr().out
    assert any((tmp_path / "b" / "2afc" / "train").glob(f"{code}*/judge"))
    assert store_main(["export", code, str(tmp_path / "b"), "--split", "train", "--db", db]) == 2  # never overwrites
    assert "already holds files" in capsys.readouterr().err
    assert store_main(["export", "NOPE22", str(tmp_path / "c"), "--db", db]) == 2
    assert store_main(["export", code, str(tmp_path / "c"), "--split", "../x", "--db", db]) == 2
    empty, _ = store.create_session("Empty", n_rounds=2, seed=1)
    with pytest.raises(QuizInputError, match="no voted rounds"):
        export_bapps(store, empty, tmp_path / "d")


def test_a_jnd_session_exports_as_a_bapps_jnd_set_and_reads_back(tmp_path, capsys):
    """export → core.judgments.bapps.read_jnd: the same pairs (pixels as stored), the same shares of
    "same"; identical pairs (the quiz's checks) are left out, as the paper's sentinels."""
    from teach.quiz import make_jnd_round

    store = QuizStore(tmp_path / "quiz.sqlite3")
    code, _ = store.create_session("JND", n_rounds=8, seed=5, kind="jnd")
    rounds = {i: prepare_round(5, i, engines={}, max_side=48, others=("psnr",), kind="jnd") for i in range(8)}
    for r in rounds.values():
        store.save_round(code, r)
    students = [store.join(code) for _ in range(4)]
    said = {}
    for i in range(7):  # round 7: nobody answered
        answers = ["same" if (i + k) % 3 == 0 else "different" for k in range(1 + i % 4)]
        said[i] = answers.count("same") / len(answers)
        for token, answer in zip(students, answers):
            store.cast_vote(code, token, i, answer)
    identical = {i for i in range(8) if make_jnd_round(5, i).identical}
    assert identical - {7} and identical != set(range(8))  # voted rounds of both kinds
    done = export_bapps(store, code, tmp_path / "out")
    assert set(done.identical) == identical - {7} and done.without_votes == (7,)
    assert sorted(done.rounds) == sorted(set(range(7)) - identical)
    assert set(bapps.list_sets(tmp_path / "out", "jnd", "val")) == {f"val/{f.name}" for f in done.folders}
    seen = []
    for folder in done.folders:
        data = bapps.read_jnd(folder)
        p0, p1 = data.images()
        for i in range(len(data)):
            index = done.rounds[len(seen)]
            seen.append(index)
            assert data.same[i] == said[index]
            for got, png in ((p0, rounds[index].a_png), (p1, rounds[index].b_png)):
                pixels = (got[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                assert np.array_equal(pixels, _png_pixels(png))
        assert all(np.load(f).shape == (1,) for f in (folder / "same").glob("*.npy"))
    assert sorted(seen) == sorted(done.rounds)
    assert store_main(["export", code, str(tmp_path / "cli"), "--db", str(store.path)]) == 0
    out = capsys.readouterr().out
    assert f"{len(done.rounds)} judged rounds" in out and "identical pairs (checks)" in out
    assert (tmp_path / "cli" / "jnd" / "val").is_dir() and not (tmp_path / "cli" / "2afc").exists()
