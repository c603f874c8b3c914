"""How `make run` stops: the workers finish talking to the Redis it started, which stops last;
the terminal's Ctrl-C does not reach that Redis; and it goes when the launcher is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
import redis

from gateway.launcher import Supervisor
from gateway.settings import Settings
from tests.e2e.stack import PROJECT_ROOT, free_port

# A child that, told to stop, still needs Redis for a moment (a worker's warm shutdown).
WARM_STOP = textwrap.dedent(
    """
    import signal, sys, time, redis
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    open(sys.argv[2] + ".ready", "w").close()
    while not stop:
        time.sleep(0.05)
    time.sleep(0.5)
    try:
        answer = "pong" if redis.Redis.from_url(sys.argv[1]).ping() else "no"
    except redis.RedisError as exc:
        answer = type(exc).__name__
    open(sys.argv[2], "w").write(answer)
    """
)


def _own_redis(settings: Settings, tmp_path: Path) -> Settings:
    return replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0",
                   data_dir=str(tmp_path / "own"))  # fmt: skip


def _wait(path: Path, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < end:
        time.sleep(0.05)
    assert path.exists(), f"{path.name} never appeared"


def test_the_workers_still_reach_redis_while_they_stop_and_redis_stops_last(
    settings: Settings, tmp_path: Path
):
    own = _own_redis(settings, tmp_path)
    sup = Supervisor(own)
    answer = tmp_path / "answer"
    try:
        sup.start_redis()
        sup.start("worker-1", [sys.executable, "-c", WARM_STOP, own.redis_url, str(answer)])
        _wait(Path(f"{answer}.ready"))
        redis_proc = dict(sup.children)["redis"]
        # Its own session: a Ctrl-C at the terminal signals the launcher's group, not it.
        assert os.getsid(redis_proc.pid) != os.getsid(0)
        assert os.getsid(dict(sup.children)["worker-1"].pid) == os.getsid(0)
    finally:
        sup.stop()
    assert answer.read_text() == "pong"
    assert redis_proc.poll() is not None  # and it was stopped too


def test_the_redis_it_started_goes_when_the_launcher_is_killed(settings: Settings, tmp_path: Path):
    own = _own_redis(settings, tmp_path)
    Path(own.data_dir).mkdir(parents=True)
    launcher = textwrap.dedent(
        """
        import time
        from gateway.launcher import Supervisor
        from gateway.settings import load_settings
        sup = Supervisor(load_settings())
        sup.start_redis()
        print(dict(sup.children)["redis"].pid, flush=True)
        time.sleep(120)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {"GATEWAY_DATA_DIR": own.data_dir, "GATEWAY_REDIS_URL": own.redis_url}
    proc = subprocess.Popen(
        [sys.executable, "-c", launcher], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        redis_pid = int(proc.stdout.readline())
        assert redis.Redis.from_url(own.redis_url).ping()
        proc.send_signal(signal.SIGKILL)  # no chance to stop its children
        proc.wait(10)
        gone = psutil.wait_procs([psutil.Process(redis_pid)], timeout=10)[0]
        assert gone, "the launcher's Redis outlived it"
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_children_start_with_two_malloc_arenas_unless_the_operator_chose(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """glibc's per-thread arenas made gunicorn's RSS grow over a long run: the launcher's
    children get two, and an operator's MALLOC_ARENA_MAX wins."""
    show = "import os, sys; open(sys.argv[1], 'w').write(os.environ.get('MALLOC_ARENA_MAX', ''))"
    sup = Supervisor(settings)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    try:
        sup.start("default", [sys.executable, "-c", show, str(tmp_path / "default")])
        monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
        sup.start("chosen", [sys.executable, "-c", show, str(tmp_path / "chosen")])
        for _name, proc in sup.children:
            proc.wait(20)
    finally:
        sup.stop()
    assert (tmp_path / "default").read_text() == "2"
    assert (tmp_path / "chosen").read_text() == "4"
