"""Start real ZooKeeper servers on loopback: a standalone server or a 3-server ensemble.

Tests, the demo and developers use this one launcher. Each server gets free loopback ports, its own
temporary data directory and a lean JVM; readiness is awaited with the `srvr` four-letter word. For
chaos tests a server can be SIGKILLed, SIGSTOPped/SIGCONTed and restarted, and the current leader
found. Every process is stopped by its PID (SIGTERM, then SIGKILL after a grace period).

Jars: `ZOOKEEPER_CLASSPATH` (a Java classpath) if set, else Debian's /usr/share/java/zookeeper.jar
(whose manifest pulls its dependencies). ZooKeeper 3.6+ is required by the job board.

Run `python -m jobboard.testing.zkserver [--ensemble] [--port P]` to start one for development.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

DEBIAN_JAR = "/usr/share/java/zookeeper.jar"
CLASSPATH_ENV = "ZOOKEEPER_CLASSPATH"
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
LEAN_JVM_FLAGS = (
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Xshare:auto",
)


class ZooKeeperLaunchError(RuntimeError):
    """ZooKeeper could not be found, started or stopped; the message says what to do."""


def find_classpath(env: dict[str, str] | None = None, debian_jar: str = DEBIAN_JAR) -> str:
    """The classpath to run ZooKeeper from: $ZOOKEEPER_CLASSPATH, else Debian's jar."""
    environ = os.environ if env is None else env
    configured = environ.get(CLASSPATH_ENV, "").strip()
    if configured:
        return configured
    if Path(debian_jar).is_file():
        return debian_jar
    raise ZooKeeperLaunchError(
        f"ZooKeeper jars not found: {debian_jar} does not exist and ${CLASSPATH_ENV} is not set. "
        "Install Debian's `zookeeper` package (apt-get install zookeeper) or set "
        f"{CLASSPATH_ENV} to a classpath holding ZooKeeper 3.6+ and its dependencies."
    )


def find_java(path: str | None = None) -> str:
    """The `java` executable on PATH (or on `path`), or a clear error."""
    java = shutil.which("java", path=path)
    if java is None:
        raise ZooKeeperLaunchError(
            "`java` was not found on PATH; ZooKeeper needs a Java runtime "
            "(Debian: apt-get install default-jre-headless, or the `zookeeper` package)."
        )
    return java


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def four_letter_word(port: int, command: str, timeout: float = 2.0) -> str:
    """Send a 4lw command (ruok, srvr, mntr, cons...) to 127.0.0.1:port and return the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(command.encode("ascii"))
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


@dataclass(frozen=True)
class ServerPorts:
    """Loopback ports of one server: clients, quorum (follower to leader) and leader election."""

    client: int
    quorum: int
    election: int


class ZooKeeperServers:
    """A standalone ZooKeeper server (size=1) or an ensemble (size=3) on loopback ports.

    Use as a context manager (started on enter, stopped on exit) or call start()/stop().
    Server indexes run from 0 to size-1.
    """

    def __init__(
        self,
        size: int = 1,
        *,
        tick_time_ms: int = 500,
        max_session_timeout_ms: int = 60000,
        client_port: int | None = None,
        base_dir: str | None = None,
        classpath: str | None = None,
        java: str | None = None,
        jvm_flags: Sequence[str] = LEAN_JVM_FLAGS,
        start_timeout: float = 90.0,
        stop_grace: float = 5.0,
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be 1 (standalone) or more (ensemble), got {size}")
        self.size = size
        self.tick_time_ms = tick_time_ms
        self.max_session_timeout_ms = max_session_timeout_ms
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self._classpath = classpath or find_classpath()
        self._java = java or find_java()
        self._jvm_flags = list(jvm_flags)
        self._own_dir = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="zkconductor-zk-"))
        self.ports = [
            ServerPorts(
                client=client_port if (client_port and i == 0) else free_port(),
                quorum=free_port(),
                election=free_port(),
            )
            for i in range(size)
        ]
        self._procs: list[subprocess.Popen[bytes] | None] = [None] * size
        self._paused = [False] * size
        self._write_configs()

    # -- configuration -----------------------------------------------------------------------
    def _server_dir(self, index: int) -> Path:
        return self.base_dir / f"server{index}"

    def _config_path(self, index: int) -> Path:
        return self._server_dir(index) / "zoo.cfg"

    def log_path(self, index: int) -> Path:
        """The file receiving server `index`'s stdout and stderr."""
        return self._server_dir(index) / "server.log"

    def _write_configs(self) -> None:
        for index, ports in enumerate(self.ports):
            data_dir = self._server_dir(index) / "data"
            data_dir.mkdir(parents=True, exist_ok=True)
            lines = [
                f"tickTime={self.tick_time_ms}",
                f"dataDir={data_dir}",
                f"clientPort={ports.client}",
                "clientPortAddress=127.0.0.1",
                f"maxSessionTimeout={self.max_session_timeout_ms}",
                "maxClientCnxns=0",
                "admin.enableServer=false",
                "4lw.commands.whitelist=*",
                "snapshot.trust.empty=true",
                "autopurge.purgeInterval=0",
            ]
            if self.size > 1:
                (data_dir / "myid").write_text(f"{index + 1}\n")
                lines += ["initLimit=20", "syncLimit=10", "reconfigEnabled=false"]
                lines += [
                    f"server.{i + 1}=127.0.0.1:{p.quorum}:{p.election}"
                    for i, p in enumerate(self.ports)
                ]
            self._config_path(index).write_text("\n".join(lines) + "\n")

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ZooKeeperServers:
        """Start every server and wait until each serves requests."""
        try:
            for index in range(self.size):
                self._spawn(index)
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, index: int) -> None:
        command = [
            self._java,
            *self._jvm_flags,
            "-Dzookeeper.admin.enableServer=false",
            "-Dzookeeper.4lw.commands.whitelist=*",
            "-Dzookeeper.snapshot.trust.empty=true",
            "-cp",
            self._classpath,
            MAIN_CLASS,
            str(self._config_path(index)),
        ]
        with open(self.log_path(index), "ab") as log:
            self._procs[index] = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._paused[index] = False

    def wait_ready(
        self, indexes: Sequence[int] | None = None, timeout: float | None = None
    ) -> None:
        """Block until the servers answer `srvr` with a Mode (i.e. they serve clients)."""
        deadline = time.monotonic() + (self.start_timeout if timeout is None else timeout)
        pending = list(range(self.size) if indexes is None else indexes)
        while pending:
            index = pending[0]
            proc = self._procs[index]
            if proc is None or proc.poll() is not None:
                raise ZooKeeperLaunchError(
                    f"ZooKeeper server {index} exited before becoming ready; "
                    f"log tail:\n{self._log_tail(index)}"
                )
            if self.mode(index) is not None:
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise ZooKeeperLaunchError(
                    f"ZooKeeper server {index} not ready after the deadline; "
                    f"log tail:\n{self._log_tail(index)}"
                )
            time.sleep(0.05)  # readiness probe interval of an external process

    def _log_tail(self, index: int, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path(index).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop_server(self, index: int) -> None:
        """Stop one server: SIGTERM, then SIGKILL after the grace period; waits for the PID."""
        proc = self._procs[index]
        if proc is None:
            return
        if proc.poll() is None:
            if self._paused[index]:
                os.kill(proc.pid, signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs[index] = None
        self._paused[index] = False

    def stop(self) -> None:
        """Stop every server and remove the temporary directory (if we made it)."""
        for index in range(self.size):
            self.stop_server(index)
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> ZooKeeperServers:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- chaos -------------------------------------------------------------------------------
    def pid(self, index: int) -> int | None:
        """The PID of server `index`, or None when it is not running."""
        proc = self._procs[index]
        return proc.pid if proc is not None and proc.poll() is None else None

    def kill(self, index: int) -> None:
        """SIGKILL server `index` and reap it (a crash: no clean shutdown)."""
        proc = self._procs[index]
        if proc is None:
            return
        proc.kill()
        proc.wait()
        self._procs[index] = None
        self._paused[index] = False

    def pause(self, index: int) -> None:
        """SIGSTOP server `index` (a frozen process: connections stay open, nothing answers)."""
        pid = self._require_pid(index)
        os.kill(pid, signal.SIGSTOP)
        self._paused[index] = True

    def resume(self, index: int) -> None:
        """SIGCONT a paused server."""
        pid = self._require_pid(index)
        os.kill(pid, signal.SIGCONT)
        self._paused[index] = False

    def restart(self, index: int, wait: bool = True) -> None:
        """Stop server `index` if running, start it again on the same ports and data, await it."""
        self.stop_server(index)
        self._spawn(index)
        if wait:
            self.wait_ready([index])

    def _require_pid(self, index: int) -> int:
        pid = self.pid(index)
        if pid is None:
            raise ZooKeeperLaunchError(f"ZooKeeper server {index} is not running")
        return pid

    def mode(self, index: int) -> str | None:
        """'standalone', 'leader' or 'follower' from `srvr`; None if not serving or unreachable."""
        if self._paused[index] or self.pid(index) is None:
            return None
        try:
            reply = four_letter_word(self.ports[index].client, "srvr", timeout=1.0)
        except OSError:
            return None
        for line in reply.splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return None

    def leader(self) -> int | None:
        """Index of the server that is leader (0 for a standalone server), None if none is."""
        for index in range(self.size):
            if self.mode(index) in ("leader", "standalone"):
                return index
        return None

    # -- addresses ---------------------------------------------------------------------------
    def address(self, index: int) -> str:
        """host:port of server `index` for clients."""
        return f"127.0.0.1:{self.ports[index].client}"

    @property
    def connect_string(self) -> str:
        """Comma-separated host:port of every server, for KazooClient(hosts=...)."""
        return ",".join(self.address(i) for i in range(self.size))

    def four_letter_word(self, index: int, command: str) -> str:
        """Send a 4lw command to server `index`."""
        return four_letter_word(self.ports[index].client, command)


def main(argv: Sequence[str] | None = None) -> int:
    """Start a server (or an ensemble) for a developer; print its connect string; stop on Ctrl-C."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--ensemble", action="store_true", help="start 3 servers instead of 1")
    parser.add_argument("--port", type=int, default=None, help="client port of the first server")
    parser.add_argument("--tick-time", type=int, default=500, help="tickTime in milliseconds")
    args = parser.parse_args(argv)
    try:
        servers = ZooKeeperServers(
            3 if args.ensemble else 1, client_port=args.port, tick_time_ms=args.tick_time
        )
        servers.start()
    except ZooKeeperLaunchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(servers.connect_string, flush=True)
    stop_requested = False

    def _on_signal(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, _on_signal)
    try:
        while not stop_requested:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        servers.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
