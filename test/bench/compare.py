#!/usr/bin/python3
"""mqd vs Mosquitto (a script, not a test): runs the same mqbench workloads
against mqd and Debian's mosquitto, one after the other, and prints one
table of results, the mqd/mosquitto ratios and issue #5's targets.

Usage: test/bench/compare.py [--mqd PATH] [--mqbench PATH]
           [--mosquitto PATH] [--repeat N] [--quick] [--json FILE]
           [--only conn,fanin0,fanin1,fanout,p2p,latency,cpu,instr]
           [--instr auto|perf|callgrind|none] [--clean-qos1]
           [--qos1-durability sync|relaxed|none] [--pub-procs N]
(tools/bench builds build/ and runs it with the same arguments.)

Without --mqd/--mqbench it uses build/ (meson setup build && ninja -C
build when a binary is missing); mosquitto is installed with apt-get when
/usr/sbin/mosquitto is missing (the script runs as root). Each scenario
runs on a fresh broker, mqd first, then mosquitto; with --repeat N it
runs N times, alternating which broker goes first, and reports medians.
A default run takes about 5 minutes on 2 cores. --quick shrinks every
scenario (2,000 connections, 2 s runs, 1 s CPU runs, 200 fan-out
subscribers, 100 p2p pairs, N = 500 below) for a smoke run of about 75 s.

Broker settings (both on their own free 127.0.0.1 port, fresh each run):

  mqd, by environment (every inherited MQD_* variable is dropped first):
    MQD_MQTT_BIND=127.0.0.1  MQD_MQTT_PORT=<free port>
    MQD_NODE_DATA_DIR=<fresh temp dir>  MQD_NODE_LOG_LEVEL=warn
    MQD_MQTT_MAX_CONNECTIONS=20000
    MQD_MQTT_MAX_INFLIGHT=32  MQD_MQTT_MAX_QUEUED=1000  (the defaults)
    MQD_STORAGE_DURABILITY=none for the connection and QoS 0 runs,
                           sync for the QoS 1 runs
  mosquitto, by a generated config file, run as root:
    listener <free port> 127.0.0.1
    allow_anonymous true
    persistence false
    max_connections -1
    max_inflight_messages 32
    max_queued_messages 1000
    set_tcp_nodelay true          (mqd sets TCP_NODELAY on every client)
    log_dest stderr, log_type error, log_type warning,
    connection_messages false
    user root
  Both get RLIMIT_NOFILE raised to its hard limit.

QoS 1 runs use persistent subscriber sessions (MQTT 5, -C false -x 3600)
so that "mqd durable (sync), Mosquitto not" means something: mqd
acknowledges a publish that matches a persistent session only after the
commit (fsync) that holds it, while mosquitto (persistence false) keeps
it in memory. A publish that matches only clean sessions needs no commit,
so with --clean-qos1 (clean subscribers) `sync` costs mqd nothing;
--qos1-durability relaxed|none changes mqd's mode for the QoS 1 runs.

Scenarios (mqbench, MQTT 5 unless said, 256 B payloads, distinct --prefix
for subscribers and publishers, every run bounded by --duration):

  conn      N idle MQTT 3.1.1 connections (mqbench conn -c N -R 3000 -V 4),
            held until mqbench and `ss` both count N; bytes per connection
            = (VmRSS with them - VmRSS before) / N.  N = 15,000 (quick 2,000)
  fanin0/1  100 publishers (fi/%i, -I 0; QoS 1 with -F 32) -> 1 subscriber
            on fi/#, QoS 0 and QoS 1, saturation for D s (D = 10, quick 2);
            --pub-procs N splits the publishers over N mqbench processes
  fanout    1 publisher (fo/x, -I 0) -> 1,000 subscribers on fo/x, QoS 0
  p2p       500 publishers on p2p/%i -> 500 subscribers on p2p/%i (same
            -n range, so subscriber i gets publisher i), QoS 1 (-F 32)
  latency   100 publishers x 50 msg/s (-I 20, -F 8) -> 1 subscriber on
            lat/#, QoS 1; p50/p99 end to end (--payload-hdrs cnt64,ts).
            At 100 x 100 msg/s mosquitto now and then overflows the
            subscriber's 1,000-message queue and drops QoS 1 messages:
            it moves at most one in-flight window (32) per pass of its
            event loop, so one subscriber gets about 10,000 msg/s here
  cpu       the broker's own utime+stime (/proc/PID/stat) per 100,000
            delivered messages at one fixed offered load both sustain:
            fan-in 100 x 200 msg/s QoS 0 and 100 x 50 msg/s QoS 1 (QoS 1
            to one subscriber: see latency),
            fan-out 1 x 20 msg/s x 1,000 subscribers, and p2p 500 x 20
            msg/s QoS 1 (500 x 40 takes all of mosquitto's core); D s each
            (quick: 1 s, 200 fan-out subscribers, 100 p2p pairs)
  instr     instructions per delivered message: the broker runs a small
            workload of N and of 2N messages (N = 10,000) (10 publishers -> 10
            subscribers, one topic each, QoS 1 -F 8, and 10 publishers ->
            1 subscriber, QoS 0 at 5,000 msg/s), counted with `perf stat
            -e instructions -p PID` when perf reports a number, otherwise
            under valgrind --tool=callgrind; (I(2N) - I(N)) / (D(2N) -
            D(N)), D = messages delivered, so start-up costs cancel

Throughput is what the subscribers received per second, measured from
their per-second counters between 1 s after the publishers started and
the end of their --duration (so neither connecting nor the drain
counts). At saturation a broker takes in more than it delivers; both
drop what overflows a subscriber's queue (mqd the oldest queued message,
mosquitto the new one).
Every publisher and subscriber uses --payload-hdrs cnt64,ts; the lost and
duplicate counts are printed below the table (a QoS 0 drop under
saturation is allowed, but shown), with mqbench's and the broker's CPU
share: mqbench near 100% of a core means the load generator, not the
broker, was the limit, and the table marks such a number.
"""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
MOSQUITTO = "/usr/sbin/mosquitto"
BROKERS = ("mqd", "mosquitto")
LINE_RE = re.compile(r"^(\d+)s (\w+) total=(\d+) ")
BUSY = 0.9  # an mqbench process above this share of a core is the limit


# --- helpers ------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_s(pid):
    """utime + stime of a process (all its threads), seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def established(port):
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", "( sport = :%d )" % port],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    return sum(1 for line in out.splitlines() if line.strip())


def raise_nofile():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_for(cond, timeout, what, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(step)
    raise RuntimeError("timed out after %ds waiting for %s" % (timeout, what))


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# --- the brokers --------------------------------------------------------

class Broker:
    """One broker process on a free 127.0.0.1 port with a fresh temp dir.
    durability: mqd's [storage] durability (mosquitto never persists).
    wrap: a command prefix (valgrind). extra: more mqd environment."""

    def __init__(self, kind, paths, work, durability="none", wrap=None,
                 extra=None):
        self.kind = kind
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=kind + "-", dir=work)
        self.log_path = os.path.join(self.dir, "broker.log")
        log = open(self.log_path, "w")
        if kind == "mqd":
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith("MQD_")}
            data = os.path.join(self.dir, "data")
            env.update(MQD_MQTT_BIND="127.0.0.1",
                       MQD_MQTT_PORT=str(self.port),
                       MQD_NODE_DATA_DIR=data,
                       MQD_NODE_LOG_LEVEL="warn",
                       MQD_MQTT_MAX_CONNECTIONS="20000",
                       MQD_MQTT_MAX_INFLIGHT="32",
                       MQD_MQTT_MAX_QUEUED="1000",
                       MQD_STORAGE_DURABILITY=durability,
                       # not the defaults 7883 and 8081: free ports
                       MQD_CLUSTER_BIND="127.0.0.1",
                       MQD_CLUSTER_PORT=str(free_port()),
                       MQD_ADMIN_PORT=str(free_port()))
            env.update(extra or {})
            cmd = [paths.mqd]
        else:
            env = dict(os.environ)
            conf = os.path.join(self.dir, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write(mosquitto_conf(self.port))
            cmd = [paths.mosquitto, "-c", conf]
        self.proc = subprocess.Popen((wrap or []) + cmd, env=env,
                                     stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT,
                                     preexec_fn=raise_nofile)
        log.close()
        self.pid = self.proc.pid
        try:
            self._wait_listening(120 if wrap else 30)
        except BaseException:
            self.stop()
            raise

    def _wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited at start (status %s):\n%s" % (
                    self.kind, self.proc.returncode, self.log_tail()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), 1):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("%s did not listen within %ds" % (self.kind, timeout))

    def cpu_s(self):
        return proc_cpu_s(self.pid)

    def rss_kb(self):
        return proc_rss_kb(self.pid)

    def log_tail(self, n=20):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout=120):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def mosquitto_conf(port):
    return "\n".join([
        "listener %d 127.0.0.1" % port,
        "allow_anonymous true",
        "persistence false",
        "max_connections -1",
        "max_inflight_messages 32",
        "max_queued_messages 1000",
        "set_tcp_nodelay true",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "connection_messages false",
        "user root",
        ""])


# --- mqbench ------------------------------------------------------------

class Bench:
    """One mqbench process with --json: its per-second counter lines are
    read from stderr as they come, each stamped with time.monotonic()."""

    def __init__(self, paths, args):
        self.args = args
        self.proc = subprocess.Popen(
            [paths.mqbench] + args + ["--json"], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        self.lines = []  # (monotonic time, counter, total)
        self.other = []  # stderr lines that are not counters
        self.latest = {}
        self.result = None
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for line in self.proc.stderr:
            m = LINE_RE.match(line)
            if m:
                name, total = m.group(2), int(m.group(3))
                self.lines.append((time.monotonic(), name, total))
                self.latest[name] = total
            else:
                self.other.append(line.rstrip())

    def total(self, name):
        return self.latest.get(name, 0)

    def running(self):
        return self.proc.poll() is None

    def wait_total(self, name, n, timeout):
        def cond():
            if self.total(name) >= n:
                return True
            if not self.running():
                raise RuntimeError("mqbench %s exited: %s" % (
                    self.args[0], "; ".join(self.other[-3:])))
            return False
        wait_for(cond, timeout, "mqbench %s %s=%d (have %d)" % (
            self.args[0], name, n, self.total(name)))

    def rate(self, name, t0, t1):
        """Counter increase per second between the first line at or
        after t0 and the last line at or before t1."""
        pts = [(t, n) for t, c, n in self.lines if c == name and t0 <= t <= t1]
        if len(pts) < 2 or pts[-1][0] - pts[0][0] < 0.5:
            return None
        return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])

    def finish(self, timeout=120, stop=True):
        """Stops it (SIGTERM) unless it already ended; returns its JSON."""
        if stop and self.running():
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._t.join(5)
        out = self.proc.stdout.read()
        try:
            self.result = json.loads(out)
        except ValueError:
            raise RuntimeError("mqbench %s gave no JSON (exit %s): %s" % (
                self.args[0], self.proc.returncode,
                "; ".join(self.other[-3:])))
        return self.result


def common(broker, prefix, count, rate=2000):
    return ["-h", "127.0.0.1", "-p", str(broker.port), "-c", str(count),
            "-R", str(rate), "--prefix", prefix]


def wait_quiet(bench, name, quiet=1.5, limit=15, expect=None):
    """Waits until counter name reaches expect or stops moving (the
    drain after the publishers ended), at most limit seconds."""
    deadline = time.monotonic() + limit
    last, since = bench.total(name), time.monotonic()
    while time.monotonic() < deadline and bench.running():
        if expect is not None and last >= expect:
            return
        time.sleep(0.05)
        n = bench.total(name)
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


def share(cpu0, cpu1, wall):
    """CPU share of one core between two samples (None if one failed)."""
    if cpu0 is None or cpu1 is None or wall <= 0:
        return None
    return (cpu1 - cpu0) / wall


def subscribed(sub, broker, n):
    """Waits until the broker holds n established connections (the
    subscribers), then until mqbench reports n SUBACKs or 0.25 s more has
    passed: mqbench reports once a second, a SUBACK follows the accept by
    well under a millisecond, and the summary's "sub" count is checked
    after the run."""
    def cond():
        if not sub.running():
            raise RuntimeError("mqbench sub exited: %s" %
                               "; ".join(sub.other[-3:]))
        return established(broker.port) >= n
    wait_for(cond, 60 + n / 500, "%d subscriber connections" % n, 0.05)
    t = time.monotonic() + 0.25
    while sub.total("sub") < n and time.monotonic() < t:
        time.sleep(0.02)


def pubsub(paths, broker, sub_n, sub_args, pub_n, pub_args, duration,
           copies=1, warm=1.0, pub_procs=1, drain=5.0, count_missing=True):
    """Subscribers first (waits for all their SUBACKs), then publishers
    for duration seconds, then the drain (at most drain seconds: a broker
    that queued a backlog without bound is not waited for). copies is how
    many subscribers get each message. missing counts the messages the
    broker took (QoS 1: acknowledged; QoS 0: published, which mqbench
    counts when it queues them in its own buffer, so not for saturation
    runs) times copies, less those received. Returns a dict of results."""
    sub = Bench(paths, ["sub"] + common(broker, "s", sub_n) + sub_args +
                ["--payload-hdrs", "cnt64,ts", "--duration",
                 str(duration + 120)])
    pubs = []
    try:
        subscribed(sub, broker, sub_n)
        cpu0 = broker.cpu_s()
        t0 = time.monotonic()
        step = pub_n // pub_procs
        for k in range(pub_procs):
            n = step if k < pub_procs - 1 else pub_n - step * k
            pubs.append(Bench(paths, ["pub"] + common(broker, "p", n, 5000) +
                              ["-n", str(k * step)] + pub_args +
                              ["--payload-hdrs", "cnt64,ts",
                               "--duration", str(duration)]))
        # the window: from warm s after the start to the end of
        # --duration (mqbench then sends DISCONNECT and waits up to 3 s
        # for the closes, longer than a backlogged broker may take)
        time.sleep(warm)
        tw = time.monotonic()
        cpus_w = [broker.cpu_s(), proc_cpu_s(sub.pid)] + \
            [proc_cpu_s(p.pid) for p in pubs]
        while time.monotonic() < t0 + duration and any(
                p.running() for p in pubs):
            time.sleep(0.02)
        t1 = time.monotonic()
        cpus_1 = [broker.cpu_s(), proc_cpu_s(sub.pid)] + \
            [proc_cpu_s(p.pid) for p in pubs]
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and any(
                p.running() for p in pubs):
            time.sleep(0.02)
        pres = [p.finish(60) for p in pubs]
        expect = sum(p.get("pub", 0) for p in pres) * copies
        wait_quiet(sub, "recv", limit=drain, expect=expect)
        cpu1 = broker.cpu_s()
        sres = sub.finish()
    finally:
        for b in [sub] + pubs:
            if b.running():
                b.proc.kill()
                b.proc.wait()
    win = t1 - tw
    sent = sum(p.get("pub", 0) for p in pres)
    acked = sum(p.get("pub_succ", 0) for p in pres)
    took = acked if "-q" in pub_args and pub_args[
        pub_args.index("-q") + 1] != "0" else sent
    if sres.get("sub", 0) < sub_n or sres.get("sub_fail"):
        raise RuntimeError("only %s of %d subscribers subscribed" % (
            sres.get("sub"), sub_n))
    return {
        "recv": sres.get("recv", 0),
        "sent": sent,
        # at --duration mqbench stops counting acks, so a QoS 1 window
        # still in flight may be received without being counted as acked
        "missing": (max(0, took * copies - sres.get("recv", 0))
                    if count_missing else None),
        "acked": acked,
        "lost": sres.get("lost"), "dup": sres.get("dup"),
        "ooo": sres.get("out_of_order"),
        "rate": sub.rate("recv", tw, t1 + 0.05),
        "latency_us": sres.get("latency_us"),
        "broker_cpu_s": cpu1 - cpu0,
        "broker_share": share(cpus_w[0], cpus_1[0], win),
        "sub_share": share(cpus_w[1], cpus_1[1], win),
        "pub_share": max(share(a, b, win) or 0
                         for a, b in zip(cpus_w[2:], cpus_1[2:])),
        "wall_s": t1 - t0,
    }


# --- scenarios ----------------------------------------------------------

def sc_conn(paths, work, kind, cfg):
    n = cfg.conns
    b = Broker(kind, paths, work)
    try:
        time.sleep(0.5)
        rss0 = b.rss_kb()
        conn = Bench(paths, ["conn"] + common(b, "c", n, 3000) +
                     ["-V", "4", "--duration", str(n // 3000 + 120)])
        try:
            conn.wait_total("connect_succ", n, n / 3000 + 60)
            wait_for(lambda: established(b.port) >= n, 30,
                     "%d established sockets" % n, 0.2)
            time.sleep(1.0)
            rss1 = b.rss_kb()
            est = established(b.port)
        finally:
            res = conn.finish()
    finally:
        b.stop()
    return {"value": (rss1 - rss0) * 1024.0 / n, "rss0_kb": rss0,
            "rss1_kb": rss1, "established": est,
            "connect_fail": res.get("connect_fail"),
            "conn_lost": res.get("conn_lost")}


def durability(cfg, qos):
    return cfg.qos1_durability if qos else "none"


def qos_sub_args(qos, cfg, topic):
    a = ["-t", topic, "-q", str(qos)]
    if qos and not cfg.clean_qos1:
        a += ["-C", "false", "-x", "3600"]
    return a


def run_pubsub(paths, work, kind, cfg, qos, sub_n, sub_topic, pub_n,
               pub_topic, pub_extra, duration, same_n=False, copies=1):
    saturate = pub_extra[pub_extra.index("-I") + 1] == "0"
    b = Broker(kind, paths, work, durability(cfg, qos))
    try:
        sub_args = qos_sub_args(qos, cfg, sub_topic)
        pub_args = ["-t", pub_topic, "-q", str(qos)] + pub_extra
        r = pubsub(paths, b, sub_n, sub_args, pub_n, pub_args, duration,
                   copies=copies, warm=cfg.warm, drain=cfg.drain,
                   count_missing=qos > 0 or not saturate,
                   pub_procs=cfg.pub_procs if not same_n else 1)
    finally:
        b.stop()
    return r


def sc_fanin(qos):
    def f(paths, work, kind, cfg):
        extra = ["-I", "0"] + (["-F", "32"] if qos else [])
        r = run_pubsub(paths, work, kind, cfg, qos, 1, "fi/#", 100, "fi/%i",
                       extra, cfg.duration)
        r["value"] = r["rate"]
        return r
    return f


def sc_fanout(paths, work, kind, cfg):
    r = run_pubsub(paths, work, kind, cfg, 0, cfg.fanout_subs, "fo/x", 1,
                   "fo/x", ["-I", "0"], cfg.duration, same_n=True,
                   copies=cfg.fanout_subs)
    r["value"] = r["rate"]
    return r


def sc_p2p(paths, work, kind, cfg):
    r = run_pubsub(paths, work, kind, cfg, 1, cfg.p2p, "p2p/%i", cfg.p2p,
                   "p2p/%i", ["-I", "0", "-F", "32"], cfg.duration,
                   same_n=True)
    r["value"] = r["rate"]
    return r


def sc_latency(paths, work, kind, cfg):
    r = run_pubsub(paths, work, kind, cfg, 1, 1, "lat/#", 100, "lat/%i",
                   ["-I", "20", "-F", "8"], cfg.duration)
    lat = r.get("latency_us") or {}
    r["p50_ms"] = lat.get("p50", 0) / 1000.0 if lat else None
    r["p99_ms"] = lat.get("p99", 0) / 1000.0 if lat else None
    return r


# fixed offered loads for the CPU rows: (name, qos, subs, sub topic,
# pubs, pub topic, -I ms); 1,000 and 500 shrink with --quick
CPU_LOADS = [
    ("fan-in QoS 0, 100 x 200 msg/s", 0, 1, "fi/#", 100, "fi/%i", 5),
    ("fan-in QoS 1, 100 x 50 msg/s", 1, 1, "fi/#", 100, "fi/%i", 20),
    ("fan-out QoS 0, 1 x 20 msg/s x 1,000", 0, 1000, "fo/x", 1, "fo/x", 50),
    ("p2p QoS 1, 500 x 20 msg/s", 1, 500, "p2p/%i", 500, "p2p/%i", 50),
]


def sc_cpu(load):
    _, qos, subs, st, pubs, pt, ival = load

    def f(paths, work, kind, cfg):
        extra = ["-I", str(ival)] + (["-F", "8"] if qos else [])
        if subs == 1000:
            subs_n = cfg.fanout_subs
        elif subs == 500:
            subs_n = cfg.p2p
        else:
            subs_n = subs
        pubs_n = cfg.p2p if pubs == 500 else pubs
        r = run_pubsub(paths, work, kind, cfg, qos, subs_n, st, pubs_n, pt,
                       extra, cfg.cpu_duration, same_n=True,
                       copies=subs_n if pubs_n == 1 else 1)
        r["value"] = (r["broker_cpu_s"] / r["recv"] * 100000.0
                      if r["recv"] else None)
        return r
    return f


# --- instructions -------------------------------------------------------

INSTR_LOADS = [
    ("QoS 1, 10 -> 10 (one topic each, -F 8)", 1, 10, "in/%i", 10, "in/%i",
     ["-I", "0", "-F", "8"]),
    ("QoS 0, 10 -> 1 (5,000 msg/s)", 0, 1, "in/#", 10, "in/%i", ["-I", "2"]),
]


def perf_works():
    if not shutil.which("perf"):
        return False
    r = subprocess.run(["perf", "stat", "-x,", "-e", "instructions", "--",
                        "true"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    for line in r.stderr.splitlines():
        f = line.split(",")
        if len(f) > 2 and "instructions" in f[2]:
            return f[0].strip().isdigit()
    return False


def ensure_valgrind():
    if shutil.which("valgrind"):
        return True
    print("installing valgrind (apt-get) ...", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-q", "valgrind"],
                   stdout=subprocess.DEVNULL, check=False)
    return bool(shutil.which("valgrind"))


def instr_once(paths, work, kind, cfg, load, n, tool):
    _, qos, subs, st, pubs, pt, extra = load
    out = os.path.join(work, "callgrind.%s.%d.out" % (kind, n))
    wrap = None
    if tool == "callgrind":
        wrap = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out]
    b = Broker(kind, paths, work, durability(cfg, qos), wrap=wrap)
    perf = None
    try:
        if tool == "perf":
            perf = subprocess.Popen(
                ["perf", "stat", "-x,", "-e", "instructions", "-p",
                 str(b.pid)], stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, text=True)
            time.sleep(0.5)
        pub = None
        sub = Bench(paths, ["sub"] + common(b, "s", subs, 200) +
                    qos_sub_args(qos, cfg, st) +
                    ["--payload-hdrs", "cnt64,ts", "--duration", "600"])
        try:
            subscribed(sub, b, subs)
            pub = Bench(paths, ["pub"] + common(b, "p", pubs, 200) +
                        ["-t", pt, "-q", str(qos), "-L", str(n),
                         "--payload-hdrs", "cnt64,ts", "--duration", "600"]
                        + extra)
            pub.finish(660, stop=False)
            wait_quiet(sub, "recv", quiet=2.0, limit=60,
                       expect=n * (subs if pubs == 1 else 1))
            sres = sub.finish()
            if sres.get("sub", 0) < subs:
                raise RuntimeError("only %s of %d subscribers subscribed" % (
                    sres.get("sub"), subs))
        finally:
            for x in (sub, pub):
                if x and x.running():
                    x.proc.kill()
                    x.proc.wait()
        count = None
        if perf:
            perf.send_signal(signal.SIGINT)
            _, err = perf.communicate(timeout=30)
            for line in err.splitlines():
                f = line.split(",")
                if len(f) > 2 and "instructions" in f[2] and f[0].isdigit():
                    count = int(f[0])
    finally:
        if perf and perf.poll() is None:
            perf.kill()
            perf.wait()
        b.stop(600)
    if tool == "callgrind":
        count = callgrind_total(out)
        os.unlink(out)
    return count, sres.get("recv", 0), sres.get("lost"), sres.get("dup")


def callgrind_total(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    return None


def sc_instr(load):
    def f(paths, work, kind, cfg):
        n = cfg.instr_n
        i1, d1, l1, u1 = instr_once(paths, work, kind, cfg, load, n, cfg.tool)
        i2, d2, l2, u2 = instr_once(paths, work, kind, cfg, load, 2 * n,
                                    cfg.tool)
        v = (i2 - i1) / (d2 - d1) if i1 and i2 and d2 > d1 else None
        return {"value": v, "instr": [i1, i2], "recv": d1 + d2,
                "delivered": [d1, d2], "lost": (l1 or 0) + (l2 or 0),
                "dup": (u1 or 0) + (u2 or 0), "tool": cfg.tool}
    return f


# --- the table ----------------------------------------------------------

def rows_spec(cfg):
    """(key, metric label, scenario function, value getter, target, unit)
    target = (op, factor): '<=' lower is better, '>=' higher is better."""
    d = cfg.duration
    rows = [
        ("conn", "idle connection, bytes/conn (%s conns)" % f"{cfg.conns:,}",
         sc_conn, "value", ("<=", 1.0), "%.0f"),
        ("fanin0", "fan-in QoS 0, msg/s (100 -> 1, %ds)" % d, sc_fanin(0),
         "value", (">=", 2.0), "%.0f"),
        ("fanin1", "fan-in QoS 1, msg/s (100 -> 1, %ds)" % d, sc_fanin(1),
         "value", (">=", 1.5), "%.0f"),
        ("fanout", "fan-out QoS 0, deliveries/s (1 -> %s)" %
         f"{cfg.fanout_subs:,}", sc_fanout, "value", (">=", 2.0), "%.0f"),
        ("p2p", "p2p QoS 1, msg/s (%d pairs)" % cfg.p2p, sc_p2p, "value",
         (">=", 1.5), "%.0f"),
        ("latency", "latency p50, ms (QoS 1, 100 x 50 msg/s -> 1)",
         sc_latency, "p50_ms", None, "%.2f"),
        ("latency", "latency p99, ms (QoS 1, 100 x 50 msg/s -> 1)",
         None, "p99_ms", ("<=", 1.0), "%.2f"),
    ]
    for i, load in enumerate(CPU_LOADS):
        name = load[0]
        if cfg.p2p != 500:
            name = name.replace("500", str(cfg.p2p))
        if cfg.fanout_subs != 1000:
            name = name.replace("1,000", f"{cfg.fanout_subs:,}")
        rows.append(("cpu%d" % i, "CPU s per 100k delivered: " + name,
                     sc_cpu(load), "value", ("<=", 0.5), "%.3f"))
    for i, load in enumerate(INSTR_LOADS):
        rows.append(("instr%d" % i, "instructions per message: " + load[0],
                     sc_instr(load), "value", ("<=", 0.5), "%.0f"))
    return rows


def fmt(v, f):
    return "n/a" if v is None else (f % v)


def verdict(ratio, target):
    if target is None or ratio is None:
        return "-"
    op, k = target
    return "yes" if (ratio <= k if op == "<=" else ratio >= k) else "no"


def bound_mark(samples):
    """'*' when mqbench was at ~100% of a core in any sample."""
    for s in samples:
        if max(s.get("pub_share") or 0, s.get("sub_share") or 0) >= BUSY:
            return "*"
    return ""


def render(cfg, results, rows):
    out = ["| metric | mqd | mosquitto | ratio mqd/mosq | target | met |",
           "| --- | ---: | ---: | ---: | --- | --- |"]
    table = []
    for key, label, _, field, target, f in rows:
        if key not in results:
            continue
        vals, marks = {}, {}
        for kind in BROKERS:
            samples = results[key][kind]
            vals[kind] = median([s.get(field) for s in samples])
            marks[kind] = bound_mark(samples)
        a, b = vals["mqd"], vals["mosquitto"]
        ratio = a / b if a is not None and b else None
        tgt = "-" if target is None else "%s %g x" % (
            "≤" if target[0] == "<=" else "≥", target[1])
        out.append("| %s | %s%s | %s%s | %s | %s | %s |" % (
            label, fmt(a, f), marks["mqd"], fmt(b, f), marks["mosquitto"],
            fmt(ratio, "%.2f"), tgt, verdict(ratio, target)))
        table.append({"metric": label, "mqd": a, "mosquitto": b,
                      "ratio": ratio, "target": tgt,
                      "met": verdict(ratio, target)})
    return "\n".join(out), table


def failed_row(key, kind, s):
    return "| %s | %s | failed: %s |" % (
        key, kind, s["error"].replace("|", "/").replace("\n", " ")[:200])


def render_checks(results):
    out = ["| run | broker | sent | acked | received | missing | lost | dup "
           "| broker CPU | mqbench pub CPU | mqbench sub CPU |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
           "| ---: | ---: |"]
    pct = lambda x: "n/a" if x is None else "%.0f%%" % (100 * x)
    for key in results:
        if key.startswith(("conn", "instr")):
            continue
        for kind in BROKERS:
            for s in results[key][kind]:
                if "error" in s:
                    out.append(failed_row(key, kind, s))
                    continue
                out.append("| %s | %s | %d | %s | %d | %s | %s | %s | %s "
                           "| %s | %s |" % (
                    key, kind, s.get("sent", 0),
                    s.get("acked") or "-", s.get("recv", 0),
                    fmt(s.get("missing"), "%d"), s.get("lost"), s.get("dup"), pct(s.get("broker_share")),
                    pct(s.get("pub_share")), pct(s.get("sub_share"))))
    for key in results:
        if key.startswith("instr"):
            for kind in BROKERS:
                for s in results[key][kind]:
                    if "error" in s:
                        out.append(failed_row(key, kind, s))
                        continue
                    out.append("| %s | %s | - | - | %s | - | %s | %s | - "
                               "| - | - |" % (
                        key, kind, "+".join(map(str, s["delivered"])),
                        s["lost"], s["dup"]))
        if key == "conn":
            for kind in BROKERS:
                for s in results[key][kind]:
                    if "error" in s:
                        out.append(failed_row(key, kind, s))
                        continue
                    out.append("| conn | %s | - | - | %d established | - "
                               "| - | - | RSS %d -> %d KiB | - | - |" % (
                                   kind, s["established"], s["rss0_kb"],
                                   s["rss1_kb"]))
    return "\n".join(out)


# --- the machine --------------------------------------------------------

def machine(paths):
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    mosq = subprocess.run([paths.mosquitto, "-h"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True).stdout
    m = re.search(r"mosquitto version (\S+)", mosq)
    mqdv = subprocess.run([paths.mqd, "-V"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True).stdout.strip()
    buildtype = "?"
    intro = os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(paths.mqd))), "meson-info", "intro-buildoptions.json")
    try:
        with open(intro) as f:
            for o in json.load(f):
                if o["name"] == "buildtype":
                    buildtype = o["value"]
    except (OSError, ValueError):
        pass
    return {"cpu": model, "cores": os.cpu_count(),
            "syscall_us": syscall_us(),
            "ram_gib": round(mem_kb / 1048576, 1),
            "kernel": platform.release(), "os": os_name(),
            "mosquitto": m.group(1) if m else "?",
            "mqd": mqdv.splitlines()[0] if mqdv else "?",
            "mqd_build": buildtype}


def syscall_us(n=200000):
    """Cost of one trivial system call here (dd copying 1-byte blocks
    from /dev/zero to /dev/null: two calls a block), microseconds; a VM
    with page-table isolation makes it several times that of bare metal,
    which weighs on a broker that makes a few calls per message."""
    t = time.monotonic()
    r = subprocess.run(["dd", "if=/dev/zero", "of=/dev/null", "bs=1",
                        "count=%d" % n], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    if r.returncode:
        return None
    return round((time.monotonic() - t) / (2 * n) * 1e6, 2)


def os_name():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "?"


# --- main ---------------------------------------------------------------

def ensure_binaries(a):
    default_mqd = os.path.join(ROOT, "build", "broker", "mqd")
    default_bench = os.path.join(ROOT, "build", "tools", "mqbench")
    if ((a.mqd == default_mqd and not os.path.exists(a.mqd)) or
            (a.mqbench == default_bench and not os.path.exists(a.mqbench))):
        build = os.path.join(ROOT, "build")
        if not os.path.exists(os.path.join(build, "build.ninja")):
            subprocess.run(["meson", "setup", build, ROOT], check=True,
                           stdout=sys.stderr)
        subprocess.run(["ninja", "-C", build], check=True, stdout=sys.stderr)
    for p in (a.mqd, a.mqbench):
        if not os.access(p, os.X_OK):
            raise SystemExit("compare.py: %s: not an executable" % p)
    if not os.access(a.mosquitto, os.X_OK):
        if a.mosquitto != MOSQUITTO:
            raise SystemExit("compare.py: %s: not an executable" % a.mosquitto)
        print("installing mosquitto (apt-get) ...", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-q", "mosquitto"],
                       stdout=sys.stderr, check=True)


def choose_tool(want):
    if want == "none":
        return None
    if want in ("auto", "perf") and perf_works():
        return "perf"
    if want == "perf":
        print("compare.py: perf reports no instruction count here; "
              "using callgrind", file=sys.stderr)
    return "callgrind" if ensure_valgrind() else None


def main():
    ap = argparse.ArgumentParser(description="mqd vs mosquitto benchmark")
    ap.add_argument("--mqd", default=os.path.join(ROOT, "build", "broker",
                                                  "mqd"))
    ap.add_argument("--mqbench", default=os.path.join(ROOT, "build", "tools",
                                                      "mqbench"))
    ap.add_argument("--mosquitto", default=MOSQUITTO)
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per scenario and broker, alternating order")
    ap.add_argument("--quick", action="store_true",
                    help="small smoke run (under a minute or two)")
    ap.add_argument("--json", metavar="FILE", help="write the results here")
    ap.add_argument("--only", help="comma-separated: conn,fanin0,fanin1,"
                    "fanout,p2p,latency,cpu,instr")
    ap.add_argument("--instr", default="auto",
                    choices=("auto", "perf", "callgrind", "none"))
    ap.add_argument("--clean-qos1", action="store_true",
                    help="QoS 1 subscribers with clean sessions")
    ap.add_argument("--qos1-durability", default="sync",
                    choices=("sync", "relaxed", "none"),
                    help="mqd's durability in the QoS 1 runs (sync)")
    ap.add_argument("--pub-procs", type=int, default=1,
                    help="split fan-in publishers over this many mqbench "
                    "processes")
    a = ap.parse_args()
    ensure_binaries(a)
    a.mqd, a.mqbench = os.path.abspath(a.mqd), os.path.abspath(a.mqbench)

    cfg = argparse.Namespace(
        conns=2000 if a.quick else 15000, duration=2 if a.quick else 10,
        cpu_duration=1 if a.quick else 10,
        fanout_subs=200 if a.quick else 1000, p2p=100 if a.quick else 500,
        instr_n=500 if a.quick else 10000, clean_qos1=a.clean_qos1,
        qos1_durability=a.qos1_durability,
        warm=0.5 if a.quick else 1.0, drain=1.0 if a.quick else 5.0,
        pub_procs=max(1, a.pub_procs), tool=None)
    only = set(a.only.split(",")) if a.only else None
    rows = rows_spec(cfg)
    if not only or any(x.startswith("instr") for x in only):
        cfg.tool = choose_tool(a.instr)
    todo = []
    for key, _, fn, *_ in rows:
        group = re.sub(r"\d+$", "", key) if key.startswith(("cpu", "instr")) \
            else key
        if fn is None or (only and key not in only and group not in only):
            continue
        if group == "instr" and not cfg.tool:
            continue
        todo.append((key, fn))

    cmd = " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])
    info = machine(a)
    work = tempfile.mkdtemp(prefix="mqd-compare-")
    results = {}
    t_start = time.monotonic()
    try:
        for key, fn in todo:
            results[key] = {k: [] for k in BROKERS}
            for rep in range(a.repeat):
                order = BROKERS if rep % 2 == 0 else BROKERS[::-1]
                for kind in order:
                    t = time.monotonic()
                    try:
                        r = fn(a, work, kind, cfg)
                        line = summary(key, r)
                    except (RuntimeError, OSError, ValueError) as e:
                        r = {"error": str(e)}
                        line = "FAILED: %s" % e
                    results[key][kind].append(r)
                    print("[%5.0fs] %-8s %-9s %s (%.0fs)" % (
                        time.monotonic() - t_start, key, kind, line,
                        time.monotonic() - t), file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("interrupted; partial results", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = {k: v for k, v in results.items()
               if all(v[b] for b in BROKERS)}
    text, table = render(cfg, results, rows)
    print("mqd vs mosquitto — %s" % time.strftime("%Y-%m-%d"))
    print("machine: %s, %d cores, %.1f GiB RAM, Linux %s, %s; "
          "a trivial syscall costs %s µs" % (
              info["cpu"], info["cores"], info["ram_gib"], info["kernel"],
              info["os"], info["syscall_us"]))
    print("mqd: %s (%s); mosquitto %s; %d run(s) per broker, median" % (
        info["mqd"], info["mqd_build"], info["mosquitto"], a.repeat))
    print("command: %s" % cmd)
    print()
    print(text)
    print()
    notes = ["QoS 1 runs: mqd durability=%s, subscribers %s; mosquitto "
             "persistence false." % (cfg.qos1_durability,
                                     "clean" if cfg.clean_qos1 else
                                     "persistent (-C false -x 3600)"),
             "QoS 0 runs: mqd durability=none.",
             "missing = messages the broker took (QoS 1: acknowledged, QoS "
             "0: sent; n/a for QoS 0 saturation, where mqbench counts what "
             "it queued in its own buffers) x subscribers per message - "
             "received: dropped, or still queued in the broker when the "
             "subscribers stopped (the drain is capped at %g s). lost/dup: "
             "mqbench's sequence check, which cannot see a drop after a "
             "publisher's last received message (tail drops)." % cfg.drain]
    if any(bound_mark(results[k][b]) for k in results for b in BROKERS):
        notes.append("* mqbench used >= %d%% of a core in that run: the "
                     "number is load-generator bound (2 cores shared by "
                     "broker and mqbench)." % (BUSY * 100))
    if any(k.startswith("instr") for k in results):
        notes.append(
            "instructions counted with %s%s." % (cfg.tool,
            ": user space only, the kernel's work for system calls is not "
            "in it (the CPU rows include it)" if cfg.tool == "callgrind"
            else ""))
    print("\n".join(notes))
    print()
    print(render_checks(results))
    print("\ntotal time %.0f s" % (time.monotonic() - t_start))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d"), "command": cmd,
                       "machine": info, "table": table, "notes": notes,
                       "runs": results}, f, indent=1)
    return 0


def summary(key, r):
    if key == "conn":
        return "%.0f B/conn (%d established)" % (r["value"], r["established"])
    if key.startswith("instr"):
        return "%s instr/msg %s delivered %s" % (
            fmt(r["value"], "%.0f"), r["instr"], r["delivered"])
    s = "sent %d acked %d recv %d missing %s lost %s dup %s" % (
        r["sent"], r["acked"], r["recv"], fmt(r["missing"], "%d"),
        r["lost"], r["dup"])
    if key == "latency":
        return s + " p50 %s ms p99 %s ms" % (fmt(r["p50_ms"], "%.2f"),
                                            fmt(r["p99_ms"], "%.2f"))
    return s + " value %s, broker %.0f%% pub %.0f%% sub %.0f%%" % (
        fmt(r["value"], "%.3f" if key.startswith("cpu") else "%.0f"),
        100 * (r["broker_share"] or 0), 100 * (r["pub_share"] or 0),
        100 * (r["sub_share"] or 0))


if __name__ == "__main__":
    sys.exit(main())
