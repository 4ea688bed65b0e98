"""mqbench, the load generator (tools/mqbench), against a real broker:
conn holds its clients, sub + pub deliver every message of a QoS 1 and a
QoS 2 run with no loss, duplicate or reordering and report latency
percentiles, MQTT 3.1 and 3.1.1 work, and failures (a bad flag, nothing
listening) exit 1 with one line on stderr.

mqbench is found like mqd: MQBENCH_BIN (set by meson), else next to the
mqd of MQD_BIN. Every wait reads mqbench's output or exit with a deadline.
"""

import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import MQD_BIN, SANITIZER_MARKERS

MQBENCH_BIN = os.environ.get(
    "MQBENCH_BIN",
    os.path.join(os.path.dirname(os.path.dirname(MQD_BIN)), "tools", "mqbench"))

RUN_TIMEOUT = 60.0     # a whole mqbench run; they take a few seconds
EVENT_TIMEOUT = 20.0   # one expected line or state


class Bench:
    """One mqbench process; its stderr lines are read by a thread and
    handed over through a queue, its stdout (the summary) is collected."""

    def __init__(self, args):
        self.args = [MQBENCH_BIN] + [str(a) for a in args]
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.err = []
        self.out = []
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.err, True),
                             daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.out, False),
                             daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _pump(self, f, keep, to_queue):
        for line in f:
            keep.append(line)
            if to_queue:
                self.lines.put(line)

    def wait_line(self, pattern, timeout=EVENT_TIMEOUT):
        """Waits for a stderr line matching the regex pattern."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("mqbench: no line matching %r within %.0fs; "
                                     "stderr:\n%s" % (pattern, timeout, "".join(self.err)))
            try:
                line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    raise AssertionError("mqbench exited (%s) before a line matching "
                                         "%r; stderr:\n%s"
                                         % (self.proc.returncode, pattern, "".join(self.err)))
                continue
            if rx.search(line):
                return line

    def finish(self, timeout=RUN_TIMEOUT):
        """Waits for the exit; returns (status, stdout, stderr)."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("mqbench did not exit within %.0fs: %s\nstderr:\n%s"
                                 % (timeout, " ".join(self.args), "".join(self.err)))
        for t in self._threads:
            t.join(5)
        err = "".join(self.err)
        for marker in SANITIZER_MARKERS:
            assert marker not in err, "mqbench: %r in its stderr:\n%s" % (marker, err)
        return self.proc.returncode, "".join(self.out), err

    def summary(self, timeout=RUN_TIMEOUT):
        """Waits for the exit of a --json run; returns (status, summary)."""
        status, out, err = self.finish(timeout)
        lines = [l for l in out.splitlines() if l.strip()]
        assert len(lines) == 1, "expected one JSON line on stdout, got %r\nstderr:\n%s" % (
            out, err)
        return status, json.loads(lines[0])

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def bench(start_broker):
    """Factory: bench(*args) starts mqbench; leftovers are killed by PID."""
    started = []

    def start(*args):
        b = Bench(args)
        started.append(b)
        return b

    yield start
    for b in started:
        b.kill()


def _target(broker):
    return ["-h", broker.host, "-p", broker.port]


def _established(port):
    """Broker-side sockets of port in ESTABLISHED state (/proc/net/tcp)."""
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state == "01" and int(local.split(":")[1], 16) == port:
                n += 1
    return n


def _wait_for(predicate, what, timeout=EVENT_TIMEOUT):
    """Polls predicate under a deadline (for state outside our processes)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def _assert_clean(s, n):
    assert s["lost"] == 0 and s["dup"] == 0 and s["out_of_order"] == 0, s
    assert s["bad_hdr"] == 0, s
    lat = s["latency_us"]
    assert lat["count"] == n, s
    assert 0 <= lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] \
        <= lat["p99.9"] <= lat["max"], lat
    assert lat["max"] < 60_000_000, lat


def test_conn_holds_50_clients(broker, clients, bench):
    b = bench("conn", *_target(broker), "-c", 50, "-i", 0, "--json")
    b.wait_line(r"\bconnect_succ total=50\b")
    # the broker holds them: 50 accepted sockets, and for mqd 50 sessions
    _wait_for(lambda: _established(broker.port) == 50, "50 broker-side sockets")
    if broker.is_mqd:
        _wait_for(lambda: len(set(re.findall(r"client connected client=(mqbench_\d+)",
                                             broker.log_text()))) == 50,
                  "50 'client connected' lines in the broker log")
    # and still serves other clients
    p = clients.paho(broker, client_id="check")
    p.connect()
    p.subscribe("check/t", qos=1)
    p.publish("check/t", b"alive", qos=1)
    assert p.get_message().payload == b"alive"
    os.kill(b.proc.pid, signal.SIGINT)
    status, s = b.summary()
    assert status == 0
    assert s["command"] == "conn" and s["end"] == "signal"
    assert s["connect_succ"] == 50 and s["connect_fail"] == 0
    assert s["conn_lost"] == 0
    assert 0 <= s["cpu"]["share"]
    broker.assert_alive()


@pytest.mark.parametrize("qos", [1, 2])
def test_pub_sub_delivers_all(broker, bench, qos):
    n, subs = 600, 2
    sub = bench("sub", *_target(broker), "-c", subs, "-i", 0, "-t", "bench/#",
                "-q", qos, "-L", n * subs, "--payload-hdrs", "cnt64,ts",
                "--prefix", "bsub", "--json")
    sub.wait_line(r"\bsub total=%d\b" % subs)
    pub = bench("pub", *_target(broker), "-c", 5, "-i", 0, "-t", "bench/%i/%c",
                "-q", qos, "-I", 0, "-F", 4, "-L", n,
                "--payload-hdrs", "cnt64,ts", "--prefix", "bpub", "--json")
    status, p = pub.summary()
    assert status == 0
    assert p["end"] == "limit"
    assert p["pub"] == n and p["pub_succ"] == n and p["pub_fail"] == 0
    status, s = sub.summary()
    assert status == 0
    assert s["end"] == "limit" and s["sub"] == subs and s["sub_fail"] == 0
    assert s["recv"] == n * subs
    _assert_clean(s, n * subs)
    assert 1 <= s["streams"] <= 5 * subs
    broker.assert_alive()


@pytest.mark.parametrize("version", [3, 4])
def test_old_protocol_versions(broker, bench, version):
    n = 200
    sub = bench("sub", *_target(broker), "-V", version, "-c", 1, "-i", 0,
                "-t", "v%d/#" % version, "-q", 1, "-L", n,
                "--payload-hdrs", "cnt64,ts", "--prefix", "vs", "--json")
    sub.wait_line(r"\bsub total=1\b")
    pub = bench("pub", *_target(broker), "-V", version, "-c", 2, "-i", 0,
                "-t", "v%d/%%i" % version, "-q", 1, "-I", 5, "-F", 2, "-L", n,
                "--payload-hdrs", "cnt64,ts", "--prefix", "vp", "--json")
    status, p = pub.summary()
    assert status == 0 and p["pub_succ"] == n
    status, s = sub.summary()
    assert status == 0 and s["recv"] == n
    _assert_clean(s, n)
    # conn on the same version ends by itself with --duration
    status, c = bench("conn", *_target(broker), "-V", version, "-c", 5, "-i", 0,
                      "--duration", 0.5, "--json").summary()
    assert status == 0 and c["end"] == "duration" and c["connect_succ"] == 5


@pytest.mark.parametrize("args", [
    ["pub", "-t", "a", "--no-such-flag"],
    ["pub", "-t", "a", "-q", "3"],
    ["sub", "-q", "1"],                   # no -t
    ["conn", "-t", "a"],                  # not a conn flag
    ["pub", "-t", "a", "-V", "4", "-x", "10"],
    ["bench"],
])
def test_bad_flag_exits_1_with_one_line(bench, args):
    status, out, err = bench(*args).finish()
    assert status == 1
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mqbench: "), err


def test_nothing_listening_is_connect_fail(bench):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]      # closed again: nothing listens there
    b = bench("pub", "-h", "127.0.0.1", "-p", port, "-c", 3, "-i", 0, "-t", "x",
              "--json")
    status, s = b.summary()
    assert status == 1
    assert s["connect_fail"] == 3 and s["connect_succ"] == 0
    assert s["end"] == "no_connection"
    assert "no client could connect" in "".join(b.err)
