#!/usr/bin/python3
"""Runs the benchmark scenarios on every runtime and writes the results.

Called by perf/run after the build; it can also be called directly:

    perf/report/runner.py --mode {smoke,quick,full} [--only SCENARIO] --build DIR [--results DIR]

Method
  * Every measurement is one process run; its last stdout line is a JSON object.
  * Runtimes are alternated within each repetition (A B C A B C ...), so slow
    drifts of the machine spread over all of them.
  * Single-threaded work is pinned to core 0; servers to core 0 and the load
    generator to core 1; two-thread work to cores 0 and 1 (taskset).
  * Each run has a time limit; a process that overruns is killed by its pid.
  * The summary per (row, runtime) is median, MAD, min and max over the runs.

Writes latest.json (raw runs and summaries) and, through report.py,
latest.md and one PNG chart per row group into --results, by default
perf/results/tmp/ (not in git). It never writes the committed results or
README.md: that is report.py --publish (perf/run --publish).
"""

import argparse
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PERF = os.path.dirname(HERE)
TOP = os.path.dirname(PERF)
sys.path.insert(0, HERE)
import report  # noqa: E402

RUNTIMES = ["zokio", "zokio_epoll", "zokio_kqueue", "zokio_lockfree", "zokio_provided", "zokio_each",
            "asio_epoll", "asio_uring",
            "liburing_raw", "tokio", "go", "node"]

# zokio's own programs on a backend forced with ZOKIO_BACKEND (zokio/backend.hpp):
# the "zokio" column runs the process's default (io_uring where the kernel
# allows it). kqueue is libkqueue on Linux (a correctness and cost figure, not
# a BSD/macOS speed), measured only when perf/run built the programs against
# it (ZOKIO_PERF_KQUEUE=1).
BACKEND_COLUMNS = {"zokio_epoll": "epoll", "zokio_kqueue": "kqueue"}

# The zokio echo server receiving through a provided_buffer_pool of 256
# buffers (one per connection of the largest shape, as many as the
# async_read_some sessions' own buffers): zokio_provided with one
# async_receive_provided per message, zokio_each with one async_receive_each
# loop per connection. The "zokio" column beside them is async_read_some.
EACH_COLUMNS = {"zokio_provided": ["--provided", "256"],
                "zokio_each": ["--provided", "256", "--each", "1"]}


def with_backends(runtimes):
    """runtimes, with zokio's backend columns right after "zokio"."""
    out = []
    for rt in runtimes:
        out.append(rt)
        if rt == "zokio":
            out.extend(BACKEND_COLUMNS)
    return tuple(out)
SERVER_CORE = "0"
LOAD_CORE = "1"
BOTH_CORES = "0,1"


class RunError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --- processes -------------------------------------------------------------------

def run_json(cmd, timeout, env=None):
    """Runs cmd (a list), returns its last JSON stdout line as a dict."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()  # by pid
        proc.communicate()
        raise RunError(f"timed out after {timeout}s: {' '.join(cmd)}")
    if proc.returncode != 0:
        raise RunError(f"exit {proc.returncode}: {' '.join(cmd)}\n{err.strip()[-2000:]}")
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RunError(f"no JSON result from: {' '.join(cmd)}\n{err.strip()[-2000:]}")


_port = [21000 + (os.getpid() % 2000) * 10]


def free_port():
    for _ in range(1000):
        _port[0] += 1
        if _port[0] > 60000:
            _port[0] = 21000
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", _port[0]))
                return _port[0]
            except OSError:
                continue
    raise RunError("no free port")


class Server:
    """An echo server process, pinned to the server core, stopped by pid."""

    def __init__(self, cmd, port, env=None, cores=SERVER_CORE):
        self.cmd = cmd
        self.port = port
        self.stats = {}
        self.out = tempfile.TemporaryFile(mode="w+")
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(PRIO + ["taskset", "-c", cores] + cmd,
                                     stdout=self.out, stderr=self.err, text=True, env=env)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RunError(f"server exited ({self.proc.returncode}): {' '.join(cmd)}\n"
                               f"{self._tail(self.err)}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RunError(f"server did not listen on {port}: {' '.join(cmd)}")

    @staticmethod
    def _tail(f):
        f.seek(0)
        return f.read()[-2000:]

    @property
    def pid(self):
        return self.proc.pid

    def rss_bytes(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RunError("no VmRSS")

    def stop(self):
        """SIGTERM (the server prints its counters), SIGKILL after 3 s; by pid."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.seek(0)
        for line in self.out.read().splitlines():
            if line.startswith("{"):
                try:
                    self.stats = json.loads(line).get("stats") or {}
                except ValueError:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# --- other work on the machine ---------------------------------------------------

def cpu_busy(interval=0.05):
    """Fraction of all CPUs busy (not idle, not iowait) over interval seconds."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = sample()
    time.sleep(interval)
    t1, i1 = sample()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


QUIET = 0.2       # busier than this between runs: someone else is using the machine
QUIET_WAIT = 1    # seconds to wait for the machine to become quiet before a run

# As root, measured processes run at nice -20, so that other work on the
# machine (a compiler) takes what they leave instead of halving their share.
PRIO = ["nice", "-n", "-20"] if os.geteuid() == 0 else []


def wait_for_quiet():
    """Waits until no other work keeps the CPUs busy (at most QUIET_WAIT s).
    Returns the busy fraction seen last; a run that starts above QUIET is
    flagged in the results."""
    deadline = time.monotonic() + QUIET_WAIT
    busy = cpu_busy()
    while busy > QUIET and time.monotonic() < deadline:
        time.sleep(0.5)
        busy = cpu_busy(0.2)
    return busy


# --- runtimes --------------------------------------------------------------------

class Paths:
    def __init__(self, build, cargo_profile="release"):
        self.build = build
        self.bin = os.path.join(build, "bin")
        self.cargo = os.path.join(build, "cargo", cargo_profile)
        self.go = os.path.join(build, "go")

    @staticmethod
    def backend_prefix(rt):
        """For a zokio backend column: the prefix that forces its backend, or
        None if it was not built; [] for any other column."""
        b = BACKEND_COLUMNS.get(rt)
        if b is None:
            return []
        if b == "kqueue" and os.environ.get("ZOKIO_PERF_KQUEUE") != "1":
            return None
        return ["env", f"ZOKIO_BACKEND={b}"]

    def _variant(self, rt, find):
        """find("zokio") with the backend column's prefix, for rt a backend column."""
        prefix = self.backend_prefix(rt)
        base = find("zokio")
        return prefix + base if prefix is not None and base else None

    def bench(self, rt):
        """Command prefix of the post/timer program for rt, or None if not built."""
        if rt in BACKEND_COLUMNS:
            return self._variant(rt, self.bench)
        if rt in ("zokio", "zokio_lockfree", "asio_epoll", "asio_uring"):
            # zokio_lockfree: zokio built with Boost.Lockfree's queue as its
            # inject queue (ZOKIO_INJECT_QUEUE_LOCKFREE), in the rows that
            # queue decides.
            p = os.path.join(self.bin, f"perf_bench_{rt}")
        elif rt == "tokio":
            p = os.path.join(self.cargo, "perf_bench_tokio")
        elif rt == "liburing_raw":  # timer_storm only: one kernel timeout per timer
            p = os.path.join(self.bin, "perf_timer_storm_liburing_raw")
        elif rt == "zokio_no_cached_reads":  # file_io only: every read through the ring
            base = self.bench("zokio")
            return ["env", "ZOKIO_FILE_READ_NOWAIT=0"] + base if base else None
        elif rt == "pread_pool":  # file_io only: threads calling pread/pwrite
            p = os.path.join(self.bin, "perf_bench_asio_epoll")
            return [p, "--impl", "pread"] if os.access(p, os.X_OK) else None
        else:
            return None
        return [p] if os.access(p, os.X_OK) else None

    def echo(self, rt):
        """Command prefix of the echo server for rt, or None if not built."""
        if rt in BACKEND_COLUMNS:
            return self._variant(rt, self.echo)
        if rt in EACH_COLUMNS:
            return self.echo("zokio")
        if rt in ("zokio", "asio_epoll", "asio_uring", "liburing_raw", "zokio_asio"):
            p = os.path.join(self.bin, f"perf_echo_server_{rt}")
            return [p] if os.access(p, os.X_OK) else None
        if rt == "tokio":
            p = os.path.join(self.cargo, "perf_echo_tokio")
            return [p] if os.access(p, os.X_OK) else None
        if rt == "go":
            p = os.path.join(self.go, "perf_echo_go")
            return [p] if os.access(p, os.X_OK) else None
        if rt == "node":
            node = shutil.which("node")
            js = os.path.join(PERF, "runtimes", "node", "echo.js")
            return [node, js] if node else None
        return None

    def http(self, rt):
        """Command prefix of the Beast HTTP server for rt, or None if not built."""
        if rt in BACKEND_COLUMNS:
            return self._variant(rt, self.http)
        if rt in ("zokio", "asio_epoll", "asio_uring"):
            p = os.path.join(self.bin, f"perf_http_server_{rt}")
            return [p] if os.access(p, os.X_OK) else None
        return None

    def loadgen(self):
        p = os.path.join(self.bin, "perf_loadgen")
        return [p] if os.access(p, os.X_OK) else None


# --- experiments -----------------------------------------------------------------
# An experiment is one kind of process run, repeated per runtime; it yields
# several table rows (metrics picked from its JSON result).

class Row:
    def __init__(self, id, group, key, unit, better="lower", scale=1.0):
        self.id, self.group, self.key, self.unit, self.better, self.scale = \
            id, group, key, unit, better, scale


class Experiment:
    def __init__(self, scenario, name, runtimes, rows, timeout):
        self.scenario = scenario      # perf/scenarios/<scenario>
        self.name = name              # unique experiment name
        self.runtimes = runtimes
        self.rows = rows
        self.timeout = timeout

    def available(self, paths, rt):
        raise NotImplementedError

    def skip_reason(self):
        """Why the experiment cannot run on this machine (None: it can)."""
        return None

    def run_once(self, paths, rt):
        raise NotImplementedError


class BenchExperiment(Experiment):
    """A post/timer workload: perf_bench_<rt> SCENARIO [args]."""

    def __init__(self, scenario, name, args, rows, threads=1, timeout=120,
                 runtimes=("zokio", "asio_epoll", "asio_uring", "tokio"), cores=None):
        super().__init__(scenario, name, list(with_backends(runtimes)), rows, timeout)
        self.args = args
        self.threads = threads
        self.cores = cores or (SERVER_CORE if threads == 1 else BOTH_CORES)

    def available(self, paths, rt):
        return paths.bench(rt) is not None

    def run_once(self, paths, rt):
        cmd = PRIO + ["taskset", "-c", self.cores] + paths.bench(rt) + [self.scenario] + \
            [str(a) for a in self.args] + ["--threads", str(self.threads)]
        return run_json(cmd, self.timeout)


# The rows the inject queue (work handed in from other threads) decides get
# the zokio_lockfree column beside zokio's.
INJECT_RUNTIMES = ("zokio", "zokio_lockfree", "asio_epoll", "asio_uring", "tokio")

ECHO_RUNTIMES = ("zokio", "asio_epoll", "asio_uring", "liburing_raw", "tokio", "go", "node")


class FileExperiment(BenchExperiment):
    """file_io: a file of size_mb MiB under the build directory, made once
    and read once before the first run, so every run reads the page cache."""

    def __init__(self, name, size_mb, args, rows):
        super().__init__("file_io", name, args, rows,
                         runtimes=("zokio", "zokio_no_cached_reads", "asio_uring", "pread_pool", "tokio"))
        self.size_mb = size_mb

    def run_once(self, paths, rt):
        path = os.path.join(paths.build, f"file_io_{self.size_mb}m.dat")
        if not os.path.exists(path) or os.path.getsize(path) != self.size_mb << 20:
            with open(path + ".tmp", "wb") as f:
                block = os.urandom(1 << 20)
                for _ in range(self.size_mb):
                    f.write(block)
            os.replace(path + ".tmp", path)
        with open(path, "rb") as f:  # into the page cache
            while f.read(8 << 20):
                pass
        cmd = PRIO + ["taskset", "-c", self.cores] + paths.bench(rt) + ["file_io", "--file", path] + \
            [str(a) for a in self.args] + ["--threads", "1"]
        return run_json(cmd, self.timeout)


class EchoExperiment(Experiment):
    """An echo server on core 0 under perf_loadgen on core 1."""

    def __init__(self, name, conns, size, inflight, duration, warmup, rows,
                 runtimes=ECHO_RUNTIMES, syscalls=False, scenario="echo_tcp",
                 server_args=None, server_cores=SERVER_CORE, programs=None, backends=None):
        # programs: runtime column -> echo program measured in it, when not the
        # runtime's own (the zokio column of the "Asio sockets" rows); those
        # rows measure the default backend only. backends: whether zokio's
        # backend columns are measured too (default: unless programs is given).
        if backends if backends is not None else not programs:
            runtimes = with_backends(runtimes)
        super().__init__(scenario, name, list(runtimes), rows, timeout=duration + warmup + 60)
        self.programs = programs or {}
        self.conns, self.size, self.inflight = conns, size, inflight
        self.duration, self.warmup = duration, warmup
        self.syscalls = syscalls
        # server_args(rt): extra server arguments per runtime (thread counts).
        self.server_args = server_args or (lambda rt: [])
        self.server_cores = server_cores

    def available(self, paths, rt):
        return paths.echo(self.programs.get(rt, rt)) is not None and paths.loadgen() is not None

    def run_once(self, paths, rt):
        port = free_port()
        with Server(paths.echo(self.programs.get(rt, rt)) + ["--port", str(port)] + self.server_args(rt), port,
                    cores=self.server_cores) as srv:
            cmd = PRIO + ["taskset", "-c", LOAD_CORE] + paths.loadgen() + [
                "--port", str(port), "--conns", str(self.conns), "--size", str(self.size),
                "--inflight", str(self.inflight), "--duration", str(self.duration),
                "--warmup", str(self.warmup), "--server-pid", str(srv.pid)]
            if self.syscalls:
                res = self._with_syscall_count(cmd, srv)
            else:
                res = run_json(cmd, self.timeout)
        # The server's own counters (zokio's statistics(), liburing_raw's), over
        # every message of the run, warm-up and drain included.
        res["stats"] = srv.stats
        if srv.stats.get("kernel_entries") and res.get("total_messages"):
            res["server_kernel_entries_per_msg"] = srv.stats["kernel_entries"] / res["total_messages"]
        return res

    def _with_syscall_count(self, cmd, srv):
        """Counts the server's system calls over the whole load run (perf stat)."""
        events = "raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter"
        perf = subprocess.Popen(["perf", "stat", "-x", ",", "-e", events, "-p", str(srv.pid)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
        try:
            res = run_json(cmd, self.timeout)
        finally:
            perf.send_signal(signal.SIGINT)
            try:
                _, err = perf.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                perf.kill()
                _, err = perf.communicate()
        counts = {}
        for line in err.splitlines():
            f = line.split(",")
            if len(f) > 2 and f[0].strip().isdigit():
                counts[f[2]] = int(f[0])
        total = counts.get("raw_syscalls:sys_enter")
        msgs = res.get("total_messages") or 0
        if total is None or not msgs:
            raise RunError(f"perf stat gave no syscall count: {err.strip()[-500:]}")
        res["server_syscalls_per_msg"] = total / msgs
        res["server_uring_enter_per_msg"] = counts.get("syscalls:sys_enter_io_uring_enter", 0) / msgs
        return res


class ChurnExperiment(EchoExperiment):
    """Connection churn: perf_loadgen --churn K (connect, echo 16 bytes, close
    with an RST) against an echo server on core 0, the generator on core 1."""

    def __init__(self, name, churn, duration, warmup, rows, runtimes=ECHO_RUNTIMES, env=None):
        # With an environment of its own (zokio's accept mode), the default
        # backend only.
        super().__init__(name, churn, 16, 1, duration, warmup, rows, runtimes=runtimes,
                         scenario="accept_churn", backends=not env)
        self.churn = churn
        self.env = env  # extra environment of the server (zokio's accept mode)

    def run_once(self, paths, rt):
        port = free_port()
        env = dict(os.environ, **self.env) if self.env else None
        with Server(paths.echo(rt) + ["--port", str(port)], port, env=env) as srv:
            cmd = PRIO + ["taskset", "-c", LOAD_CORE] + paths.loadgen() + [
                "--port", str(port), "--churn", str(self.churn), "--duration", str(self.duration),
                "--warmup", str(self.warmup), "--server-pid", str(srv.pid)]
            res = run_json(cmd, self.timeout)
        res["stats"] = srv.stats
        return res


def proc_cpu_us(pid):
    """User + system CPU time of a process so far, in microseconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1e6 / os.sysconf("SC_CLK_TCK")


def wrk_duration_us(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise RunError(f"wrk: unreadable latency {text!r}")
    return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]


class HttpExperiment(Experiment):
    """A Beast HTTP "hello" server on core 0 under wrk (keep-alive) on core 1."""

    def __init__(self, conns, duration, rows, runtimes=("zokio", "asio_epoll", "asio_uring")):
        super().__init__("http_hello", "http_hello", list(with_backends(runtimes)), rows,
                         timeout=duration + 60)
        self.conns, self.duration = conns, duration

    def available(self, paths, rt):
        return paths.http(rt) is not None and shutil.which("wrk") is not None

    def run_once(self, paths, rt):
        port = free_port()
        with Server(paths.http(rt) + ["--port", str(port)], port) as srv:
            cpu0 = proc_cpu_us(srv.pid)
            cmd = PRIO + ["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{self.conns}",
                          f"-d{self.duration}s", "--latency", f"http://127.0.0.1:{port}/"]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout)
            cpu1 = proc_cpu_us(srv.pid)
        out = proc.stdout
        if proc.returncode != 0:
            raise RunError(f"wrk exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
        # A wrong answer or a dropped connection spoils the row: fail loudly.
        bad = re.search(r"(Non-2xx or 3xx responses|Socket errors):.*", out)
        if bad:
            raise RunError(f"wrk: {bad.group(0)}")
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        total = re.search(r"(\d+) requests in", out)
        if not rps or not total:
            raise RunError(f"wrk: no result\n{out[-1000:]}")
        res = {"requests_per_sec": float(rps.group(1)), "requests": int(total.group(1)),
               "conns": self.conns}
        for pct, key in (("50", "p50_us"), ("99", "p99_us")):
            m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
            if m:
                res[key] = wrk_duration_us(m.group(1))
        res["server_cpu_us_per_req"] = (cpu1 - cpu0) / max(1, res["requests"])
        res["stats"] = srv.stats
        return res


class IdleMemoryExperiment(Experiment):
    """RSS of an echo server before and after N idle connections."""

    def __init__(self, conns, rows, runtimes=ECHO_RUNTIMES, name="idle_memory", server_args=()):
        super().__init__("idle_memory", name, list(with_backends(runtimes)), rows, timeout=120)
        self.conns = conns
        self.server_args = list(server_args)

    def available(self, paths, rt):
        return paths.echo(rt) is not None and paths.loadgen() is not None

    def skip_reason(self):
        # The server and the load generator each hold one descriptor per
        # connection, plus their own (rings, pipes, libraries): perf/run
        # raises the limit as far as the machine lets it.
        need = self.conns + 1000
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < need:
            return (f"{self.conns} connections need {need} descriptors per process; "
                    f"the limit here is {soft} (hard {hard}), and raising it needs "
                    f"CAP_SYS_RESOURCE")
        return None

    def run_once(self, paths, rt):
        port = free_port()
        with Server(paths.echo(rt) + ["--port", str(port)] + self.server_args, port) as srv:
            # One echo first, so lazily built state (buffers, thread pools) exists.
            run_json(["taskset", "-c", LOAD_CORE] + paths.loadgen() +
                     ["--port", str(port), "--idle", "1", "--hold-ms", "0"], 30)
            time.sleep(0.3)
            before = srv.rss_bytes()
            # The load generator opens N connections, echoes one message on each,
            # then holds them open; it prints {"ready": true} when they are idle.
            lg = subprocess.Popen(["taskset", "-c", LOAD_CORE] + paths.loadgen() +
                                  ["--port", str(port), "--idle", str(self.conns),
                                   "--hold-ms", "60000"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                # Bounded: a server that never answers some connection must
                # fail the run, not hang the harness.
                wait_s = max(60, self.conns // 1000)
                ready_fds, _, _ = select.select([lg.stdout], [], [], wait_s)
                line = lg.stdout.readline() if ready_fds else ""
                if not ready_fds:
                    raise RunError(f"idle load generator: no connection report within {wait_s} s "
                                   "(the server did not echo on every connection)")
                if not line.startswith("{"):
                    raise RunError(f"idle load generator failed: {lg.stderr.read()[-1000:]}")
                ready = json.loads(line)
                time.sleep(1.0)
                after = srv.rss_bytes()
            finally:
                lg.kill()  # by pid
                lg.communicate()
        return {"conns": self.conns, "rss_before": before, "rss_after": after,
                "bytes_per_conn": (after - before) / self.conns,
                "connect_ms": ready.get("connect_ms")}


# --- the scenario catalogue ------------------------------------------------------

def catalogue(mode):
    """Experiments with their parameters for mode smoke, quick or full."""
    q = {"smoke": 0, "quick": 1, "full": 2}[mode]

    def pick(smoke, quick, full):
        return (smoke, quick, full)[q]

    ex = []
    # 1. chained_post
    n = pick(100_000, 3_000_000, 10_000_000)
    ex.append(BenchExperiment("chained_post", "chained_post", ["--handlers", n], [
        Row("chained_post", "post", "ns_per_handler", "ns/handler")]))
    # 2. burst_post
    n = pick(20_000, 300_000, 1_000_000)
    # The context runs on core 0, the posting thread on core 1.
    ex.append(BenchExperiment("burst_post", "burst_post", ["--handlers", n, "--burst", 1000], [
        Row("burst_post (bursts of 1000)", "post", "ns_per_handler", "ns/handler")],
        cores=BOTH_CORES, runtimes=INJECT_RUNTIMES))
    # 3. timer_storm
    n = pick(20_000, 300_000, 1_000_000)
    ex.append(BenchExperiment("timer_storm", "timer_storm",
                              ["--timers", n, "--delay-ms", pick(50, 200, 300), "--window-ms", 100], [
        Row("timer_storm arm", "timers", "arm_ns_per_timer", "ns/timer"),
        Row("timer_storm arm+fire CPU", "timers", "cpu_ns_per_timer", "ns/timer"),
        Row("timer_storm all fired after", "timer_storm_total", "total_ms", "ms")],
        runtimes=("zokio", "asio_epoll", "asio_uring", "liburing_raw", "tokio")))
    # 4. sleep_precision
    n = pick(50, 300, 1000)
    ex.append(BenchExperiment("sleep_precision", "sleep_precision", ["--count", n, "--sleep-us", 1000], [
        Row("sleep 1 ms: mean overshoot", "sleep_precision", "mean_over_us", "µs"),
        Row("sleep 1 ms: p99 overshoot", "sleep_precision", "p99_over_us", "µs")]))
    # 5. Tokio runtime benchmark shapes, on 1 and 2 threads
    shapes = [
        ("spawn_many", ["--tasks", 10_000, "--iters", pick(5, 50, 100)]),
        ("yield_many", ["--tasks", 200, "--yields", pick(100, 2000, 5000)]),
        ("ping_pong", ["--pings", 1000, "--iters", pick(5, 150, 300)]),
        ("chained_spawn", ["--depth", 1000, "--iters", pick(5, 500, 1000)]),
    ]
    for threads in (1, 2):
        for name, args in shapes:
            ex.append(BenchExperiment(name, f"{name}_t{threads}", args, [
                Row(f"{name} ({threads} thread{'s' if threads > 1 else ''})",
                    f"rt_shapes_t{threads}", "ns_per_op", "ns/op")], threads=threads))
    # 5b. The same shapes on thread pools of 2 workers: zokio::thread_pool,
    # asio::thread_pool (epoll and io_uring builds), Tokio multi_thread; and
    # handlers submitted from outside, to an idle and to a busy pool.
    outside = pick(20_000, 300_000, 1_000_000)
    pool_shapes = shapes + [("spawn_outside", ["--tasks", outside]),
                            ("spawn_outside", ["--tasks", outside, "--busy", 1])]
    for name, args in pool_shapes:
        busy = "--busy" in args
        label = "spawn_outside, busy" if busy else name
        key = f"{name}{'_busy' if busy else ''}"
        ex.append(BenchExperiment(name, f"{key}_pool2", args + ["--pool", 1], [
            Row(f"{label} (pool, 2 workers)", "rt_shapes_pool2", "ns_per_op", "ns/op")],
            threads=2, **({"runtimes": INJECT_RUNTIMES} if name == "spawn_outside" else {})))
    ex.append(BenchExperiment("spawn_outside", "spawn_outside_t2", ["--tasks", outside], [
        Row("spawn_outside (2 threads)", "rt_shapes_t2", "ns_per_op", "ns/op")], threads=2,
        runtimes=INJECT_RUNTIMES))
    # 5c. future_ops: one operation through each completion style (the
    # zokio::use_future styles exist in zokio's column only). Two cores: the
    # get() styles wait on one thread while the context runs on another.
    n = pick(2_000, 50_000, 200_000)
    styles = [("zokio_future", "zokio::use_future, co_await"),
              ("zokio_future_then", "zokio::use_future, then()"),
              ("zokio_future_get", "zokio::use_future, get() from another thread"),
              ("asio_future", "asio::use_future, get() from another thread"),
              ("use_awaitable", "asio::use_awaitable"),
              ("callback", "callbacks")]
    ops = [("timer", "zero-length timer wait"), ("post", "post round trip"),
           ("tcp", "TCP echo read")]
    ex.append(BenchExperiment("future_ops", "future_ops", ["--ops", n, "--repeats", pick(1, 3, 3)], [
        Row(f"{olabel}: {slabel}", "future_ops", f"{op}_{style}_ns", "ns/op")
        for op, olabel in ops for style, slabel in styles],
        runtimes=("zokio", "zokio_lockfree", "asio_epoll", "asio_uring"), cores=BOTH_CORES, timeout=300))
    # 5d. file_io: random 4 KiB reads at 1, 32 and 128 in flight, sequential
    # 1 MiB reads and writes, from a file in the page cache (1 GiB in a full
    # run); one thread (pread_pool: as many threads as operations in flight;
    # zokio_no_cached_reads: zokio with ZOKIO_FILE_READ_NOWAIT=0, every read
    # a ring request, as before reads were tried from the page cache first).
    size_mb = pick(16, 256, 1024)
    for depth in (1, 32, 128):
        ex.append(FileExperiment(f"file_io_rand4k_d{depth}", size_mb,
                                 ["--mode", "rand4k", "--depth", depth, "--ops", pick(2_000, 100_000, 300_000)], [
            Row(f"file 4 KiB random reads, {depth} in flight", "file_io", "ops_per_sec", "ops/s", "higher"),
            Row(f"file 4 KiB random reads, {depth} in flight: CPU", "file_io_cpu", "cpu_ns_per_op", "ns/op")]))
    # (file_mode, not mode: the catalogue's own mode is read further down.)
    for file_mode, what in (("seqread", "reads"), ("seqwrite", "writes")):
        ex.append(FileExperiment(f"file_io_{file_mode}", size_mb,
                                 ["--mode", file_mode, "--depth", 1, "--ops", pick(16, 256, 1024)], [
            Row(f"file 1 MiB sequential {what}", "file_io", "mib_per_sec", "MiB/s", "higher")]))
    # 5e. A signal to its handler (zokio::signal_set against asio::signal_set),
    # and spawn-and-wait of /bin/true (zokio::process against Boost.Process
    # v2 on Asio).
    ex.append(BenchExperiment("signal_latency", "signal_latency", ["--count", pick(50, 1000, 3000)], [
        Row("signal delivery: p50", "signals", "p50_us", "µs"),
        Row("signal delivery: p99", "signals", "p99_us", "µs")],
        runtimes=("zokio", "asio_epoll", "asio_uring")))
    ex.append(BenchExperiment("spawn_wait", "spawn_wait", ["--count", pick(20, 300, 1000)], [
        Row("spawn and wait /bin/true", "signals", "us_per_spawn", "µs/child")],
        runtimes=("zokio", "asio_epoll", "asio_uring"), timeout=300))
    # 6. echo_tcp (+ 8. system calls per message on the 64 x 64 B shape)
    dur, warm = pick(1, 0.7, 2), pick(0.3, 0.2, 0.5)
    echo_shapes = [
        ("1 conn ping-pong 64 B", 1, 64, 1, False),
        ("64 conns x 64 B", 64, 64, 1, True),
        ("64 conns x 4 KiB", 64, 4096, 1, False),
        ("256 conns x 8 in flight", 256, 64, 8, False),
    ]
    if mode == "smoke":
        echo_shapes = [("64 conns x 64 B", 64, 64, 1, False),
                       ("256 conns x 8 in flight", 256, 64, 8, False)]
    for label, conns, size, inflight, sysc in echo_shapes:
        rows = [Row(f"echo {label}: throughput", "echo_throughput", "msgs_per_sec", "msg/s", "higher"),
                Row(f"echo {label}: p50", "echo_latency", "p50_us", "µs"),
                Row(f"echo {label}: p99", "echo_latency", "p99_us", "µs"),
                Row(f"echo {label}: p99.9", "echo_latency_tail", "p999_us", "µs"),
                Row(f"echo {label}: server CPU", "echo_cpu", "server_cpu_us_per_msg", "µs/msg")]
        ex.append(EchoExperiment(f"echo_{conns}x{size}x{inflight}", conns, size, inflight,
                                 dur, warm, rows))
        if sysc and mode != "smoke":
            ex.append(EchoExperiment(f"syscalls_{conns}x{size}", conns, size, inflight, dur, warm, [
                Row(f"syscalls/msg ({label})", "syscalls", "server_syscalls_per_msg", "syscalls/msg"),
                Row(f"io_uring_enter/msg ({label})", "syscalls", "server_uring_enter_per_msg",
                    "calls/msg"),
                Row(f"kernel entries/msg, own counters ({label})", "syscalls",
                    "server_kernel_entries_per_msg", "entries/msg")], syscalls=True, scenario="syscalls_per_message"))
    # 6a. Asio's own sockets (boost::asio::ip::tcp) on zokio::io_context, the
    # program that changes only its context: in the zokio column, against
    # asio_epoll run again, interleaved.
    for label, conns, size, inflight, _ in echo_shapes:
        if size != 64 or inflight != 1:
            continue
        what = f"echo {label}, Asio sockets on zokio::io_context"
        rows = [Row(f"{what}: throughput", "echo_asio_sockets", "msgs_per_sec", "msg/s", "higher"),
                Row(f"{what}: p50", "echo_asio_sockets_latency", "p50_us", "µs"),
                Row(f"{what}: p99", "echo_asio_sockets_latency", "p99_us", "µs"),
                Row(f"{what}: server CPU", "echo_asio_sockets_cpu", "server_cpu_us_per_msg", "µs/msg")]
        ex.append(EchoExperiment(f"echo_{conns}x{size}x{inflight}_asio_sockets", conns, size, inflight,
                                 dur, warm, rows, runtimes=("zokio", "asio_epoll"),
                                 programs={"zokio": "zokio_asio"}))
    # 6a'. The receive loop against async_read_some and async_receive_provided
    # on the same server (EACH_COLUMNS), one thread, io_uring, beside
    # asio_epoll.
    for label, conns, size, inflight, _ in echo_shapes:
        if size != 64:
            continue
        what = f"echo {label}, receive loop"
        rows = [Row(f"{what}: throughput", "echo_each", "msgs_per_sec", "msg/s", "higher"),
                Row(f"{what}: p99", "echo_each_latency", "p99_us", "µs"),
                Row(f"{what}: server CPU", "echo_each_cpu", "server_cpu_us_per_msg", "µs/msg")]
        ex.append(EchoExperiment(f"echo_{conns}x{size}x{inflight}_each", conns, size, inflight,
                                 dur, warm, rows,
                                 runtimes=("zokio", "zokio_provided", "zokio_each", "asio_epoll"),
                                 server_args=lambda rt: EACH_COLUMNS.get(rt, []), backends=False))
    # 6b. echo on two workers: zokio::thread_pool and asio::thread_pool of 2
    # workers, Tokio multi_thread with 2 workers. The server may use both
    # cores, so it shares core 1 with the load generator: these rows compare
    # the runtimes with each other, not with the one-thread rows above.
    pool_args = {"tokio": ["--threads", "2"]}
    for label, conns, size, inflight, _ in echo_shapes:
        if conns < 64 or size != 64:
            continue
        rows = [Row(f"echo {label} (pool, 2 workers): throughput", "echo_pool2_throughput",
                    "msgs_per_sec", "msg/s", "higher"),
                Row(f"echo {label} (pool, 2 workers): p99", "echo_pool2_latency", "p99_us", "µs")]
        ex.append(EchoExperiment(f"echo_{conns}x{size}x{inflight}_pool2", conns, size, inflight,
                                 dur, warm, rows, runtimes=("zokio", "asio_epoll", "asio_uring", "tokio"),
                                 server_args=lambda rt: pool_args.get(rt, ["--threads", "2", "--pool", "1"]),
                                 server_cores=BOTH_CORES))
    # 6c. accept_churn: connection set-up and tear-down (the accept loop),
    # 16 connections at a time; and zokio with one IORING_OP_ACCEPT per
    # async_accept instead of its multishot accept request.
    churn_rows = lambda what: [
        Row(f"{what}: connections", "accept_churn", "conns_per_sec", "conn/s", "higher"),
        Row(f"{what}: p99", "accept_churn_latency", "p99_us", "µs"),
        Row(f"{what}: server CPU", "accept_churn_cpu", "server_cpu_us_per_conn", "µs/conn")]
    ex.append(ChurnExperiment("accept_churn", 16, dur, warm, churn_rows("accept churn 16 at a time")))
    ex.append(ChurnExperiment("accept_churn_single", 16, dur, warm,
                              churn_rows("accept churn 16 at a time, zokio single accepts"),
                              runtimes=("zokio",), env={"ZOKIO_MULTISHOT_ACCEPT": "0"}))
    # 6d. HTTP "hello" over Beast, keep-alive, under wrk (zokio vs Asio)
    ex.append(HttpExperiment(64, pick(1, 1, 2), [
        Row("http hello 64 conns: requests", "http", "requests_per_sec", "req/s", "higher"),
        Row("http hello 64 conns: p99", "http", "p99_us", "µs"),
        Row("http hello 64 conns: server CPU", "http", "server_cpu_us_per_req", "µs/req")]))
    # 7. idle_memory
    ex.append(IdleMemoryExperiment(pick(200, 2_000, 10_000), [
        Row("idle memory per connection", "idle_memory", "bytes_per_conn", "bytes/conn")]))
    # The zokio echo server receiving into a shared provided_buffer_pool of 64
    # x 4 KiB buffers (--provided 64): idle connections hold no buffer.
    ex.append(IdleMemoryExperiment(pick(200, 2_000, 10_000), [
        Row("idle memory per connection, provided buffers", "idle_memory_provided",
            "bytes_per_conn", "bytes/conn")],
        runtimes=("zokio",), name="idle_memory_provided", server_args=["--provided", "64"]))
    # The same pool, each session one async_receive_each loop (--each 1): a
    # handler stored once instead of an operation per receive.
    ex.append(IdleMemoryExperiment(pick(200, 2_000, 10_000), [
        Row("idle memory per connection, receive loop", "idle_memory_each",
            "bytes_per_conn", "bytes/conn")],
        runtimes=("zokio",), name="idle_memory_each", server_args=["--provided", "64", "--each", "1"]))
    # The same at 100,000 connections (full mode only): the figure must hold
    # as connections grow. Skipped, with the reason, where the descriptor
    # limit cannot be raised that far.
    if mode == "full":
        ex.append(IdleMemoryExperiment(100_000, [
            Row("idle memory per connection, receive loop, 100,000 connections",
                "idle_memory_each", "bytes_per_conn", "bytes/conn")],
            runtimes=("zokio",), name="idle_memory_each_100k",
            server_args=["--provided", "64", "--each", "1"]))
    # Echo first, memory-hungry work last: after timer_storm has faulted in and
    # freed a few GB, loopback TCP on this virtual machine runs several times
    # slower for minutes (the host takes the freed pages back and hands them
    # out again on the next faults).
    for i, e in enumerate(ex):
        e.index = i  # the table keeps this order
    order = {"echo_tcp": 0, "http_hello": 0, "syscalls_per_message": 1, "idle_memory": 2,
             "timer_storm": 9}
    ex.sort(key=lambda e: order.get(e.scenario, 5))
    return ex


# --- aggregation -----------------------------------------------------------------

def summarize(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    med = statistics.median(vals)
    return {"median": med, "min": min(vals), "max": max(vals),
            "mad": statistics.median([abs(v - med) for v in vals]), "n": len(vals)}


def machine_info(build):
    def cmd(*c):
        try:
            return subprocess.run(c, capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            cpu = m.group(1) if m else ""
    except OSError:
        pass
    flags = ""
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            cache = f.read()
        bt = re.search(r"CMAKE_BUILD_TYPE:STRING=(.*)", cache)
        fl = re.search(r"CMAKE_CXX_FLAGS_RELEASE:STRING=(.*)", cache)
        flags = f"CMAKE_BUILD_TYPE={bt.group(1) if bt else '?'}, CXX flags: " \
                f"-std=c++20 {fl.group(1) if fl else ''}".strip()
    except OSError:
        pass

    def dpkg(p):
        return cmd("dpkg-query", "-W", "-f=${Version}", p)
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "compiler": cmd("g++", "--version").splitlines()[0] if cmd("g++", "--version") else "",
        "boost": dpkg("libboost1.81-dev"),
        "liburing": dpkg("liburing-dev"),
        "rustc": cmd("/usr/bin/rustc", "--version"),
        "tokio": dpkg("librust-tokio-dev"),
        "go": cmd("/usr/bin/go", "version"),
        "node": cmd("node", "--version"),
        "build_flags": flags + "; Rust: cargo --release (opt-level 3, lto); Go: go build",
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["smoke", "quick", "full"], default="full")
    ap.add_argument("--only", action="append", default=[],
                    help="scenario (perf/scenarios/<name>) or experiment name; repeatable")
    ap.add_argument("--build", default=os.path.join(TOP, "build", "perf"))
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--cargo-profile", default="release",
                    help="cargo profile the Tokio programs were built with (perf/run --smoke: smoke)")
    ap.add_argument("--results", default=report.LAST_RUN,
                    help="directory for latest.json, latest.md and the charts (default perf/results/tmp)")
    ap.add_argument("--command", default="perf/report/runner.py")
    args = ap.parse_args()

    paths = Paths(args.build, args.cargo_profile)
    runs = args.runs or (1 if args.mode == "smoke" else 3)
    exps = catalogue(args.mode)
    if args.only:
        exps = [e for e in exps if e.scenario in args.only or e.name in args.only]
        if not exps:
            log(f"no scenario named {args.only}; see perf/scenarios/")
            return 2

    started = time.time()
    failures = []
    skipped = {}
    noisy = []
    results = []
    not_run = {}
    for e in exps:
        why = e.skip_reason()
        if why:
            # Said, not silently left out: the table shows the row as skipped.
            log(f"[{e.name}] skipped: {why}")
            not_run[e.name] = why
            e.raw = {}
            for r in e.rows:
                results.append({"index": e.index, "id": r.id, "group": r.group, "scenario": e.scenario,
                                "experiment": e.name, "metric": r.key, "unit": r.unit,
                                "better": r.better, "summary": {}, "skipped": why})
            continue
        rts = [rt for rt in e.runtimes if e.available(paths, rt)]
        for rt in e.runtimes:
            if rt not in rts:
                skipped.setdefault(rt, set()).add(e.name)
        raw = {rt: [] for rt in rts}
        for rep in range(runs):
            for rt in rts:
                busy = wait_for_quiet()
                if busy > QUIET:
                    noisy.append(f"{e.name}/{rt} run {rep + 1}: {busy:.0%} of the CPUs busy")
                t0 = time.monotonic()
                try:
                    res = e.run_once(paths, rt)
                    res["machine_busy_before"] = round(busy, 3)
                    raw[rt].append(res)
                    log(f"[{e.name}] {rt} run {rep + 1}/{runs}: " +
                        ", ".join(f"{r.key}={res.get(r.key)!r:.12}" for r in e.rows) +
                        f" ({time.monotonic() - t0:.1f}s)")
                except (RunError, OSError, ValueError) as err:
                    failures.append(f"{e.name}/{rt}: {err}")
                    log(f"[{e.name}] {rt} run {rep + 1}/{runs}: FAILED: {err}")
        for r in e.rows:
            summ = {}
            for rt in rts:
                vals = [res.get(r.key) for res in raw[rt]]
                vals = [v * r.scale for v in vals if isinstance(v, (int, float))]
                s = summarize(vals)
                if s:
                    summ[rt] = s
            results.append({"index": e.index, "id": r.id, "group": r.group, "scenario": e.scenario,
                            "experiment": e.name, "metric": r.key, "unit": r.unit,
                            "better": r.better, "summary": summ})
        e.raw = raw
    results.sort(key=lambda row: row["index"])

    doc = {
        "mode": args.mode,
        "only": args.only,
        "runs": runs,
        "command": args.command,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "elapsed_s": round(time.time() - started, 1),
        "machine": machine_info(args.build),
        "method": "server/single-thread work pinned to core 0, load generator to core 1, "
                  "two-thread work on cores 0-1 (taskset); runtimes alternated per repetition; "
                  "median of runs with MAD, min and max",
        "runtimes": RUNTIMES,
        "skipped": {rt: sorted(v) for rt, v in skipped.items()},
        "not_run": not_run,
        "failures": failures,
        "noisy_runs": noisy,
        "rows": results,
        "raw": {e.name: e.raw for e in exps},
    }
    os.makedirs(args.results, exist_ok=True)
    report.write_json(doc, args.results)  # first, so a failure below leaves the runs there
    md = report.write_all(doc, args.results)
    report.write_json(doc, args.results)  # again, with the chart list
    print(md)
    log(f"results: {os.path.join(args.results, 'latest.md')} (table), latest.json (runs), "
        f"{len(doc['charts'])} charts (PNG) beside them")
    if failures:
        log(f"{len(failures)} run(s) failed:")
        for f in failures:
            log("  " + f.splitlines()[0])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
