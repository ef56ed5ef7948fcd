"""Property-based tests of the command line, in-process (``cli.entry.main(argv)``): any argument
list ends in a result, a clear message with exit status 1 or 2, or argparse's usage error (2);
never a traceback, never exit 0 with nothing done.

The file system is generated too: real images, missing paths, folders where files belong and
files where folders belong, empty folders, a folder with one image, output paths in missing or
unwritable places.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import hypothesis_profiles  # noqa: F401  (loads the profile)
import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from PIL import Image

import cli

@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, str]:
    """Named places: images, folders, and things that are not what their name promises."""
    root = tmp_path_factory.mktemp("cli-world")
    rng = np.random.default_rng(0)
    photo = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
    for folder, count in (("pairs0", 2), ("pairs1", 2), ("one", 1), ("many", 3)):
        (root / folder).mkdir()
        for i in range(count):
            Image.fromarray(np.roll(photo, i, axis=1)).save(root / folder / f"{i}.png")
    (root / "empty").mkdir()
    (root / "other").mkdir()
    Image.fromarray(photo).save(root / "other" / "zzz.png")  # no name in common with pairs0
    Image.fromarray(photo).save(root / "a.png")
    Image.fromarray(np.roll(photo, 3, axis=0)).save(root / "b.png")
    Image.fromarray(photo[:20, :20]).save(root / "tiny.png")
    (root / "notes.txt").write_text("not an image")
    (root / "fake.png").write_bytes(b"\x89PNG not really")
    places = {name: str(root / name) for name in
              ("pairs0", "pairs1", "one", "many", "empty", "other", "a.png", "b.png", "tiny.png", "notes.txt",
               "fake.png")}
    places.update(missing=str(root / "nope.png"), missing_dir=str(root / "nodir"),
                  out=str(root / "out.csv"), out_missing_dir=str(root / "nodir" / "out.csv"),
                  out_is_dir=str(root / "empty"), out_unwritable="/proc/lpips-explorer-out.csv", stdout="-")
    return places


OPTION_VALUES = {
    "--net": ["alex", "alex", "vgg", "squeeze", "resnet", ""],
    "--version": ["0.1", "0.0", "1"],
    "--device": ["cpu", "auto", "cpu:0", "cuda", "cuda:7", "gpu", "mps", "", "meta"],
    "--batch-size": ["1", "2", "8", "256", "0", "-1", "257", "2.5", "x"],
    "--ssim-mode": ["reference", "rgb", "luma"],
    "--metrics": ["psnr,ssim", "lpips", "ms_ssim", "psnr", "lpips,", "x", ",", "ssim,psnr,psnr"],
}
FLAGS = ["--baseline", "--json", "--resize-to-ref", "--allow-empty", "--parents"]


def argv_strategy(world: dict[str, str]):
    files = st.sampled_from(["a.png", "b.png", "a.png", "tiny.png", "missing", "fake.png", "notes.txt", "pairs0"])
    folders = st.sampled_from(["pairs0", "pairs1", "many", "one", "empty", "other", "missing_dir", "a.png"])
    outs = st.sampled_from(["out", "stdout", "out_missing_dir", "out_is_dir", "out_unwritable", "stdout"])

    @st.composite
    def argv(draw):
        command = draw(st.sampled_from(["compare", "compare", "dirs", "allpairs", "metrics", "weights", "bogus"]))
        if command == "compare":
            positional = [world[draw(files)], world[draw(files)]]
        elif command == "dirs":
            positional = [world[draw(folders)], world[draw(folders)]]
        elif command == "allpairs":
            positional = [world[draw(folders)]]
        elif command == "weights":
            action = draw(st.sampled_from(["list", "verify", "fetch", "import", "x"]))
            positional = [action]
            if action == "fetch":  # always from a local archive: never the network
                positional += ["--no-torchvision", "--archive", world[draw(files)]]
            elif action == "import":
                positional += ["--net", draw(st.sampled_from(["squeeze", "alex"])), world[draw(files)]]
        else:
            positional = []
        if draw(st.integers(0, 9)) == 0:  # now and then a positional too many or too few
            positional = positional[1:] if positional and draw(st.booleans()) else positional + [world["a.png"]]
        options = []
        for name in draw(st.lists(st.sampled_from(sorted(OPTION_VALUES) + FLAGS), max_size=4, unique=True)):
            options += [name] if name in FLAGS else [name, draw(st.sampled_from(OPTION_VALUES[name]))]
        if command in ("dirs", "allpairs") and draw(st.integers(0, 5)):
            options += ["-o", world[draw(outs)]]
        return [command, *positional, *options]

    return argv()


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse's usage errors (and --help)
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def test_any_argument_list(world, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative output name lands here, not in the checkout
    # `weights fetch/import` may write: to a throwaway cache, filled with the real files first
    import shutil

    from core.lpips import weights

    cache = tmp_path / "cache"
    shutil.copytree(weights.cache_dir(), cache)
    monkeypatch.setenv(weights.CACHE_ENV, str(cache))
    seen: dict[str, int] = {}

    @given(argv=argv_strategy(world))
    def check(argv):
        code, out, err = run(argv)  # any other exception fails the test, with the argv that caused it
        event(f"{argv[0]} exit {code}")
        seen[f"{argv[0]} exit {code}"] = seen.get(f"{argv[0]} exit {code}", 0) + 1
        assert code in (0, 1, 2), (argv, code, err)
        if code:
            assert err.strip(), f"exit {code} without a message: {argv}"
            assert "Traceback" not in err, err
        if code == 0 and argv[0] in ("dirs", "allpairs") and "--allow-empty" not in argv:  # unless asked for
            assert "0 pairs scored" not in err, f"exit 0 with nothing done: {argv}\n{err}"
        if code == 0 and argv[0] == "compare":
            assert out.strip(), f"exit 0 with nothing printed: {argv}"

    check()
    print("outcomes:", dict(sorted(seen.items())))
