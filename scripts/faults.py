#!/usr/bin/env python3
"""The fault scenarios of scripts/faults (read the comments at the top of scripts/faults first).

scripts/faults builds the service, makes a throwaway PostgreSQL cluster, seeds it and then runs
this program inside that cluster's environment. This program starts one service process per
scenario, loads it over plain HTTP/1.1 on 127.0.0.1 (asyncio streams and raw sockets), breaks
the database or the service on purpose, measures, and prints one table. Python 3.11 standard
library only.

Everything it needs comes from the environment that scripts/faults sets:
  FAULTS_BIN          absolute path of the release binary
  DATABASE_URL        the throwaway database
  FAULTS_ORG_TOKEN    an `organization` account's token (lists)
  FAULTS_SWITCH_TOKEN a `switch` account's token (the feed)
  FAULTS_EXTENSIONS   the organization's extension numbers, space-separated
  FAULTS_PGVERSION, FAULTS_CLUSTER, FAULTS_PGDATA   the cluster, for pg_ctlcluster and kill
  FAULTS_PIDFILE      where the pids of started processes are noted (scripts/faults' trap)
  FAULTS_LOGDIR       where each scenario's service log is kept
  FAULTS_WORKDIR      the services' working directory (empty: no stray .env is read)

Usage (through scripts/faults): faults.py [scenario,...]; exits 0 when every bound holds, 3
when one fails, 2 on bad usage, 1 when the run itself broke.
Internal: faults.py --slow-load PORT COUNT SECONDS NOREAD_ROWS (the slow clients of the `slow` scenario,
run in a process of their own so that they do not disturb the normal client's timings).
"""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

HOST = "127.0.0.1"
# No request of the load waits longer than this on the client side; one that does is counted
# as `timeout` (and its time, at least this, is what the `longest` column shows).
CLIENT_CAP = 30.0
# Every setting the service reads (and the new ones being added): removed from the inherited
# environment, so that only what a scenario sets (and the defaults) apply.
SERVICE_SETTINGS = [
    "DATABASE_URL", "LISTEN_ADDR", "HTTP_WORKERS", "DATABASE_POOL_SIZE",
    "DATABASE_ACQUIRE_TIMEOUT_MS", "DATABASE_STATEMENT_TIMEOUT_MS", "REQUEST_TIMEOUT_MS",
    "READINESS_TIMEOUT_MS", "MAX_CONNECTIONS", "BODY_MIN_BYTES_PER_SECOND", "WRITE_TIMEOUT_MS",
    "TOKEN_TTL_SECONDS", "TOKEN_CACHE_SECONDS", "LIST_ROWS_IN_FLIGHT", "LOG_FORMAT", "LOG_LEVEL",
    "SHUTDOWN_DELAY_SECONDS", "SHUTDOWN_DRAIN_SECONDS", "MIGRATE_ON_START",
]
# What most scenarios run with: short database timeouts, so that the request deadline (not set:
# its default, 1000 + 2000 + 250 = 3250 ms) is well below the outages.
BASE_SETTINGS = {
    "DATABASE_ACQUIRE_TIMEOUT_MS": "1000",
    "DATABASE_STATEMENT_TIMEOUT_MS": "2000",
}
# The `slow` scenario's bound on the service's peak resident memory.
RSS_LIMIT_MIB = float(os.environ.get("FAULTS_RSS_LIMIT_MIB", "256"))
SLOW_CLIENTS = 1000
LIST = "/uapi/phoneCalls/@owner/@self/"


def log(message: str) -> None:
    print(f"faults: {message}", file=sys.stderr, flush=True)


def now() -> float:
    return time.monotonic()


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"faults.py: {name} is not set; run scripts/faults")
    return value


# ------------------------------------------------------------------------------------------
# Processes: the service, the database, and cleaning up after both.
# ------------------------------------------------------------------------------------------

STARTED: list[subprocess.Popen] = []


def remember(proc: subprocess.Popen) -> None:
    """Notes a started process, so that scripts/faults' trap can end it if this program dies."""
    STARTED.append(proc)
    with open(env("FAULTS_PIDFILE"), "a", encoding="ascii") as f:
        f.write(f"{proc.pid}\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def deadline_ms(settings: dict[str, str]) -> int:
    """REQUEST_TIMEOUT_MS, or its documented default: acquire + statement timeouts + 250 ms."""
    if "REQUEST_TIMEOUT_MS" in settings:
        return int(settings["REQUEST_TIMEOUT_MS"])
    return (int(settings.get("DATABASE_ACQUIRE_TIMEOUT_MS", "2000"))
            + int(settings.get("DATABASE_STATEMENT_TIMEOUT_MS", "5000")) + 250)


class Service:
    """One `phonecalls serve` process on a free port of 127.0.0.1, logging to LOGDIR/name.log."""

    def __init__(self, name: str, settings: dict[str, str]):
        self.name = name
        self.settings = dict(settings)
        self.port = free_port()
        child_env = {k: v for k, v in os.environ.items() if k not in SERVICE_SETTINGS}
        child_env.update(DATABASE_URL=env("DATABASE_URL"), LOG_FORMAT="json",
                         LOG_LEVEL=os.environ.get("FAULTS_LOG_LEVEL", "warn"))
        child_env.update(self.settings)
        self.log_path = os.path.join(env("FAULTS_LOGDIR"), f"{name}.log")
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen(
                [env("FAULTS_BIN"), "serve", "--listen", f"{HOST}:{self.port}"],
                env=child_env, cwd=env("FAULTS_WORKDIR"), stdin=subprocess.DEVNULL,
                stdout=log_file, stderr=subprocess.STDOUT)
        remember(self.proc)
        self.started = now()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def status_kib(self, key: str) -> int | None:
        """A field of /proc/PID/status in KiB (VmRSS, VmHWM), None once the process is gone."""
        try:
            with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return None

    def sockets(self) -> int:
        """Open sockets of the process (its listener, its clients, its database connections)."""
        count = 0
        try:
            for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
                try:
                    if os.readlink(f"/proc/{self.proc.pid}/fd/{fd}").startswith("socket:"):
                        count += 1
                except OSError:
                    pass
        except OSError:
            pass
        return count

    def probe(self, path: str = "/readyz", timeout: float = 2.0) -> int | None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    async def wait_ready(self, limit: float) -> float | None:
        """Seconds from the start until /readyz answered 200, None if not within `limit`."""
        while now() - self.started < limit and self.alive():
            if await asyncio.to_thread(self.probe) == 200:
                return now() - self.started
            await asyncio.sleep(0.05)
        return None

    async def wait_exit(self, limit: float) -> float | None:
        """The monotonic time at which the process exited, None if not within `limit` s."""
        until = now() + limit
        while now() < until:
            if not self.alive():
                return now()
            await asyncio.sleep(0.005)
        return None

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                log(f"{self.name}: the service ignored SIGTERM for 20 s; killing it")
                self.proc.kill()
                self.proc.wait()


def cluster_cmd(action: str, *extra: str) -> None:
    subprocess.run(["pg_ctlcluster", env("FAULTS_PGVERSION"), env("FAULTS_CLUSTER"), action, *extra],
                   check=True, timeout=90, stdin=subprocess.DEVNULL)


def postmaster_pid() -> int | None:
    try:
        with open(os.path.join(env("FAULTS_PGDATA"), "postmaster.pid"), encoding="ascii") as f:
            return int(f.readline())
    except (OSError, ValueError):
        return None


def children(parent: int) -> list[int]:
    """Pids whose parent is `parent` (the postmaster's backends and auxiliary processes)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and fields[1] == str(parent):
            found.append(int(entry))
    return found


def freeze_database() -> list[int]:
    """SIGSTOPs the postmaster, then every child of it (twice over, for any forked meanwhile)."""
    master = postmaster_pid()
    if master is None:
        raise RuntimeError("no postmaster.pid: is the cluster running?")
    frozen = [master]
    os.kill(master, signal.SIGSTOP)
    for _ in range(3):
        for pid in children(master):
            if pid not in frozen:
                try:
                    os.kill(pid, signal.SIGSTOP)
                    frozen.append(pid)
                except ProcessLookupError:
                    pass
        time.sleep(0.02)
    return frozen


def thaw_database(frozen: list[int] | None = None) -> None:
    """SIGCONTs what `freeze_database` stopped, and every current postmaster child besides."""
    master = postmaster_pid()
    pids = list(frozen or [])
    if master is not None:
        pids += children(master) + [master]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def database_answers() -> bool:
    done = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-c", "SELECT 1", env("DATABASE_URL")],
                          capture_output=True, text=True, timeout=30)
    return done.returncode == 0


def ensure_database() -> None:
    """Before a scenario: the cluster running, nothing frozen, and answering."""
    thaw_database()
    if not database_answers():
        log("the database does not answer: starting the cluster")
        subprocess.run(["pg_ctlcluster", env("FAULTS_PGVERSION"), env("FAULTS_CLUSTER"), "start"],
                       timeout=90, stdin=subprocess.DEVNULL)
    for _ in range(100):
        if database_answers():
            return
        time.sleep(0.2)
    raise RuntimeError("the database does not answer")


def stored_sequences(ids: list[str]) -> dict[str, int]:
    """Each call's stored `sequence`, read with psql straight from phone_calls."""
    if not ids:
        return {}
    array = "{" + ",".join(ids) + "}"
    sql = f"SELECT id, sequence FROM phone_calls WHERE id = ANY('{array}'::uuid[])"
    done = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", " ", "-v", "ON_ERROR_STOP=1",
                           "-c", sql, env("DATABASE_URL")],
                          capture_output=True, text=True, timeout=60, check=True)
    stored = {}
    for line in done.stdout.split("\n"):
        if line.strip():
            call_id, sequence = line.split()
            stored[call_id] = int(sequence)
    return stored


def lost_writes(acked: list[tuple[str, int]]) -> int:
    """Acknowledged writes (200/201 with "applied":true) whose sequence is above the stored one."""
    stored = stored_sequences(sorted({call_id for call_id, _ in acked}))
    return sum(1 for call_id, sequence in acked if sequence > stored.get(call_id, -1))


# ------------------------------------------------------------------------------------------
# A small HTTP/1.1 client over asyncio streams, and the mixed load.
# ------------------------------------------------------------------------------------------

async def read_response(reader: asyncio.StreamReader, method: str):
    """Reads one response: (status, headers with lower-case names, body)."""
    line = await reader.readline()
    if not line:
        raise ConnectionResetError("closed before the status line")
    status = int(line.split()[1])
    headers: dict[str, str] = {}
    while True:
        header = await reader.readline()
        if not header:
            raise ConnectionResetError("closed inside the headers")
        if header in (b"\r\n", b"\n"):
            break
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if method == "HEAD" or status in (204, 304) or status < 200:
        return status, headers, b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks = []
        while True:
            size_line = await reader.readline()
            if not size_line:
                raise ConnectionResetError("closed inside a chunked body")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return status, headers, b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    if "content-length" in headers:
        return status, headers, await reader.readexactly(int(headers["content-length"]))
    headers["connection"] = "close"
    return status, headers, await reader.read()


class Conn:
    """One keep-alive connection, reopened after the server closes it."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b""):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        head = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{self.port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        if method in ("PUT", "POST"):
            head.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await self.writer.drain()
        status, response_headers, response_body = await read_response(self.reader, method)
        if response_headers.get("connection", "").lower() == "close":
            self.close()
        return status, response_body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None


@dataclass
class Rec:
    """One request: its kind, when it started and ended, and its status (an HTTP status, or
    `refused` (no connection), `reset` (closed without an answer), `timeout` (CLIENT_CAP))."""
    kind: str
    t0: float
    t1: float
    status: int | str


def is_2xx(status: int | str) -> bool:
    return isinstance(status, int) and 200 <= status < 300


class Load:
    """The mixed load: list clients (organization token, @owner/@self, varied `count`), clients
    of the largest page (count=5000, back to back, so that a statement is nearly always running),
    switch clients PUTting reports with increasing `sequence` for a fixed set of calls, a client
    POSTing batches, and a /readyz probe every 100 ms (kept apart from the counts)."""

    def __init__(self, port: int, *, lists: int = 6, counts=(20, 20, 100, 500), big: int = 1,
                 puts: int = 4, batches: int = 1, batch_size: int = 50, pace: float = 0.02,
                 calls: int = 120):
        self.port = port
        self.lists, self.counts, self.big, self.puts, self.batches = lists, counts, big, puts, batches
        self.batch_size, self.pace = batch_size, pace
        self.records: list[Rec] = []
        self.probes: list[Rec] = []
        self.acked: list[tuple[str, int]] = []
        self.sequence: dict[str, int] = defaultdict(int)
        self.put_ids = [str(uuid.uuid4()) for _ in range(calls)]
        self.batch_ids = [str(uuid.uuid4()) for _ in range(max(batch_size * 2, 1))]
        self.extensions = env("FAULTS_EXTENSIONS").split()
        self.published = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
        self.stopping = False
        self.tasks: list[asyncio.Task] = []
        org = env("FAULTS_ORG_TOKEN")
        switch = env("FAULTS_SWITCH_TOKEN")
        self.list_headers = {"Authorization": f"Bearer {org}"}
        self.feed_headers = {"Authorization": f"Bearer {switch}", "Content-Type": "application/json"}

    def report(self, call_id: str) -> dict:
        """The full state of a call, with the next sequence of that call."""
        self.sequence[call_id] += 1
        sequence = self.sequence[call_id]
        ext = self.extensions[int(call_id[:8], 16) % len(self.extensions)]
        return {"sequence": sequence, "extension": ext, "published": self.published,
                "phoneCallView": [{"id": "00", "extension": ext, "source": [ext],
                                   "destination": ["+442079460000"], "flow": 4,
                                   "status": 4, "callerId": f"Faults {sequence}"}]}

    async def call(self, conn: Conn, kind: str, method: str, path: str, headers, body=b""):
        t0 = now()
        response = b""
        try:
            status, response = await asyncio.wait_for(
                conn.request(method, path, headers, body), CLIENT_CAP)
        except asyncio.TimeoutError:
            status = "timeout"
            conn.close()
        except ConnectionRefusedError:
            status = "refused"
            conn.close()
        except (OSError, EOFError, ValueError, IndexError):
            status = "reset"
            conn.close()
        self.records.append(Rec(kind, t0, now(), status))
        return status, response

    async def rest(self, status) -> None:
        await asyncio.sleep(self.pace if isinstance(status, int) else max(self.pace, 0.05))

    async def list_client(self, n: int, counts=None, pace=None) -> None:
        conn, rnd = Conn(self.port), random.Random(n)
        try:
            while not self.stopping:
                count = rnd.choice(counts or self.counts)
                status, _ = await self.call(conn, "list", "GET", f"{LIST}?count={count}",
                                            self.list_headers)
                if pace == 0 and isinstance(status, int):
                    continue
                await self.rest(status)
        finally:
            conn.close()

    def acknowledge(self, result: dict) -> None:
        if result.get("status", 0) in (200, 201) and result.get("applied") is True:
            self.acked.append((str(result["id"]), int(result["sequence"])))

    async def put_client(self, n: int) -> None:
        conn, rnd = Conn(self.port), random.Random(1000 + n)
        try:
            while not self.stopping:
                call_id = rnd.choice(self.put_ids)
                report = self.report(call_id)
                status, body = await self.call(conn, "put", "PUT", f"/switch/v1/phoneCalls/{call_id}",
                                               self.feed_headers, json.dumps(report).encode())
                if status in (200, 201):
                    self.acknowledge({**json.loads(body), "status": status})
                await self.rest(status)
        finally:
            conn.close()

    async def batch_client(self, n: int) -> None:
        conn, rnd = Conn(self.port), random.Random(2000 + n)
        try:
            while not self.stopping:
                reports = [{**self.report(call_id), "id": call_id}
                           for call_id in rnd.sample(self.batch_ids, self.batch_size)]
                status, body = await self.call(conn, "batch", "POST", "/switch/v1/phoneCalls",
                                               self.feed_headers,
                                               json.dumps({"reports": reports}).encode())
                if status == 200:
                    for result in json.loads(body)["results"]:
                        self.acknowledge(result)
                await asyncio.sleep(max(self.pace, 0.1))
        finally:
            conn.close()

    async def probe_loop(self) -> None:
        conn = Conn(self.port)
        try:
            while not self.stopping:
                t0 = now()
                try:
                    status, _ = await asyncio.wait_for(conn.request("GET", "/readyz", {}), 5)
                except asyncio.TimeoutError:
                    status = "timeout"
                    conn.close()
                except (OSError, EOFError, ValueError, IndexError):
                    status = "reset"
                    conn.close()
                self.probes.append(Rec("readyz", t0, now(), status))
                await asyncio.sleep(0.1)
        finally:
            conn.close()

    async def slow_put(self, release_at: float) -> None:
        """A PUT whose body is half sent now and finished at `release_at` (monotonic): a request
        that is certainly in flight in between."""
        call_id = str(uuid.uuid4())
        self.put_ids.append(call_id)
        body = json.dumps(self.report(call_id)).encode()
        head = (f"PUT /switch/v1/phoneCalls/{call_id} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in self.feed_headers.items())
                + f"Content-Length: {len(body)}\r\n\r\n").encode()
        t0 = now()
        writer = None
        try:
            reader, writer = await asyncio.open_connection(HOST, self.port)
            writer.write(head + body[: len(body) // 2])
            await writer.drain()
            await asyncio.sleep(max(0.0, release_at - now()))
            writer.write(body[len(body) // 2:])
            await writer.drain()
            status, _, response = await asyncio.wait_for(read_response(reader, "PUT"), CLIENT_CAP)
            if status in (200, 201):
                self.acknowledge({**json.loads(response), "status": status})
        except asyncio.TimeoutError:
            status = "timeout"
        except ConnectionRefusedError:
            status = "refused"
        except (OSError, EOFError, ValueError, IndexError):
            status = "reset"
        finally:
            if writer is not None:
                writer.transport.abort()
        self.records.append(Rec("slowput", t0, now(), status))

    def start(self) -> None:
        spawn = asyncio.create_task
        self.tasks += [spawn(self.list_client(n)) for n in range(self.lists)]
        self.tasks += [spawn(self.list_client(100 + n, (5000,), 0)) for n in range(self.big)]
        self.tasks += [spawn(self.put_client(n)) for n in range(self.puts)]
        self.tasks += [spawn(self.batch_client(n)) for n in range(self.batches)]
        self.tasks.append(spawn(self.probe_loop()))

    async def finish(self) -> None:
        """Stops sending; waits for the requests in flight (each is capped at CLIENT_CAP)."""
        self.stopping = True
        _, pending = await asyncio.wait(self.tasks, timeout=CLIENT_CAP + 5)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def first_after(self, t: float, kind: str) -> float | None:
        """ms from `t` to the first 200 answer of that kind completed at or after `t`."""
        source = self.probes if kind == "readyz" else self.records
        ends = [r.t1 for r in source if r.kind == kind and r.status == 200 and r.t1 >= t]
        return (min(ends) - t) * 1000 if ends else None


# ------------------------------------------------------------------------------------------
# Scenario results and the table.
# ------------------------------------------------------------------------------------------

@dataclass
class Row:
    name: str
    statuses: str = "-"
    longest: str = "-"
    lost: str = "-"
    recovery: str = "-"
    shutdown: str = "-"
    details: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def result(self) -> str:
        return "FAIL" if self.failures else "PASS"


def by_status(records: list[Rec]) -> str:
    counts = Counter(r.status for r in records)
    order = sorted(counts, key=lambda s: (isinstance(s, str), str(s)))
    return " ".join(f"{status}:{counts[status]}" for status in order) or "none"


def check_requests(row: Row, records: list[Rec], settings: dict[str, str]) -> None:
    """The bounds every scenario shares: no 5xx but 503, nothing over the deadline + 1 s."""
    row.statuses = by_status(records)
    errors = [r for r in records if isinstance(r.status, int) and r.status >= 500 and r.status != 503]
    if errors:
        row.failures.append(f"{len(errors)} answers {by_status(errors)} (no 500 allowed)")
    limit = deadline_ms(settings) + 1000
    longest = max(((r.t1 - r.t0) * 1000 for r in records), default=0.0)
    row.longest = f"{longest:.0f} ({limit})"
    if longest > limit:
        slow = [r for r in records if (r.t1 - r.t0) * 1000 > limit]
        row.failures.append(f"{len(slow)} requests over the deadline + 1 s ({limit} ms), "
                            f"longest {longest:.0f} ms: {by_status(slow)} "
                            f"[{', '.join(sorted({r.kind for r in slow}))}]")


def check_answers(row: Row, records: list[Rec], signalled: float | None = None,
                  deadline: int = 0) -> None:
    """The load sends only valid requests: each must be answered 200, 201, 204 or 503. After a
    SIGTERM (`signalled`), a request may also find no connection or see it closed, when it was
    sent after the SIGTERM or was cut before its own deadline (by the end of the drain): one
    still unanswered past its deadline should have had its 503 by then."""
    def excused(r: Rec) -> bool:
        return (signalled is not None and r.status in ("refused", "reset") and r.t1 >= signalled
                and (r.t0 >= signalled or (r.t1 - r.t0) * 1000 <= deadline))
    odd = [r for r in records
           if r.status not in (200, 201, 204, 503) and not excused(r)
           and not (isinstance(r.status, int) and r.status >= 500)]  # reported by check_requests
    if odd:
        row.failures.append(f"{len(odd)} requests not answered 2xx or 503: {by_status(odd)} "
                            f"[{', '.join(sorted({r.kind for r in odd}))}]")


def check_lost(row: Row, load: Load) -> None:
    lost = lost_writes(load.acked)
    row.lost = str(lost)
    row.details.append(f"{len(load.acked)} acknowledged writes")
    if lost:
        row.failures.append(f"{lost} acknowledged writes lost")


def check_probes(row: Row, load: Load) -> None:
    errors = [r for r in load.probes if isinstance(r.status, int) and r.status >= 500 and r.status != 503]
    if errors:
        row.failures.append(f"/readyz answered {by_status(errors)}")


def fmt_ms(value: float | None) -> str:
    return "never" if value is None else f"{value:.0f}"


def settings_text(settings: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in settings.items())


# ------------------------------------------------------------------------------------------
# The scenarios.
# ------------------------------------------------------------------------------------------

async def start_service(name: str, settings: dict[str, str], row: Row) -> Service | None:
    ensure_database()
    service = Service(name, settings)
    if await service.wait_ready(20) is None:
        row.failures.append(f"the service was not ready within 20 s (log: {service.log_path})")
        service.stop()
        return None
    return service


async def outage(name: str, kind: str, seconds: float) -> Row:
    """`dbstop` / `dbfreeze`: the mixed load, the database stopped (pg_ctlcluster stop -m fast)
    or frozen (SIGSTOP) for `seconds`, then back; recovery is measured from its return."""
    row = Row(name)
    settings = dict(BASE_SETTINGS)
    row.details.append(settings_text(settings) + f" (deadline {deadline_ms(settings)} ms)")
    service = await start_service(name, settings, row)
    if service is None:
        return row
    load = Load(service.port)
    frozen: list[int] = []
    try:
        load.start()
        await asyncio.sleep(3)
        if kind == "stop":
            log(f"{name}: stopping the database (pg_ctlcluster stop -m fast) for {seconds:.0f} s")
            stopping = now()
            await asyncio.to_thread(cluster_cmd, "stop", "-m", "fast")
            began = now()
            row.details.append(f"pg_ctlcluster stop took {began - stopping:.1f} s; "
                               f"down {seconds:.0f} s from then")
        else:
            began = now()
            log(f"{name}: freezing the database (SIGSTOP postmaster and backends) for {seconds:.0f} s")
            frozen = freeze_database()
        await asyncio.sleep(max(0.0, began + seconds - now()))
        if kind == "stop":
            await asyncio.to_thread(cluster_cmd, "start")
        else:
            thaw_database(frozen)
            frozen = []
        back = now()
        log(f"{name}: the database is back after {back - began:.1f} s; waiting for recovery")
        while now() - back < 10 and (load.first_after(back, "list") is None
                                     or load.first_after(back, "readyz") is None):
            await asyncio.sleep(0.05)
        await asyncio.sleep(2)
    finally:
        if frozen:
            thaw_database(frozen)
        await load.finish()
        service.stop()
    ensure_database()
    check_requests(row, load.records, settings)
    check_answers(row, load.records)
    check_probes(row, load)
    check_lost(row, load)
    list_ms, ready_ms = load.first_after(back, "list"), load.first_after(back, "readyz")
    row.recovery = f"{fmt_ms(list_ms)}/{fmt_ms(ready_ms)}"
    if list_ms is None or ready_ms is None:
        row.failures.append("no 200 list answer and /readyz 200 within 10 s of the database's return")
    return row


async def sigterm(name: str, delay: int, drain: int) -> Row:
    """`sigterm`: SIGTERM under load (healthy database), with requests certainly in flight (large
    pages, and PUTs whose body is only half sent at SIGTERM and finished 0.5 s later)."""
    row = Row(name)
    settings = {**BASE_SETTINGS, "SHUTDOWN_DELAY_SECONDS": str(delay),
                "SHUTDOWN_DRAIN_SECONDS": str(drain)}
    row.details.append(settings_text(settings))
    service = await start_service(name, settings, row)
    if service is None:
        return row
    load = Load(service.port, lists=6, counts=(5000, 5000, 20), big=0, pace=0.005)
    bound = delay + drain + 1
    try:
        load.start()
        await asyncio.sleep(2)
        signal_at = now() + 0.3
        slow_puts = [asyncio.create_task(load.slow_put(signal_at + 0.5)) for _ in range(4)]
        await asyncio.sleep(max(0.0, signal_at - now()))
        log(f"{name}: SIGTERM (delay {delay} s, drain {drain} s)")
        signalled = now()
        service.proc.send_signal(signal.SIGTERM)
        exited = await service.wait_exit(bound + 10)
        await asyncio.gather(*slow_puts)
    finally:
        await load.finish()
        service.stop()
    check_requests(row, load.records, settings)
    check_answers(row, load.records, signalled, deadline_ms(settings))
    check_lost(row, load)
    if exited is None:
        row.shutdown = f">{bound + 10} ({bound})"
        row.failures.append(f"still running {bound + 10} s after SIGTERM")
    else:
        row.shutdown = f"{exited - signalled:.2f} ({bound})"
        if exited - signalled > bound:
            row.failures.append(f"shutdown took {exited - signalled:.2f} s > {bound} s")
    in_flight = [r for r in load.records if r.t0 < signalled <= r.t1]
    bad = [r for r in in_flight if not is_2xx(r.status)]
    row.details.insert(0, f"in flight at SIGTERM: {len(in_flight)}, answered 2xx: "
                          f"{len(in_flight) - len(bad)}")
    if bad:
        row.failures.append(f"{len(bad)} requests in flight at SIGTERM got no real answer: "
                            + ", ".join(f"{r.kind} {r.status} (sent {1000 * (r.t0 - signalled):+.0f} ms, "
                                        f"ended {1000 * (r.t1 - signalled):+.0f} ms)" for r in bad))
    if delay:
        during = [r for r in load.records if signalled <= r.t0 < signalled + delay - 0.1]
        row.details.insert(1, f"started during the {delay} s delay: {by_status(during)}")
    return row


async def sigterm_frozen(name: str, delay: int, drain: int) -> Row:
    """`sigterm-frozen`: the database frozen under load, requests piling up, then SIGTERM; the
    process must exit within delay + drain + 1 s. The database is thawed once it has exited (or
    once that bound + 6 s has passed, to see whether it exits then)."""
    row = Row(name)
    settings = {**BASE_SETTINGS, "SHUTDOWN_DELAY_SECONDS": str(delay),
                "SHUTDOWN_DRAIN_SECONDS": str(drain)}
    row.details.append(settings_text(settings) + f" (deadline {deadline_ms(settings)} ms)")
    service = await start_service(name, settings, row)
    if service is None:
        return row
    load = Load(service.port)
    bound = delay + drain + 1
    frozen: list[int] = []
    exit_note = ""
    try:
        load.start()
        await asyncio.sleep(2)
        log(f"{name}: freezing the database, SIGTERM 1 s later")
        frozen = freeze_database()
        await asyncio.sleep(1)
        signalled = now()
        service.proc.send_signal(signal.SIGTERM)
        exited = await service.wait_exit(bound + 6)
        thaw_database(frozen)
        frozen = []
        if exited is None:
            thawed = now()
            log(f"{name}: still running {bound + 6} s after SIGTERM; database thawed")
            exited = await service.wait_exit(10)
            exit_note = (f"exited {exited - thawed:.2f} s after the database was thawed"
                         if exited else "still running 10 s after the thaw: killed")
    finally:
        if frozen:
            thaw_database(frozen)
        await load.finish()
        service.stop()
    ensure_database()
    check_requests(row, load.records, settings)
    check_answers(row, load.records, signalled, deadline_ms(settings))
    check_lost(row, load)
    in_flight = [r for r in load.records if r.t0 < signalled <= r.t1]
    row.details.insert(0, f"in flight at SIGTERM: {len(in_flight)} ({by_status(in_flight)})")
    if exited is None:
        row.shutdown = f">{bound + 16} ({bound})"
        row.failures.append(f"shutdown: {exit_note}")
    else:
        took = exited - signalled
        row.shutdown = f"{took:.2f} ({bound})"
        if took > bound:
            row.failures.append(f"shutdown took {took:.2f} s > {bound} s"
                                + (f"; {exit_note}" if exit_note else ""))
    return row


async def pool_of_one(name: str) -> Row:
    """`pool1`: DATABASE_POOL_SIZE=1; /readyz must turn 200 and lists answer 200 under a light
    load (two clients, 50 ms apart, 5 s)."""
    row = Row(name)
    settings = {**BASE_SETTINGS, "DATABASE_POOL_SIZE": "1"}
    row.details.append(settings_text(settings))
    ensure_database()
    service = Service(name, settings)
    try:
        ready = await service.wait_ready(15)
        row.details.insert(0, f"/readyz 200 after {fmt_ms(ready * 1000 if ready else None)} ms")
        if ready is None:
            row.failures.append("/readyz never answered 200 within 15 s")
        load = Load(service.port, lists=2, counts=(20, 100), big=0, puts=0, batches=0, pace=0.05)
        load.start()
        await asyncio.sleep(5)
        await load.finish()
    finally:
        service.stop()
    check_requests(row, load.records, settings)
    check_probes(row, load)
    not_ok = [r for r in load.records if r.status != 200]
    if not_ok:
        row.failures.append(f"{len(not_ok)} list requests did not answer 200: {by_status(not_ok)}")
    return row


def normal_client(port: int, seconds: float, pace: float = 0.01) -> list[Rec]:
    """One well-behaved client: a list page of 20 on a keep-alive connection, 10 ms apart."""
    token = env("FAULTS_ORG_TOKEN")
    headers = {"Authorization": f"Bearer {token}"}
    records: list[Rec] = []
    conn = http.client.HTTPConnection(HOST, port, timeout=CLIENT_CAP)
    until = now() + seconds
    while now() < until:
        t0 = now()
        try:
            conn.request("GET", f"{LIST}?count=20", headers=headers)
            response = conn.getresponse()
            response.read()
            status: int | str = response.status
        except TimeoutError:
            status = "timeout"
            conn.close()
        except ConnectionRefusedError:
            status = "refused"
            conn.close()
        except (OSError, http.client.HTTPException):
            status = "reset"
            conn.close()
        records.append(Rec("normal", t0, now(), status))
        time.sleep(pace)
    conn.close()
    return records


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


async def slow_clients(name: str, noread_count: int, p99_bound: bool) -> Row:
    """`slow`: a normal client's list latency alone (baseline, 8 s), then again for 15 s while
    1,000 slow connections are open (see slow_load_main), the non-readers asking for pages of
    `noread_count` rows; the service's peak RSS. Without `p99_bound` the p99 is reported, not
    judged (pages of thousands of rows are real work for the database and the service, on the
    same two cores as the normal client)."""
    row = Row(name)
    settings = {**BASE_SETTINGS, "REQUEST_TIMEOUT_MS": "3000", "WRITE_TIMEOUT_MS": "2000"}
    row.details.append(settings_text(settings))
    service = await start_service(name, settings, row)
    if service is None:
        return row
    peak = {"rss": 0}
    sockets: list[tuple[float, int]] = []  # (monotonic time, the service's open sockets)
    sampling = True

    async def sample() -> None:
        ticks = 0
        while sampling:
            peak["rss"] = max(peak["rss"], service.status_kib("VmRSS") or 0)
            if ticks % 5 == 0:
                sockets.append((now(), service.sockets()))
            ticks += 1
            await asyncio.sleep(0.1)

    slow = None
    try:
        await asyncio.to_thread(normal_client, service.port, 2.0)  # warm up
        log(f"{name}: baseline, the normal client alone for 8 s")
        baseline = await asyncio.to_thread(normal_client, service.port, 8.0)
        rss_baseline = service.status_kib("VmRSS") or 0
        sampler = asyncio.create_task(sample())
        log(f"{name}: {SLOW_CLIENTS} slow connections, the normal client for 15 s")
        slow = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--slow-load",
                                 str(service.port), str(SLOW_CLIENTS), "20", str(noread_count)],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        remember(slow)
        ready_line = await asyncio.wait_for(asyncio.to_thread(slow.stdout.readline), 60)
        connected = now()
        row.details.append(f"slow clients: {ready_line.strip()}")
        loaded = await asyncio.to_thread(normal_client, service.port, 15.0)
        output, _ = await asyncio.wait_for(asyncio.to_thread(slow.communicate), 60)
        summary = json.loads(output.strip().splitlines()[-1])
        sampling = False
        await sampler
        hwm = service.status_kib("VmHWM") or 0
    finally:
        sampling = False
        if slow is not None and slow.poll() is None:
            slow.kill()
            slow.wait()
        service.stop()
    check_requests(row, baseline + loaded, settings)
    check_answers(row, baseline + loaded)
    def times(records: list[Rec]) -> list[float]:
        return [(r.t1 - r.t0) * 1000 for r in records if r.status == 200]

    p50b, p99b = percentile(times(baseline), 50), percentile(times(baseline), 99)
    p50l, p99l = percentile(times(loaded), 50), percentile(times(loaded), 99)
    row.details.insert(0, f"normal client p50/p99 ms: baseline {p50b:.1f}/{p99b:.1f} "
                          f"({len(baseline)} req), with slow clients {p50l:.1f}/{p99l:.1f} "
                          f"({len(loaded)} req)")
    row.details.insert(1, f"peak RSS {hwm / 1024:.1f} MiB (VmHWM; sampled VmRSS max "
                          f"{peak['rss'] / 1024:.1f}, baseline {rss_baseline / 1024:.1f}; "
                          f"limit {RSS_LIMIT_MIB:.0f} MiB)")
    top = max(sockets, key=lambda sample: sample[1], default=(connected, 0))
    drained = next((t for t, n in sockets if t > top[0] and n < 100), None)
    row.details.insert(2, f"service sockets (fds): {sockets[0][1] if sockets else '?'} before, "
                          f"peak {top[1]}, under 100 again "
                          + (f"{drained - connected:.1f} s after the slow clients connected"
                             if drained else "never while they were open"))
    for kind in ("headers", "body", "noread"):
        s = summary[kind]
        when = ("seen at the end, from the TCP state" if kind == "noread"
                else f"median {s['cut_median_s']} s")
        row.details.append(
            f"slow {kind}: {s['opened']} open ({s['connect_failed']} refused), cut by the server "
            f"{s['cut']} ({when}), answers {s['answers'] or '-'}")
    row.recovery = "-"
    row.details.insert(1, f"non-readers ask for pages of {noread_count} rows"
                          + ("" if p99_bound else "; the p99 is reported, not judged"))
    if not times(loaded) or (p99_bound and p99l > 2 * p99b):
        row.failures.append(f"normal client p99 {p99l:.1f} ms > 2 x baseline {p99b:.1f} ms")
    others = [r for r in loaded if r.status != 200]
    if others:
        row.failures.append(f"the normal client got {by_status(others)} with slow clients")
    if hwm / 1024 > RSS_LIMIT_MIB:
        row.failures.append(f"peak RSS {hwm / 1024:.0f} MiB > {RSS_LIMIT_MIB:.0f} MiB")
    row.statuses = f"{by_status(baseline + loaded)}"
    row.shutdown = "-"
    return row


# ------------------------------------------------------------------------------------------
# The slow clients (a process of their own).
# ------------------------------------------------------------------------------------------

TCP_ESTABLISHED = 1


async def slow_load_main(port: int, count: int, seconds: float, noread_count: int) -> None:
    """Opens `count` connections at once, a third of each kind, and keeps them for `seconds`:
    headers  a GET list request sent one byte every 0.5 s (never complete);
    body     a PUT with complete headers, Content-Length 200,000 (under the 256 KiB limit of a
             single report), its body sent at 10 bytes/s;
    noread   a GET of a page of `noread_count` rows, receive buffer 4 KiB, never read.
    Prints one line when all are connected, and at the end one JSON line per kind: how many
    opened, were refused, were cut by the server (EOF/reset seen; for `noread`, whose data is
    never read, the socket's TCP state) and what the server answered."""
    loop = asyncio.get_running_loop()
    org, switch = env("FAULTS_ORG_TOKEN"), env("FAULTS_SWITCH_TOKEN")
    kinds = [("headers", "body", "noread")[i % 3] for i in range(count)]

    async def connect(kind: str):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if kind == "noread":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (HOST, port)), 10)
            return sock
        except (OSError, asyncio.TimeoutError):
            sock.close()
            return None

    began = now()
    socks = await asyncio.gather(*(connect(kind) for kind in kinds))
    stats = {k: {"opened": 0, "connect_failed": 0, "cut_times": [], "answers": Counter()}
             for k in ("headers", "body", "noread")}
    for kind, sock in zip(kinds, socks):
        stats[kind]["opened" if sock else "connect_failed"] += 1
    until = now() + seconds
    cut: dict[int, float] = {}

    async def watch(i: int, sock: socket.socket, kind: str) -> None:
        """Reads whatever the server sends (headers/body kinds only) until it closes."""
        seen = b""
        try:
            while now() < until:
                data = await asyncio.wait_for(loop.sock_recv(sock, 65536), until - now())
                if not data:
                    break
                if len(seen) < 64:
                    seen += data[:64]
            else:
                return
        except asyncio.TimeoutError:
            return
        except OSError:
            pass
        cut.setdefault(i, now() - began)
        if seen.startswith(b"HTTP/"):
            stats[kind]["answers"][seen.split()[1].decode()] += 1

    async def dribble(i: int, sock: socket.socket, first: bytes, rest: bytes, step: int,
                      every: float) -> None:
        try:
            await loop.sock_sendall(sock, first)
            for at in range(0, len(rest), step):
                await asyncio.sleep(every)
                if now() >= until or i in cut:
                    return
                await loop.sock_sendall(sock, rest[at:at + step])
        except OSError:
            cut.setdefault(i, now() - began)

    get_head = (f"GET {LIST}?count=20 HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                f"Authorization: Bearer {org}\r\n\r\n").encode()
    body_len = 200_000
    body = (b'{"sequence":1,"nonce":"' + b"x" * (body_len - 26) + b'"}').ljust(body_len)
    tasks = []
    for i, (kind, sock) in enumerate(zip(kinds, socks)):
        if sock is None:
            continue
        if kind == "headers":
            tasks.append(dribble(i, sock, get_head[:1], get_head[1:], 1, 0.5))
            tasks.append(watch(i, sock, kind))
        elif kind == "body":
            head = (f"PUT /switch/v1/phoneCalls/{uuid.uuid4()} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                    f"Authorization: Bearer {switch}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {body_len}\r\n\r\n").encode()
            tasks.append(dribble(i, sock, head + body[:10], body[10:], 10, 1.0))
            tasks.append(watch(i, sock, kind))
        else:
            big = (f"GET {LIST}?count={noread_count} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                   f"Authorization: Bearer {org}\r\n\r\n").encode()
            tasks.append(dribble(i, sock, big, b"", 1, 0))
    running = [asyncio.ensure_future(t) for t in tasks]
    await asyncio.sleep(0.2)
    print(f"{sum(1 for s in socks if s)} connected in {now() - began:.2f} s", flush=True)
    await asyncio.sleep(max(0.0, until - now()))
    await asyncio.gather(*running, return_exceptions=True)
    for i, (kind, sock) in enumerate(zip(kinds, socks)):
        if sock is None:
            continue
        if kind == "noread":
            try:
                state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
            except OSError:
                state = 0
            if state != TCP_ESTABLISHED:
                cut.setdefault(i, seconds)
        if i in cut:
            stats[kind]["cut_times"].append(cut[i])
        sock.close()
    summary = {}
    for kind, s in stats.items():
        times = sorted(s["cut_times"])
        summary[kind] = {
            "opened": s["opened"], "connect_failed": s["connect_failed"], "cut": len(times),
            "cut_median_s": round(times[len(times) // 2], 1) if times else "-",
            "answers": " ".join(f"{k}:{v}" for k, v in sorted(s["answers"].items())),
        }
    print(json.dumps(summary), flush=True)


# ------------------------------------------------------------------------------------------
# Main.
# ------------------------------------------------------------------------------------------

SCENARIOS = {
    "dbstop": lambda: outage("dbstop", "stop", 10),
    "dbfreeze": lambda: outage("dbfreeze", "freeze", 8),
    "sigterm": None,  # two rows, see run()
    "sigterm-frozen": lambda: sigterm_frozen("sigterm-frozen", 1, 2),
    "pool1": lambda: pool_of_one("pool1"),
    "slow": lambda: slow_clients("slow", 20, True),
    "slow-large": lambda: slow_clients("slow-large", 5000, False),
}


def live_calls() -> str:
    done = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-c",
                           "SELECT count(*) FROM phone_calls WHERE ended IS NULL",
                           env("DATABASE_URL")], capture_output=True, text=True, timeout=30)
    return done.stdout.strip() or "?"


def print_table(rows: list[Row], seconds: float) -> None:
    headers = ["scenario", "requests by status", "longest ms (deadline+1s)", "lost",
               "recovery ms list/readyz", "shutdown s (limit)", "result"]
    cells = [[r.name, r.statuses, r.longest, r.lost, r.recovery, r.shutdown, r.result] for r in rows]
    widths = [max(len(str(c[i])) for c in [headers] + cells) for i in range(len(headers))]

    def line(c: list) -> str:
        return "  ".join(str(v).ljust(w) for v, w in zip(c, widths)).rstrip()

    print()
    print(f"phonecalls fault scenarios: {live_calls()} live calls, {os.cpu_count()} cores, "
          f"{seconds:.0f} s")
    print(line(headers))
    print(line(["-" * w for w in widths]))
    for c in cells:
        print(line(c))
    print()
    for r in rows:
        for d in r.details:
            print(f"  {r.name}: {d}")
        for f in r.failures:
            print(f"  {r.name}: FAIL: {f}")
    print()
    failed = [r.name for r in rows if r.failures]
    print("result: " + (f"FAIL ({', '.join(failed)})" if failed else "PASS"))


async def run(selected: list[str]) -> int:
    began = now()
    rows: list[Row] = []
    try:
        for name in selected:
            log(f"scenario {name}")
            if name == "sigterm":
                rows.append(await sigterm("sigterm-d0", 0, 5))
                rows.append(await sigterm("sigterm-d1", 1, 5))
            else:
                rows.append(await SCENARIOS[name]())
    finally:
        for proc in STARTED:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        thaw_database()
    print_table(rows, now() - began)
    return 3 if any(r.failures for r in rows) else 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--slow-load":
        asyncio.run(slow_load_main(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]),
                                   int(sys.argv[5])))
        return 0
    selected = sys.argv[1].split(",") if len(sys.argv) > 1 and sys.argv[1] else list(SCENARIOS)
    unknown = [s for s in selected if s not in SCENARIOS]
    if unknown:
        print(f"faults.py: unknown scenario {', '.join(unknown)}; "
              f"known: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(selected))
    except KeyboardInterrupt:
        print("faults.py: interrupted; the services were stopped and the database thawed",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
