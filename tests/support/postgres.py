"""A throwaway PostgreSQL server for the tests and the bench: initdb in a temp dir from the installed
server binaries, listening on a free loopback port, stopped (and deleted) by the caller; and the
databases the tests create on it."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tools.cluster.toolbox import free_port

_db_names = itertools.count()


def find_bindir() -> Path | None:
    """PG_BINDIR, else `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin."""
    installed = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    candidates = [os.environ.get("PG_BINDIR"), *installed]
    if shutil.which("pg_config"):
        bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        candidates.insert(1, bindir)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


@dataclass
class PostgresServer:
    bindir: Path
    root: Path
    port: int = 0

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        # initdb and postgres refuse to run as root: run them as the `postgres` system user then.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *args], check=True, capture_output=True, text=True, timeout=60)

    def start(self) -> PostgresServer:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        data = self.root / "data"
        self._run(
            str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"
        )
        self.port = self.port or free_port()
        self.restart()
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", mode, "-w", "stop")

    def processes(self) -> list[int]:
        """The postmaster and every backend it forked (children by /proc's parent pid)."""
        postmaster = int((self.root / "data" / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    children.append(int(stat.parent.name))
        return [postmaster, *children]

    def signal(self, signum: int) -> None:
        """Send every server process `signum`: SIGSTOP freezes the server (connections stay open,
        nothing answers), SIGCONT resumes it."""
        postmaster, *_ = self.processes()
        os.kill(postmaster, signum)  # first, so it forks no backend the list below would miss
        for pid in self.processes()[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def restart(self) -> None:
        """Start the server (again) on the same port and data directory."""
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -F -c max_connections=200"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.root / "data"),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )


# Who started a throwaway server: its pid and the kernel's start time of that pid (a reused pid
# has another), so the next harness can tell a server whose owner was killed.
OWNER = "owner"


def _start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def sweep_stale_servers(bindir: Path, prefix: str) -> list[Path]:
    """Stop and remove the throwaway servers under `prefix` whose owning harness is gone: pg_ctl
    daemonises the server, so a harness killed outright (no finaliser runs) leaves it running."""
    swept = []
    for root in Path(tempfile.gettempdir()).glob(prefix + "*"):
        try:
            pid, started = (root / OWNER).read_text().split()
        except (OSError, ValueError):
            continue  # not one of ours, or its owner is still writing it
        if _start_time(int(pid)) == started:
            continue
        server = PostgresServer(bindir, root)
        with contextlib.suppress(subprocess.SubprocessError):
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
        swept.append(root)
    return swept


@contextlib.contextmanager
def throwaway_server(bindir: Path, prefix: str) -> Iterator[PostgresServer]:
    """A server in a fresh temp dir of its own (the postgres user must be able to enter it), stopped
    and removed on exit whatever happened, also when it failed to start or was stopped already;
    one that a killed harness left is swept first."""
    sweep_stale_servers(bindir, prefix)
    server = PostgresServer(bindir, Path(tempfile.mkdtemp(prefix=prefix)))
    (server.root / OWNER).write_text(f"{os.getpid()} {_start_time(os.getpid())}")
    try:
        yield server.start()
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            server.stop("immediate")
        shutil.rmtree(server.root, ignore_errors=True)


def admin_url(postgres: PostgresServer | str) -> str:
    """The maintenance database's URL: TEST_DATABASE_URL as given, or our server's."""
    return postgres if isinstance(postgres, str) else postgres.url


def with_database(url: str, database: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + database


def admin_sql(postgres: PostgresServer | str, *statements: str) -> None:
    """Run statements (CREATE/DROP DATABASE) on the server's maintenance database."""

    async def run() -> None:
        conn = await asyncpg.connect(admin_url(postgres).replace("postgres://", "postgresql://", 1))
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def fresh_pg_database(postgres: PostgresServer | str, template: str) -> str:
    """A copy of `template` (CREATE DATABASE ... TEMPLATE, milliseconds); returns its URL."""
    name = f"catalog_test_{os.getpid()}_{next(_db_names)}"
    admin_sql(postgres, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return with_database(admin_url(postgres), name)


def drop_pg_database(postgres: PostgresServer | str, name: str) -> None:
    admin_sql(postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
