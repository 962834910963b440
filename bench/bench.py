#!/usr/bin/env python3
"""bench.py: latchkey's load benchmark. Run it through bench/run.sh, which
builds the release binary and the argon2 baseline and installs wrk first.

It starts the real binary on temporary databases, prepares users and tokens
through the API (the big database straight through SQL, see make_big_db.py),
drives each scenario with wrk from loopback, and reads the server's CPU time
and memory from /proc. Every throughput scenario runs BENCH_RUNS times; ratios
are taken within one run and the table shows the median of each figure and
of each ratio. Results: a table on standard output and JSON lines in
bench/results/<UTC timestamp>.jsonl. Settings (environment):

  BENCH_QUICK=1       smoke mode: 1 run, 3-second scenarios, no big database, no flood
  BENCH_RUNS=N        runs of every scenario (default 3; 1 when quick)
  BENCH_DURATION=S    seconds each scenario is measured (default 10; 3 when quick)
  BENCH_WARMUP=S      seconds of unmeasured load before each (default 2; 1 when quick)
  BENCH_BIG_USERS, BENCH_BIG_TOKENS   size of the big database (1,000,000 / 10,000,000)
  BENCH_EXPIRED=N     expired refresh tokens for the cleanup scenario (1,000,000; 100,000 when quick)
  BENCH_SWEEP_WINDOW=S  longest measurement during the sweep (45; 15 when quick)
  BENCH_SKIP=a,b      scenario groups to leave out: big, flood, cleanup, startup
  BENCH_BINARY=PATH   the latchkey binary (default target/release/latchkey)
  BENCH_RUST_LOG=LVL  the server's RUST_LOG (default info, the service's default;
                      its log goes to a file in the temporary directory)
  BENCH_KEEP_TMP=1    keep the temporary directory (databases, server logs)
"""

import concurrent.futures
import contextlib
import datetime
import hashlib
import http.client
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LUA = BENCH / "lua"
BASELINE = BENCH / "argon2_baseline" / "target" / "release" / "argon2_baseline"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024

PASSWORD = "bench-Correct-horse-42"
WRONG_PASSWORD = "bench-Wrong-horse-42"
SMALL_USERS = 64  # users of the small database, user0..user63@bench.example
TOKEN_USERS = 64  # distinct users whose tokens the profile/refresh scenarios cycle through


# ---------------------------------------------------------------- settings

def env_number(name, default, kind=int):
    value = os.environ.get(name, "").strip()
    return kind(value) if value else default


class Settings:
    def __init__(self):
        self.quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
        self.runs = env_number("BENCH_RUNS", 1 if self.quick else 3)
        self.duration = env_number("BENCH_DURATION", 3 if self.quick else 10)
        self.warmup = env_number("BENCH_WARMUP", 1 if self.quick else 2)
        self.big_users = env_number("BENCH_BIG_USERS", 1_000_000)
        self.big_tokens = env_number("BENCH_BIG_TOKENS", 10_000_000)
        self.expired = env_number("BENCH_EXPIRED", 100_000 if self.quick else 1_000_000)
        self.sweep_window = env_number("BENCH_SWEEP_WINDOW", 15 if self.quick else 45)
        skip = {s.strip() for s in os.environ.get("BENCH_SKIP", "").split(",") if s.strip()}
        if self.quick:
            skip |= {"big", "flood"}
        self.skip = skip
        self.binary = Path(os.environ.get("BENCH_BINARY") or ROOT / "target/release/latchkey")
        self.rust_log = os.environ.get("BENCH_RUST_LOG", "info")
        self.keep_tmp = os.environ.get("BENCH_KEEP_TMP", "") not in ("", "0")


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the server

RUNNING = set()  # servers to stop whatever happens


class ServerError(Exception):
    pass


class Server:
    """One latchkey process on `db`, on a free loopback port; a context manager
    that always stops it (SIGTERM, then SIGKILL after 15 s)."""

    def __init__(self, settings, db, flags=(), name="server"):
        self.settings, self.db, self.flags, self.name = settings, Path(db), list(flags), name
        self.proc = None
        self.log_path = self.db.parent / f"{name}.log"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        cmd = [str(self.settings.binary), "serve", "--listen", "127.0.0.1:0",
               "--db", str(self.db), *self.flags]
        env = dict(os.environ, RUST_LOG=self.settings.rust_log)
        self.log_file = open(self.log_path, "ab")
        started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log_file,
                                     stdin=subprocess.DEVNULL, env=env)
        RUNNING.add(self)
        line = b""
        deadline = started + 60
        while not line.endswith(b"\n"):
            left = deadline - time.perf_counter()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            chunk = os.read(self.proc.stdout.fileno(), 1) if ready else b""
            if not chunk:
                self.stop()
                raise ServerError(f"{self.name}: no 'listening on' line; log tail:\n"
                                  + self.log_tail())
            line += chunk
            if line.endswith(b"\n") and not line.startswith(b"listening on "):
                line = b""  # something else on stdout; keep waiting
        self.startup_ms = (time.perf_counter() - started) * 1000
        host, port = line.decode().split()[-1].rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.url = f"http://{host}:{port}"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cpu_seconds(self):
        """utime + stime of every thread so far, from /proc/PID/stat."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def status_kib(self, field):
        """VmRSS, VmHWM, ... from /proc/PID/status, in KiB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise ServerError(f"no {field} in /proc/{self.proc.pid}/status")

    def stop(self):
        """SIGTERM and wait; returns the exit status (None if never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                log(f"{self.name}: no exit 15 s after SIGTERM; killing it")
                self.proc.kill()
                self.proc.wait()
        RUNNING.discard(self)
        self.proc.stdout.close()
        self.log_file.close()
        return self.proc.returncode

    def log_tail(self, lines=20):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # A tiny JSON client for setting up users and tokens.
    def call(self, method, path, body=None, token=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        try:
            return response.status, json.loads(data) if data else None
        except ValueError:
            return response.status, None

    def call_ok(self, method, path, body, expect):
        """`call`, retrying a 503 (the hashing queue full), failing on anything unexpected."""
        for attempt in range(20):
            status, answer = self.call(method, path, body)
            if status == expect:
                return answer
            if status != 503:
                break
            time.sleep(0.2 * (attempt + 1))
        raise ServerError(f"{method} {path}: expected {expect}, got {status} {answer}")


def stop_everything(*_):
    for server in list(RUNNING):
        with contextlib.suppress(Exception):
            server.stop()


def server_flags(settings):
    """The flags this binary knows, from its --help (others are being added)."""
    text = subprocess.run([str(settings.binary), "--help"], capture_output=True, text=True,
                          check=True).stdout
    return set(re.findall(r"--[a-z][a-z-]+", text))


# ---------------------------------------------------------------- wrk

def run_wrk(url, script, conns, seconds, env, stop_when=None, threads=2):
    """Runs wrk with one of bench/lua/*.lua; returns its BENCH_JSON figures plus
    its own CPU time (from wait4) and the wall time. `stop_when`, polled every
    quarter second, ends the run early with SIGINT (wrk then reports as usual)."""
    threads = max(1, min(threads, conns))
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{max(1, int(seconds))}s", "--timeout", "10s",
           "-s", str(LUA / script), url]
    full_env = dict(os.environ, BENCH_LUA_DIR=str(LUA), BENCH_NONCE=os.urandom(4).hex(),
                    **{k: str(v) for k, v in env.items()})
    with tempfile.TemporaryFile() as out:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env)
        try:
            interrupted = False
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if stop_when and not interrupted and stop_when():
                    proc.send_signal(signal.SIGINT)
                    interrupted = True
                time.sleep(0.25 if stop_when else 0.05)
        except BaseException:
            proc.kill()
            os.waitpid(proc.pid, 0)
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4 above
        wall = time.monotonic() - started
        out.seek(0)
        text = out.read().decode(errors="replace")
    found = [l for l in text.splitlines() if l.startswith("BENCH_JSON ")]
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}):\n{text[-2000:]}")
    result = json.loads(found[-1][len("BENCH_JSON "):])
    result["wrk_cpu_s"] = usage.ru_utime + usage.ru_stime
    result["wall_s"] = wall
    return result


def measure(settings, server, script, conns, env, seconds=None, warmup=None, stop_when=None):
    """One scenario on a running server: warm-up, then a measured wrk run with
    the server's CPU time read before and after. Returns the figures of one run."""
    seconds = settings.duration if seconds is None else seconds
    warmup = settings.warmup if warmup is None else warmup
    if warmup:
        run_wrk(server.url, script, conns, warmup, env)
    cpu_before = server.cpu_seconds()
    r = run_wrk(server.url, script, conns, seconds, env, stop_when=stop_when)
    if not server.alive():
        raise ServerError(f"{server.name} died during {script}; log tail:\n" + server.log_tail())
    cpu = server.cpu_seconds() - cpu_before
    duration = r["duration_us"] / 1e6
    requests = max(r["requests"], 1)
    e = r["errors"]
    return {
        "conns": conns,
        "requests": r["requests"],
        "seconds": round(duration, 3),
        "rps": r["requests"] / duration,
        "p50_ms": r["p50_us"] / 1000,
        "p90_ms": r["p90_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "max_ms": r["max_us"] / 1000,
        "non_2xx": e["status"],
        "socket_errors": e["connect"] + e["read"] + e["write"],
        "timeouts": e["timeout"],
        "statuses": {int(k): v for k, v in r["statuses"].items()},
        "missing_retry_after": r["missing_retry_after"],
        "server_cpu_us_per_req": cpu * 1e6 / requests,
        "server_cpu_pct": 100 * cpu / duration,
        "wrk_cpu_pct": 100 * r["wrk_cpu_s"] / r["wall_s"],
        "wrk_cpu_us_per_req": r["wrk_cpu_s"] * 1e6 / requests,
        "peak_rss_mib": server.status_kib("VmHWM") / 1024,
        "startup_ms": server.startup_ms,
    }


# ---------------------------------------------------------------- preparation

def write_lines(path, lines):
    Path(path).write_text("".join(f"{l}\n" for l in lines))
    return path


def log_in_many(server, emails, password=PASSWORD):
    """Logs each address in (a few at a time); returns (access, refresh) token lists."""
    body = lambda e: {"email": e, "password": password}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda e: server.call_ok("POST", "/login/", body(e), 200), emails))
    return [a["access_token"] for a in answers], [a["refresh_token"] for a in answers]


def prepare_small(settings, tmp):
    """A fresh database with SMALL_USERS users signed up through the API, their
    access and refresh tokens, and the argon2 PHC string the service stored."""
    db = tmp / "small.db"
    emails = [f"user{i}@bench.example" for i in range(SMALL_USERS)]
    with Server(settings, db, name="setup-small") as server:
        fresh_ms = server.startup_ms
        signup = lambda e: server.call_ok("POST", "/signup/", {
            "email": e, "password": PASSWORD, "first_name": "Bench", "last_name": "User"}, 201)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(signup, emails))
        access, refresh = log_in_many(server, emails[:TOKEN_USERS])
    with contextlib.closing(sqlite3.connect(db)) as conn:
        phc = conn.execute("SELECT password_hash FROM users WHERE email_key = ?",
                           (emails[0],)).fetchone()[0]
    return {
        "db": db,
        "access": write_lines(tmp / "small-access.txt", access),
        "refresh": write_lines(tmp / "small-refresh.txt", refresh),
        "phc": phc,
        "fresh_startup_ms": fresh_ms,
    }


def prepare_big(settings, tmp, phc):
    """The big database: generated once into bench/cache/ (keyed by the schema,
    the generator and the sizes), copied into `tmp` for this invocation; then
    TOKEN_USERS random users log in through the API for their tokens."""
    key = hashlib.sha256((ROOT / "schema.sql").read_bytes()
                         + (BENCH / "make_big_db.py").read_bytes()
                         + f"{settings.big_users}/{settings.big_tokens}".encode()).hexdigest()[:16]
    cache_dir = BENCH / "cache"
    cache_dir.mkdir(exist_ok=True)
    cached = cache_dir / f"big-{key}.db"
    info = {"cache": str(cached.relative_to(ROOT)), "generated": False}
    if not cached.exists():
        for stale in cache_dir.glob("big-*"):
            stale.unlink()
        partial = cache_dir / f"big-{key}.partial"
        log(f"generating the big database ({settings.big_users:,} users, "
            f"{settings.big_tokens:,} refresh tokens) into {info['cache']} ...")
        started = time.monotonic()
        subprocess.run([str(settings.binary), "migrate", "--db", str(partial)], check=True,
                       capture_output=True)
        out = subprocess.run([sys.executable, str(BENCH / "make_big_db.py"), "big", "--db",
                              str(partial), "--users", str(settings.big_users), "--tokens",
                              str(settings.big_tokens), "--password-hash", phc],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        info.update(generated=True, generation=json.loads(out.splitlines()[-1]),
                    generation_s=round(time.monotonic() - started, 1))
        os.replace(partial, cached)
        log(f"  generated in {info['generation_s']} s")
    started = time.monotonic()
    db = tmp / "big.db"
    shutil.copyfile(cached, db)
    flush_file(db)
    info.update(copy_s=round(time.monotonic() - started, 1), bytes=db.stat().st_size)
    picks = random.Random(7).sample(range(settings.big_users), TOKEN_USERS)
    with Server(settings, db, name="setup-big") as server:
        info["startup_ms"] = server.startup_ms
        access, refresh = log_in_many(server, [f"user{i}@bench.example" for i in picks])
    info.update(db=db, access=write_lines(tmp / "big-access.txt", access),
                refresh=write_lines(tmp / "big-refresh.txt", refresh))
    return info


def flush_file(path):
    """Writes a freshly copied or filled file to disk now: otherwise the
    service's first fsync (synchronous=FULL) pays for all of it, in a start-up
    or in the middle of a measurement."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def argon2_baseline(settings):
    """Raw hashes/s on every core, and the CPU time each hash took (from wait4),
    which the server's CPU per login can be set against."""
    cores = os.cpu_count() or 1
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([str(BASELINE), str(cores), str(min(settings.duration, 5))],
                                stdout=out)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise RuntimeError(f"argon2_baseline exited with {proc.returncode}")
        out.seek(0)
        result = json.loads(out.read().decode().splitlines()[-1])
    cpu = usage.ru_utime + usage.ru_stime
    result["rps"] = result["hashes_per_second"]
    result["cpu_us_per_hash"] = cpu * 1e6 / max(result["hashes"], 1)
    result["cpu_pct"] = 100 * cpu / result["seconds"]
    result["peak_rss_mib"] = result.get("peak_rss_kib", 0) / 1024
    return result


# ---------------------------------------------------------------- scenarios

def scenario(settings, db, script, conns, env, flags=(), name="scenario", **kw):
    """A fresh server (so its VmHWM is this scenario's peak), one measurement."""
    with Server(settings, db, flags, name=name) as server:
        return measure(settings, server, script, conns, env, **kw)


def flood(settings, small, known):
    """1,000 connections logging in at once: every answer must be 200, or 503
    with Retry-After; the server must survive within 64 MiB."""
    env = {"BENCH_USERS": SMALL_USERS, "BENCH_PASSWORD": PASSWORD}
    with Server(settings, small["db"], name="flood") as server:
        r = measure(settings, server, "login.lua", 1000, env, warmup=0)
        status, _ = server.call("GET", "/healthz")
        r["healthz_after"] = status
        r["alive_after"] = server.alive()
        code = server.stop()
        r["exit_status"] = code
    r["max_connections_flag"] = "--max-connections" in known
    return r


def count_expired(conn, before):
    return conn.execute("SELECT count(*) FROM refresh_tokens WHERE expires_at < ?",
                        (before,)).fetchone()[0]


def cleanup(settings, small, tmp, run):
    """Profile latency while the cleanup thread sweeps `settings.expired` expired
    refresh tokens, against the same database without them, in this run."""
    db = tmp / f"cleanup-{run}.db"
    with contextlib.closing(sqlite3.connect(small["db"])) as src, \
            contextlib.closing(sqlite3.connect(db)) as dst:
        src.backup(dst)
    flags = ["--cleanup-interval", "1"]
    env = {"BENCH_TOKENS": small["access"]}
    try:
        without = scenario(settings, db, "profile.lua", 32, env, flags, name="cleanup-before")
        # In a process of its own: its large SQLite cache is no business of ours.
        out = subprocess.run([sys.executable, str(BENCH / "make_big_db.py"), "expired", "--db",
                              str(db), "--rows", str(settings.expired), "--per-session", "10"],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        added = json.loads(out.splitlines()[-1])
        flush_file(db)
        # The bench-made backlog expired at least a day ago; nothing else has.
        cutoff = int(time.time()) - 3600
        result = {"without": without, "backlog": added}
        with Server(settings, db, flags, name="cleanup-during") as server, \
                contextlib.closing(sqlite3.connect(db, isolation_level=None, timeout=30)) as conn:
            total = count_expired(conn, cutoff)
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline and count_expired(conn, cutoff) == total:
                time.sleep(0.1)
            if count_expired(conn, cutoff) == total:
                result["skipped"] = "no cleanup thread (no expired row went away within 6 s)"
                return result
            started = time.monotonic()
            gone = lambda: conn.execute(
                "SELECT NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE expires_at < ?)",
                (cutoff,)).fetchone()[0]
            # Measured while the sweep runs: from a warm-up after its first
            # batch until its end or the window's, whichever comes first.
            during = measure(settings, server, "profile.lua", 32, env,
                             seconds=settings.sweep_window, stop_when=gone)
            elapsed = time.monotonic() - started
            left = count_expired(conn, cutoff)
            rate = (total - left) / elapsed
            result.update(during=during, rows_at_start=total, rows_left=left,
                          sweep_complete=left == 0, rows_per_s=round(rate),
                          sweep_s=round(elapsed if left == 0 else total / max(rate, 1), 1))
            sessions_left = conn.execute(
                "SELECT count(*) FROM sessions WHERE expires_at < ?", (cutoff,)).fetchone()[0]
            result["expired_sessions_left"] = sessions_left
        return result
    finally:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{db}{suffix}")


def startup(settings, db, samples=3):
    """Time from exec to `listening on` on an existing database, and the RSS of
    the idle service a second after it started."""
    times, rss, hwm = [], None, None
    for i in range(samples):
        with Server(settings, db, name="startup") as server:
            times.append(server.startup_ms)
            if i == samples - 1:
                time.sleep(1.0)
                rss, hwm = server.status_kib("VmRSS") / 1024, server.status_kib("VmHWM") / 1024
    return {"startup_ms": statistics.median(times), "startup_samples_ms": times,
            "idle_rss_mib": rss, "idle_hwm_mib": hwm}


def one_run(settings, run, small, big, known, notes):
    """Every scenario once, so each ratio compares figures taken minutes apart at most."""
    res = {}
    step = lambda name: log(f"[run {run + 1}/{settings.runs}] {name}")

    def attempt(name, fn):
        step(name)
        try:
            res[name] = fn()
        except (ServerError, RuntimeError, subprocess.CalledProcessError) as e:
            log(f"  {name} failed: {e}")
            res[name] = {"error": str(e)}
        else:
            r = res[name]
            if "hashes_per_second" in r:
                log(f"  {r['hashes_per_second']:.1f} hashes/s, {r['cpu_us_per_hash']:,.0f} µs CPU/hash")
            elif "p50_ms" in r:
                log(f"  {r['rps']:.1f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
                    f"server {r['server_cpu_us_per_req']:.0f} µs/req, wrk {r['wrk_cpu_pct']:.0f}% CPU")

    s, b = small, big
    login_env = {"BENCH_USERS": SMALL_USERS, "BENCH_PASSWORD": PASSWORD}
    no_throttle = (["--login-max-failures", "1000000000"]
                   if "--login-max-failures" in known else [])
    # The references are measured on both sides of the scenarios compared with
    # them, and their mean is used, so a drift in the machine's load during the
    # run moves both sides of a ratio alike.
    attempt("healthz", lambda: scenario(settings, s["db"], "healthz.lua", 32, {}, name="healthz"))
    attempt("profile", lambda: scenario(settings, s["db"], "profile.lua", 32,
                                        {"BENCH_TOKENS": s["access"]}, name="profile"))
    attempt("refresh", lambda: scenario(settings, s["db"], "refresh.lua", 32,
                                        {"BENCH_TOKENS": s["refresh"]}, name="refresh"))
    attempt("healthz_after", lambda: scenario(settings, s["db"], "healthz.lua", 32, {},
                                              name="healthz-after"))
    # Each big-database scenario follows its small-database twin closely.
    if b:
        attempt("big_profile", lambda: scenario(settings, b["db"], "profile.lua", 32,
                                                {"BENCH_TOKENS": b["access"]}, name="big-profile"))
        attempt("big_refresh", lambda: scenario(settings, b["db"], "refresh.lua", 32,
                                                {"BENCH_TOKENS": b["refresh"]}, name="big-refresh"))
    attempt("argon2", lambda: argon2_baseline(settings))
    attempt("login_right", lambda: scenario(settings, s["db"], "login.lua", 8, login_env,
                                            name="login-right"))
    if b:
        attempt("big_login", lambda: scenario(
            settings, b["db"], "login.lua", 8,
            {"BENCH_USERS": settings.big_users, "BENCH_PASSWORD": PASSWORD}, name="big-login"))
    attempt("login_wrong", lambda: scenario(
        settings, s["db"], "login.lua", 8, dict(login_env, BENCH_PASSWORD=WRONG_PASSWORD),
        no_throttle, name="login-wrong"))
    attempt("signup", lambda: scenario(settings, s["db"], "signup.lua", 8,
                                       {"BENCH_TAG": f"r{run}"}, name="signup"))
    attempt("argon2_after", lambda: argon2_baseline(settings))
    if "flood" not in settings.skip:
        attempt("flood", lambda: flood(settings, small, known))
    if "cleanup" not in settings.skip:
        attempt("cleanup", lambda: cleanup(settings, small, small["db"].parent, run))
    if "startup" not in settings.skip:
        attempt("startup", lambda: startup(settings, s["db"]))
        if b:
            attempt("big_startup", lambda: startup(settings, b["db"]))
    return res


# ---------------------------------------------------------------- report

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def get(run, *path):
    for key in path:
        if not isinstance(run, dict) or key not in run:
            return None
        run = run[key]
    return run


def ratio(a, b):
    return a / b if a is not None and b else None


# Each reported row: (name in the table, key in a run, path to the figures,
# (ratio label, function of a run → ratio), (target text, test of the ratio)).
def mean_of(run, keys, field):
    """The mean of a reference measured before and after (either alone if one failed)."""
    values = [get(run, k, field) for k in keys]
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def healthz_rps(run):
    return mean_of(run, ("healthz", "healthz_after"), "rps")


def argon2_hps(run):
    return mean_of(run, ("argon2", "argon2_after"), "hashes_per_second")


# Each reported row: (name in the table, key in a run, path to the figures,
# (ratio label, function of a run → ratio), (target text, test of the ratio)).
ROWS = [
    ("GET /healthz", "healthz", (), None, ("ceiling", None)),
    ("GET /profile/", "profile", (),
     ("rps/healthz", lambda r: ratio(get(r, "profile", "rps"), healthz_rps(r))),
     ("≥ 0.50", lambda x: x >= 0.50)),
    ("POST /refresh/", "refresh", (),
     ("rps/healthz", lambda r: ratio(get(r, "refresh", "rps"), healthz_rps(r))),
     ("≥ 0.40", lambda x: x >= 0.40)),
    ("GET /healthz (again)", "healthz_after", (), None, ("ceiling", None)),
    ("big db GET /profile/", "big_profile", (),
     ("p50/small", lambda r: ratio(get(r, "big_profile", "p50_ms"), get(r, "profile", "p50_ms"))),
     ("≤ 1.20", lambda x: x <= 1.20)),
    ("big db POST /refresh/", "big_refresh", (),
     ("p50/small", lambda r: ratio(get(r, "big_refresh", "p50_ms"), get(r, "refresh", "p50_ms"))),
     ("(info)", None)),
    ("argon2 baseline (all cores)", "argon2", (), None, None),
    ("POST /login/ right pw", "login_right", (),
     ("rps/argon2", lambda r: ratio(get(r, "login_right", "rps"), argon2_hps(r))),
     ("≥ 0.90", lambda x: x >= 0.90)),
    ("big db POST /login/", "big_login", (),
     ("p50/small", lambda r: ratio(get(r, "big_login", "p50_ms"),
                                   get(r, "login_right", "p50_ms"))),
     ("≤ 1.20", lambda x: x <= 1.20)),
    ("POST /login/ wrong pw", "login_wrong", (),
     ("rps/argon2", lambda r: ratio(get(r, "login_wrong", "rps"), argon2_hps(r))),
     ("≥ 0.90", lambda x: x >= 0.90)),
    ("POST /signup/", "signup", (),
     ("rps/argon2", lambda r: ratio(get(r, "signup", "rps"), argon2_hps(r))),
     ("≥ 0.90", lambda x: x >= 0.90)),
    ("argon2 baseline (again)", "argon2_after", (), None, None),
    ("login flood 1000 conns", "flood", (), None, ("200|503+RA, ≤64MiB", None)),
    ("profile, no backlog", "cleanup", ("without",), None, None),
    ("profile during sweep", "cleanup", ("during",),
     ("p99/no backlog", lambda r: ratio(get(r, "cleanup", "during", "p99_ms"),
                                        get(r, "cleanup", "without", "p99_ms"))),
     ("≤ 2.00", lambda x: x <= 2.0)),
]

FIGURES = ["rps", "p50_ms", "p99_ms", "non_2xx", "server_cpu_us_per_req", "server_cpu_pct",
           "wrk_cpu_pct", "peak_rss_mib", "requests", "socket_errors", "timeouts",
           "wrk_cpu_us_per_req", "startup_ms"]


# The same comparisons in CPU time per request, which other processes on the
# machine disturb far less than requests per second: (reference, scenario).
CPU_VIEWS = [
    ("GET /profile/", ("healthz", "healthz_after"), "profile"),
    ("POST /refresh/", ("healthz", "healthz_after"), "refresh"),
    ("POST /login/ right pw", ("argon2", "argon2_after"), "login_right"),
    ("POST /login/ wrong pw", ("argon2", "argon2_after"), "login_wrong"),
    ("POST /signup/", ("argon2", "argon2_after"), "signup"),
]


def cpu_views(runs):
    """Lines: reference CPU µs per request (or per hash) ÷ the scenario's, per run."""
    out = []
    for name, refs, key in CPU_VIEWS:
        values = []
        for r in runs:
            ref = mean_of(r, refs, "cpu_us_per_hash" if refs[0] == "argon2"
                          else "server_cpu_us_per_req")
            values.append(ratio(ref, get(r, key, "server_cpu_us_per_req")))
        if median(values) is not None:
            of = "argon2 µs/hash" if refs[0] == "argon2" else "healthz µs/req"
            out.append((name, of, median(values), values))
    return out


def flood_ok(r):
    """The flood's pass test for one run, and why not."""
    if not r or "error" in r:
        return False, (r or {}).get("error", "not run")
    problems = []
    odd = {k: v for k, v in r["statuses"].items() if k not in (200, 503)}
    if odd:
        problems.append(f"statuses other than 200/503: {odd}")
    if r["missing_retry_after"]:
        problems.append(f"{r['missing_retry_after']} 503s without Retry-After")
    if not r["alive_after"] or r["healthz_after"] != 200:
        problems.append("the server did not survive")
    if r.get("exit_status") not in (0, None):
        problems.append(f"exit status {r['exit_status']} on SIGTERM")
    if r["peak_rss_mib"] > 64:
        problems.append(f"peak RSS {r['peak_rss_mib']:.1f} MiB > 64")
    if r["timeouts"]:
        problems.append(f"{r['timeouts']} requests unanswered within 10 s")
    if r["socket_errors"]:
        problems.append(f"{r['socket_errors']} socket errors (connect/read/write)")
    return not problems, "; ".join(problems)


def summarise(settings, runs):
    """One record per table row: per-run figures, medians, ratio, target, verdict."""
    records = []
    for name, key, sub, ratio_spec, target_spec in ROWS:
        per_run = [get(r, key, *sub) for r in runs]
        errors = [get(r, key, "error") for r in runs if get(r, key, "error")]
        skipped = [get(r, key, "skipped") for r in runs if get(r, key, "skipped")]
        if sub == ("without",):
            errors = skipped = []  # reported once, on the sweep's row
        elif sub:
            # The sweep's row stays in the table when it failed or was skipped.
            per_run = [p if p is not None else get(r, key) for p, r in zip(per_run, runs)]
        if all(p is None for p in per_run):
            continue
        rec = {"scenario": name, "key": key + ("_" + "_".join(sub) if sub else ""),
               "runs": per_run}
        if skipped:
            rec["skipped"] = skipped[0]
        if errors:
            rec["errors"] = errors
        good = [p for p in per_run if isinstance(p, dict) and "error" not in p]
        if key.startswith("argon2"):
            rec["median"] = {"rps": median([p["hashes_per_second"] for p in good]),
                             "server_cpu_us_per_req": median([p["cpu_us_per_hash"] for p in good]),
                             "server_cpu_pct": median([p["cpu_pct"] for p in good]),
                             "peak_rss_mib": median([p["peak_rss_mib"] for p in good])}
        else:
            rec["median"] = {f: median([p.get(f) for p in good]) for f in FIGURES}
            rec["median"]["conns"] = good[0]["conns"] if good and "conns" in good[0] else None
        if ratio_spec:
            label, fn = ratio_spec
            values = [fn(r) for r in runs]
            rec["ratio"] = {"of": label, "per_run": values, "median": median(values),
                            "min": min([v for v in values if v is not None], default=None),
                            "max": max([v for v in values if v is not None], default=None)}
        if target_spec:
            text, test = target_spec
            rec["target"] = text
            if test and rec.get("ratio", {}).get("median") is not None:
                rec["met"] = bool(test(rec["ratio"]["median"]))
        if key == "flood":
            verdicts = [flood_ok(p) for p in per_run]
            rec["met"] = all(ok for ok, _ in verdicts)
            rec["why_not"] = [why for ok, why in verdicts if not ok]
        if key == "cleanup" and sub == ("during",):
            for field in ("sweep_s", "sweep_complete", "rows_per_s"):
                rec[field] = [get(r, "cleanup", field) for r in runs]
        records.append(rec)
    # Start-up and idle memory: single figures, no wrk.
    for key, where in (("startup", "small db"), ("big_startup", "big db")):
        st = [r.get(key) for r in runs if isinstance(r.get(key), dict) and "error" not in r[key]]
        if not st:
            continue
        ms = median([s["startup_ms"] for s in st])
        records.append({"scenario": f"start-up to 'listening on', {where}", "key": f"{key}_ms",
                        "runs": st, "median": {"startup_ms": ms}, "target": "≤ 50 ms",
                        "met": ms <= 50})
        rss = median([s["idle_rss_mib"] for s in st])
        records.append({"scenario": f"idle RSS, {where}", "key": f"{key}_idle_rss", "runs": st,
                        "median": {"peak_rss_mib": rss}, "target": "≤ 15 MiB",
                        "met": rss <= 15})
    return records


def fmt(value, spec):
    return "—" if value is None else format(value, spec)


def table(records):
    head = ["scenario", "conns", "req/s", "p50 ms", "p99 ms", "non-2xx", "srv µs/req",
            "srv CPU%", "wrk CPU%", "peak RSS MiB", "ratio (min–max)", "target", "met?"]
    rows = []
    for rec in records:
        m = rec["median"]
        r = rec.get("ratio")
        ratio_text = "—"
        if r and r["median"] is not None:
            ratio_text = f"{r['of']} {r['median']:.2f} ({r['min']:.2f}–{r['max']:.2f})"
        if rec["key"].endswith("startup_ms"):
            ratio_text = f"{m['startup_ms']:.1f} ms"
        met = {True: "yes", False: "NO", None: "—"}[rec.get("met")]
        if rec.get("skipped"):
            met = "skipped"
        elif rec.get("errors") and rec.get("met") is None:
            met = "error"
        rows.append([
            rec["scenario"], fmt(m.get("conns"), "d"), fmt(m.get("rps"), ",.1f"),
            fmt(m.get("p50_ms"), ".2f"), fmt(m.get("p99_ms"), ".2f"),
            fmt(m.get("non_2xx"), ".0f"), fmt(m.get("server_cpu_us_per_req"), ",.0f"),
            fmt(m.get("server_cpu_pct"), ".0f"), fmt(m.get("wrk_cpu_pct"), ".0f"),
            fmt(m.get("peak_rss_mib"), ".1f"), ratio_text, rec.get("target", ""), met])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def details(settings, records, runs, big, notes):
    """Lines under the table: status codes, the sweep, the flood, caveats."""
    out = []
    for rec in records:
        good = [p for p in rec["runs"] if isinstance(p, dict) and "error" not in p]
        statuses = {}
        for p in good:
            for code, n in (p.get("statuses") or {}).items():
                statuses[code] = statuses.get(code, 0) + n
        if statuses:
            out.append(f"- {rec['scenario']}: status codes over all runs {dict(sorted(statuses.items()))}")
        if rec.get("skipped"):
            out.append(f"- {rec['scenario']}: skipped: {rec['skipped']}")
        for e in rec.get("errors", []):
            out.append(f"- {rec['scenario']}: error: {e.splitlines()[0]}")
        if rec.get("why_not"):
            out.append(f"- {rec['scenario']}: not met: {' | '.join(rec['why_not'])}")
        if "sweep_s" in rec:
            out.append(f"- cleanup sweep of {settings.expired:,} expired refresh tokens: "
                       f"{fmt(median(rec['rows_per_s']), ',.0f')} rows/s, whole sweep "
                       f"{fmt(median(rec['sweep_s']), '.0f')} s (per run: {rec['sweep_s']} s; "
                       f"measured to the end: {rec['sweep_complete']}, else extrapolated)")
        if rec["key"].endswith("startup_ms"):
            samples = [[round(ms, 1) for ms in s["startup_samples_ms"]] for s in rec["runs"]]
            where = rec["scenario"].rsplit(", ", 1)[-1]
            out.append(f"- start-up samples on the {where} (ms), per run: {samples}")
    if big:
        gen = (f"generated in {big['generation_s']} s ({big['generation']['steps']})"
               if big.get("generated") else "reused from the cache")
        out.append(f"- big database: {settings.big_users:,} users, {settings.big_tokens:,} refresh "
                   f"tokens, {big['bytes'] / 2**30:.2f} GiB, {gen}; copied in {big['copy_s']} s; "
                   f"first start on the copy {big['startup_ms']:.1f} ms")
    for name, of, value, values in cpu_views(runs):
        out.append(f"- CPU view of {name}: {of} ÷ its µs/req = {value:.2f} "
                   f"(per run {', '.join(fmt(v, '.2f') for v in values)})")
    out.extend(f"- {n}" for n in notes)
    return "\n".join(out)


# ---------------------------------------------------------------- main

def git(*args):
    try:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None


def main():
    settings = Settings()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    for need in (settings.binary, BASELINE):
        if not need.exists():
            sys.exit(f"bench.py: {need} is missing; run bench/run.sh")
    if not shutil.which("wrk"):
        sys.exit("bench.py: wrk is missing; run bench/run.sh")
    tmp = Path(tempfile.mkdtemp(prefix="latchkey-bench-"))
    # A private copy: other people's `cargo build --release` can't swap the
    # binary in the middle of a run.
    shutil.copy2(settings.binary, tmp / "latchkey")
    settings.binary = tmp / "latchkey"
    known = server_flags(settings)
    notes = []
    if "--login-max-failures" not in known:
        notes.append("this binary has no --login-max-failures: wrong-password logins ran with "
                     "its built-in throttling (look for 429s above)")
    started_at = datetime.datetime.now(datetime.timezone.utc)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    meta = {
        "type": "meta", "started": started_at.isoformat(timespec="seconds"),
        "git_head": git("rev-parse", "--short", "HEAD"),
        "src_modified": bool(git("status", "--porcelain", "--", "src", "Cargo.toml",
                                 "Cargo.lock", "schema.sql")),
        "binary_sha256": hashlib.sha256(settings.binary.read_bytes()).hexdigest()[:16],
        "cores": os.cpu_count(), "kernel": os.uname().release,
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0],
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
        "quick": settings.quick, "runs": settings.runs, "duration_s": settings.duration,
        "warmup_s": settings.warmup, "skip": sorted(settings.skip), "rust_log": settings.rust_log,
    }
    log(f"latchkey bench: {settings.runs} run(s) of {settings.duration} s scenarios"
        f"{' (quick)' if settings.quick else ''}; load average {' '.join(meta['loadavg_start'])}")
    try:
        log("preparing the small database (sign-ups and log-ins through the API) ...")
        small = prepare_small(settings, tmp)
        big = None
        if "big" not in settings.skip:
            big = prepare_big(settings, tmp, small["phc"])
        runs = [one_run(settings, run, small, big, known, notes) for run in range(settings.runs)]
    finally:
        stop_everything()
        if settings.keep_tmp:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    meta["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    meta["small_fresh_startup_ms"] = small["fresh_startup_ms"]
    records = summarise(settings, runs)
    print()
    print(table(records))
    print()
    print(details(settings, records, runs, big, notes))
    print(f"- load average {' '.join(meta['loadavg_start'])} at the start, "
          f"{' '.join(meta['loadavg_end'])} at the end ({meta['cores']} cores, shared with wrk)")
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    path = results / f"{stamp}.jsonl"
    partial = path.with_suffix(".jsonl.tmp")
    with open(partial, "w") as f:
        f.write(json.dumps(meta) + "\n")
        if big:
            f.write(json.dumps({"type": "big_db", **{k: v for k, v in big.items()
                                                     if not isinstance(v, Path)}}) + "\n")
        for rec in records:
            f.write(json.dumps({"type": "scenario", **rec}, default=str) + "\n")
        for name, of, value, values in cpu_views(runs):
            f.write(json.dumps({"type": "cpu_view", "scenario": name, "of": of,
                                "median": value, "per_run": values}) + "\n")
    os.replace(partial, path)
    print(f"- results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        stop_everything()
        sys.exit(130)
