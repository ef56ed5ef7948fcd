"""``dirs``/``allpairs --cluster``: a real Dask cluster on loopback (a scheduler and two worker
processes, started with the ``dask`` commands a user runs), against the local run's output.

The reference is the same command without ``--cluster`` (whose values tests/test_cli.py and
tests/test_folders.py check against the official lpips package and scikit-image). Images are
small (64×64) so that the whole module takes seconds, not minutes, after the workers start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

distributed = pytest.importorskip("distributed")

import cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DASK = Path(sys.executable).with_name("dask")


class LocalDaskCluster:
    """``dask scheduler`` and ``dask worker`` processes on 127.0.0.1, stopped at the end."""

    def __init__(self, folder: Path, workers: int = 2) -> None:
        self.folder = folder
        # As many threads per worker as this process uses: float32 convolutions sum in an order that
        # depends on the thread count, and the outputs are compared to the digit.
        threads = str(torch.get_num_threads())
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        self.scheduler_file = folder / "scheduler.json"
        self.processes: dict[str, subprocess.Popen] = {}
        self.scheduler = self._start("scheduler", [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                                   "--no-dashboard", "--scheduler-file", str(self.scheduler_file)])
        deadline = time.monotonic() + 60
        while not self.scheduler_file.exists():
            if time.monotonic() > deadline or self.scheduler.poll() is not None:
                raise RuntimeError(f"the Dask scheduler did not start: {self.log('scheduler')}")
            time.sleep(0.1)
        self.address = json.loads(self.scheduler_file.read_text())["address"]
        for i in range(workers):
            self.add_worker(f"w{i}")
        self.wait_for_workers(workers)

    def _start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "wb")
        # Workers run in another folder than the client: paths must travel absolute.
        return subprocess.Popen(command, cwd=self.folder, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def add_worker(self, name: str) -> None:
        self.processes[name] = self._start(name, [
            str(DASK), "worker", self.address, "--name", name, "--nthreads", "1", "--no-nanny", "--no-dashboard",
            "--memory-limit", "0", "--local-directory", str(self.folder / name)])

    def client(self):
        return distributed.Client(self.address, timeout=30, set_as_default=False)

    def wait_for_workers(self, count: int, timeout: float = 120) -> None:
        with self.client() as client:
            client.wait_for_workers(count, timeout=timeout)

    def stop(self) -> None:
        for process in [*self.processes.values(), self.scheduler]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.processes.values(), self.scheduler]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask-cluster").resolve()
    cluster = LocalDaskCluster(folder)
    try:
        yield cluster
    finally:
        cluster.stop()


def _photo(seed: int, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, size * size * 3).reshape(size, size, 3)
    return np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two folders of 64×64 images (and one 80×64), with a damaged file in each."""
    root = tmp_path_factory.mktemp("cluster-images").resolve()
    d0, d1 = root / "dir0", root / "dir1"
    d0.mkdir()
    d1.mkdir()
    for i in range(14):
        Image.fromarray(_photo(i)).save(d0 / f"img{i:02d}.png")
        Image.fromarray(_photo(100 + i)).save(d1 / f"img{i:02d}.png")
    Image.fromarray(_photo(50, 80)[:, :64]).save(d0 / "odd.png")
    for d in (d0, d1):
        (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a PNG")
    return d0, d1


def _run(*argv) -> int:
    return cli.main([str(a) for a in argv])


def _sorted_lines(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    return [lines[0], *sorted(lines[1:])]


COMMANDS = {
    "allpairs": lambda d0, d1: ["allpairs", d0],
    "dirs": lambda d0, d1: ["dirs", d0, d1],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_cluster_output_equals_the_local_output(dask_cluster, folders, tmp_path, command):
    d0, d1 = folders
    argv = COMMANDS[command](d0, d1)
    local, remote = tmp_path / "local.csv", tmp_path / "cluster.csv"
    # The four metrics with their own pairwise paths; later metrics go through compare(), whose
    # rows tests/test_folders.py checks (and DISTS's VGG would cost this test a minute).
    options = ["--device", "cpu", "--block-size", "4", "--batch-size", "4", "--metrics", "lpips,psnr,ssim,ms_ssim"]
    assert _run(*argv, "-o", local, *options) == 1  # the damaged file is an error row
    assert _run(*argv, "-o", remote, *options, "--cluster", dask_cluster.address) == 1
    assert _sorted_lines(remote) == _sorted_lines(local)
    assert remote.read_bytes() == local.read_bytes()  # the same order too
    lines = local.read_text().splitlines()
    assert any("broken.png" in line and ",error," in line for line in lines)
    assert sum(",ok," in line for line in lines) == (14 * 13 // 2 if command == "allpairs" else 14)


def test_the_model_is_loaded_once_per_worker(dask_cluster, folders, tmp_path):
    d0, _ = folders
    assert _run("allpairs", d0, "-o", tmp_path / "a.csv", "--block-size", "3", "--metrics", "lpips",
                "--cluster", dask_cluster.address) == 1

    def loads():
        from core.lpips import engine as lpips

        info = lpips._cached_network.cache_info()
        return info.misses, info.currsize

    with dask_cluster.client() as client:
        per_worker = client.run(loads)
    assert all(misses == size <= 1 for misses, size in per_worker.values()), per_worker
    assert sum(size for _, size in per_worker.values()) >= 1


def test_parquet_through_the_cluster(dask_cluster, folders, tmp_path):
    import pyarrow.parquet as pq

    d0, _ = folders
    local, remote = tmp_path / "local.parquet", tmp_path / "cluster.parquet"
    options = ["--metrics", "lpips,psnr", "--block-size", "5"]
    _run("allpairs", d0, "-o", local, *options)
    _run("allpairs", d0, "-o", remote, *options, "--cluster", dask_cluster.address)
    assert pq.read_table(remote).to_pylist() == pq.read_table(local).to_pylist()


def test_unreachable_scheduler_is_a_clear_error(capsys, folders, tmp_path):
    import dask

    d0, _ = folders
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        rc = _run("allpairs", d0, "-o", tmp_path / "x.csv", "--cluster", "tcp://127.0.0.1:9")
    err = capsys.readouterr().err
    assert rc == 1 and "Could not reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert "Traceback" not in err


def test_a_worker_killed_mid_run_still_gives_the_complete_output(dask_cluster, folders, tmp_path, monkeypatch):
    """The writer pauses after the first tile; one worker holding tiles of this run (running,
    queued or finished and not yet gathered) is killed with SIGKILL; the run completes with every
    row exactly once, equal to the local run. Runs last: it costs the cluster a worker."""
    from cluster import dask_runner

    d0, _ = folders
    local, remote = tmp_path / "local.csv", tmp_path / "cluster.csv"
    options = ["--block-size", "2", "--metrics", "lpips,ssim"]
    assert _run("allpairs", d0, "-o", local, *options) == 1

    paused, resume = threading.Event(), threading.Event()
    original = dask_runner.DaskRunner.map

    def pausing_map(self, function, items):
        for k, result in enumerate(original(self, function, items)):
            yield result
            if getattr(function, "func", None).__name__ == "score_tile" and k == 0:
                paused.set()
                resume.wait(120)

    monkeypatch.setattr(dask_runner.DaskRunner, "map", pausing_map)
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(rc=_run("allpairs", d0, "-o", remote, *options,
                                                                   "--cluster", dask_cluster.address)))
    runner.start()
    try:
        assert paused.wait(120), "the cluster run never reached its second tile"
        with dask_cluster.client() as client:
            def tiles_held() -> dict:
                holding: dict = {}
                # Each view in full: a dict merge of the two kept only `processing`'s entry per worker
                # and missed the tiles already finished and waiting in a worker's memory.
                for view in (client.has_what(), client.processing()):
                    for worker, keys in view.items():
                        holding.setdefault(worker, set()).update(k for k in keys if str(k).startswith("score_tile-"))
                return holding

            # The tiles submitted just before the pause reach a worker a few milliseconds later.
            deadline = time.monotonic() + 30
            holding = tiles_held()
            while not any(holding.values()) and time.monotonic() < deadline:
                time.sleep(0.05)
                holding = tiles_held()
            names = {addr: info["name"] for addr, info in client.scheduler_info()["workers"].items()}
            victim = max(holding, key=lambda w: len(holding[w]))
            assert holding[victim], f"no worker holds a tile of this run: {holding}"
            process = dask_cluster.processes[names[victim]]
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            deadline = time.monotonic() + 60
            while victim in client.scheduler_info()["workers"] and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        resume.set()
        runner.join(timeout=300)
    assert outcome.get("rc") == 1  # the damaged file's error row
    lines = remote.read_text().splitlines()
    assert len(lines) == len(set(lines))  # nothing twice
    assert _sorted_lines(remote) == _sorted_lines(local)
