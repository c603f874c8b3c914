"""A generated secret kept in the data dir is made once, whole, even by racing processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from gateway.settings import load_settings


def _read(data_dir: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(load_settings(env={}, data_dir=data_dir).kept_secret("race-secret", ""))


def test_processes_starting_together_all_get_the_same_whole_secret(tmp_path: Path):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_read, args=(str(tmp_path), out)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    secrets = {out.get(timeout=5) for _ in procs}
    assert len(secrets) == 1 and len(secrets.pop()) == 64
    assert (tmp_path / "race-secret").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["race-secret"]  # no temporary left


def test_a_configured_secret_wins_and_nothing_is_written(tmp_path: Path):
    settings = load_settings(env={}, data_dir=str(tmp_path))
    assert settings.kept_secret("web-secret", "configured") == b"configured"
    assert not (tmp_path / "web-secret").exists()
