"""A throwaway PostgreSQL cluster for tests, from Debian's binaries, on a free loopback port.

``postgres_url()`` is a context manager yielding a SQLAlchemy URL
(``postgresql+psycopg://postgres@127.0.0.1:PORT/DB``) of a fresh database in a fresh cluster,
and stops and removes the cluster afterwards. When the binaries are not installed it calls
``pytest.skip`` with the reason. PostgreSQL refuses to run as root: when the tests run as
root, the cluster lives in a temp dir owned by the ``postgres`` user and ``initdb`` /
``pg_ctl`` run as that user (``runuser``, else ``su``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

OS_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """The binaries (or, as root, the ``postgres`` user) are missing."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_bin_dir() -> Path:
    """The newest /usr/lib/postgresql/*/bin holding initdb and pg_ctl (or PG_BIN_DIR)."""
    configured = os.environ.get("PG_BIN_DIR")
    candidates = [configured] if configured else []
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    for c in candidates:
        d = Path(c)
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    raise PostgresUnavailable(
        "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb, pg_ctl); "
        "install Debian's postgresql package"
    )


@dataclass
class PostgresCluster:
    """A running cluster; ``url`` is the test database's SQLAlchemy URL."""

    bin_dir: Path
    base: Path
    port: int
    database: str
    as_root: bool

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "sock"

    @property
    def log_path(self) -> Path:
        return self.base / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{OS_USER}@127.0.0.1:{self.port}/{self.database}"

    def dsn(self, database: str | None = None) -> str:
        return f"postgresql://{OS_USER}@127.0.0.1:{self.port}/{database or self.database}"

    def run(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a server binary, as the ``postgres`` user when we are root."""
        if self.as_root:
            if shutil.which("runuser"):
                argv = ["runuser", "-u", OS_USER, "--", *argv]
            else:
                argv = ["su", OS_USER, "-s", "/bin/sh", "-c", shlex.join(argv)]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, cwd=self.base, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{shlex.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
                + (self.log_path.read_text(errors="replace") if self.log_path.exists() else "")
            )
        return done

    def start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.socket_dir}",
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=300",
                "-c shared_buffers=64MB",
            ]
        )
        self.run(
            [
                str(self.bin_dir / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data),
                "-l",
                str(self.log_path),
                "-o",
                options,
            ]
        )

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.run(
                    [str(self.bin_dir / "pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.data)],
                    timeout=60,
                )
            except (RuntimeError, subprocess.TimeoutExpired):
                if mode != "immediate":
                    self.stop("immediate")


def start_cluster(database: str = "gateway") -> PostgresCluster:
    """initdb + pg_ctl start + CREATE DATABASE; the caller must ``destroy_cluster`` it."""
    bin_dir = find_bin_dir()
    as_root = os.geteuid() == 0
    if as_root:
        try:
            user = pwd.getpwnam(OS_USER)
        except KeyError:
            raise PostgresUnavailable(
                f"running as root and there is no {OS_USER!r} user to run PostgreSQL as"
            ) from None
    # Directly under the temp root: pytest's own tmp dirs are 0700 root, which the postgres
    # user could not traverse.
    base = Path(tempfile.mkdtemp(prefix="pg-test-"))
    cluster = PostgresCluster(bin_dir, base, _free_port(), database, as_root)
    try:
        cluster.socket_dir.mkdir()
        if as_root:
            for p in (base, cluster.socket_dir):
                os.chown(p, user.pw_uid, user.pw_gid)
        cluster.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(cluster.data),
                "-U",
                OS_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        cluster.start()
        import psycopg

        with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
    except BaseException:
        destroy_cluster(cluster)
        raise
    return cluster


def destroy_cluster(cluster: PostgresCluster) -> None:
    """Stop the cluster (immediate: it is throwaway) and remove its files."""
    try:
        cluster.stop("immediate")
    finally:
        shutil.rmtree(cluster.base, ignore_errors=True)


@contextmanager
def postgres_cluster(database: str = "gateway") -> Iterator[PostgresCluster]:
    """A running throwaway cluster with ``database``; skips the test when unavailable."""
    try:
        cluster = start_cluster(database)
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield cluster
    finally:
        destroy_cluster(cluster)


@contextmanager
def postgres_url(database: str = "gateway") -> Iterator[str]:
    """The SQLAlchemy URL of a fresh database in a throwaway cluster (see the module doc)."""
    with postgres_cluster(database) as cluster:
        yield cluster.url
