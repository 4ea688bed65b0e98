"""Fixtures for the mqd integration tests.

start_broker(**env)  factory: start one broker on a free 127.0.0.1 port with a
                     temp data dir and extra MQD_<SECTION>_<KEY> environment
                     (keyword names may be given as MQD_MQTT_MAX_INFLIGHT=2 or
                     mqtt_max_inflight=2); returns a Broker. proc_env={...}
                     adds other environment variables (e.g. ASAN_OPTIONS).
                     For restarts: data_dir=PATH reuses a data dir (e.g.
                     an earlier broker's .data_dir), port=N tries that port
                     first (a free one if it is taken). expect_exit=True
                     expects the broker to exit at start (e.g. on a broken
                     data dir): returns the Broker once it has exited
                     (.status = exit status), fails if it starts listening.
                     Every mqd gets its own free MQD_CLUSTER_PORT and
                     MQD_ADMIN_PORT (Broker.admin_port) unless given.
broker               the default broker (start_broker() with no overrides).
clients              factory for the three kinds of client, closed at teardown:
                     clients.raw(broker), clients.paho(broker, ...),
                     clients.sub(broker, *mosquitto_sub args),
                     clients.pub(broker, *mosquitto_pub args).

Teardown sends SIGTERM to the broker's PID only, waits with a deadline, and
fails the test unless it exited with status 0 and its stderr holds no
sanitizer report. A broker stopped by the test with broker.kill() (SIGKILL by
PID) is exempt from the exit-status check; its stderr is still checked. The
broker's stderr is kept in a file and attached to the report of a failed
test.

MQD_TEST_BROKER=mosquitto runs the suite against /usr/sbin/mosquitto (to check
the tests themselves); config keys mosquitto has no counterpart for skip the
test.
"""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from clients import Clients

MQD_BIN = os.environ.get("MQD_BIN", "/work/main/build/broker/mqd")
MOSQUITTO_BIN = os.environ.get("MOSQUITTO_BIN", "/usr/sbin/mosquitto")
BROKER_KIND = os.environ.get("MQD_TEST_BROKER", "mqd")

START_TIMEOUT = 20.0   # generous: sanitizer builds start slowly
STOP_TIMEOUT = 20.0
SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")

# mqd setting -> mosquitto.conf option (only used with MQD_TEST_BROKER=mosquitto)
MOSQUITTO_OPTIONS = {
    "MQD_MQTT_MAX_PACKET_SIZE": "max_packet_size",
    "MQD_MQTT_MAX_CONNECTIONS": "max_connections",   # listener option
    "MQD_MQTT_MAX_INFLIGHT": "max_inflight_messages",
    "MQD_MQTT_MAX_QUEUED": "max_queued_messages",
    # MQTT 5: mosquitto announces max_inflight_messages as its Receive Maximum
    "MQD_MQTT_RECEIVE_MAXIMUM": "max_inflight_messages",
    "MQD_MQTT_TOPIC_ALIAS_MAXIMUM": "max_topic_alias",   # listener option
    "MQD_MQTT_MAX_KEEPALIVE": "max_keepalive",
}
# mosquitto options that belong in the listener block
MOSQUITTO_LISTENER_OPTIONS = ("max_connections", "max_topic_alias")

_BROKERS = pytest.StashKey()


_HANDED_OUT = set()


def let_wall_time_pass(until):
    """Waits until the wall clock reaches `until` (time.time()). Used only
    while no broker runs, to let an expiry interval run out: the wait is the
    point of the test, not a synchronisation (the one kind of fixed wait
    the suite keeps)."""
    remaining = until - time.time()
    if remaining > 0:
        time.sleep(remaining)


def free_port():
    """A port free now on 127.0.0.1, never one this process handed out
    before (the kernel may offer a just-closed ephemeral port again, and a
    broker's MQTT, cluster and admin ports must differ)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise AssertionError("no fresh free port in 100 tries")


class Broker:
    host = "127.0.0.1"

    def __init__(self, kind, port, proc, log_path, data_dir, env):
        self.kind = kind
        self.port = port
        self.proc = proc
        self.pid = proc.pid
        self.log_path = log_path
        self.data_dir = data_dir
        self.env = env            # the MQD_* overrides of this broker
        self.stopped = False
        self.start_failed = False
        self.died = False
        self.killed = False
        self.status = None

    @property
    def keepalive_grace(self):
        """Seconds allowed after 1.5 x keepalive before the broker must have
        closed an idle connection. mosquitto only checks keepalives every few
        seconds, so it gets more slack when the suite is checked against it."""
        return 2.0 if self.is_mqd else 5.0

    @property
    def is_mqd(self):
        return self.kind == "mqd"

    def require_mqd(self, why):
        if not self.is_mqd:
            pytest.skip("mqd-specific: " + why)

    def alive(self):
        return self.proc.poll() is None

    def log_text(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout, after=0):
        """Waits until the log matches regex pattern at or after character
        offset `after`; returns the seconds it took. Between reads it waits
        on the process (its death ends the wait at once and fails)."""
        rx = re.compile(pattern)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if rx.search(self.log_text()[after:]):
                return time.monotonic() - t0
            if self.proc.poll() is not None:
                break
            _wait_exit(self.proc, 0.02)
        raise AssertionError("no log line matching %r within %.0fs\n%s" % (
            pattern, timeout, self.log_tail()))

    def log_tail(self, max_chars=30000):
        text = self.log_text()
        if len(text) > max_chars:
            text = "[... %d chars cut ...]\n" % (len(text) - max_chars) + text[-max_chars:]
        return text

    def rss_kb(self):
        """VmRSS of the broker process in kB (from /proc/PID/status)."""
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for pid %d" % self.pid)

    def assert_alive(self):
        rc = self.proc.poll()
        assert rc is None, "broker exited with status %s\n%s" % (rc, self.log_tail())

    def stop(self):
        """SIGTERM by PID, wait with a deadline, return the exit status (or a
        text saying what went wrong). Records in self.died whether the
        process had already exited before it was asked to stop."""
        if self.stopped:
            return self.status
        self.stopped = True
        self.died = self.proc.poll() is not None
        if not self.died:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT)
                self.status = "did not exit within %.0fs of SIGTERM" % STOP_TIMEOUT
                return self.status
        self.status = self.proc.returncode
        return self.status

    def kill(self):
        """SIGKILL by PID (a crash, as far as the broker can tell), wait
        with a deadline, return the exit status. The broker is then exempt
        from the teardown's exit-status check."""
        if self.stopped:
            return self.status
        self.stopped = True
        self.died = self.proc.poll() is not None
        if not self.died:
            self.killed = True
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT)
        self.status = self.proc.returncode
        return self.status


def _wait_exit(proc, timeout):
    """Waits up to timeout for proc to exit; True when it has."""
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def _wait_port(proc, port, deadline):
    """Poll-connect until the port accepts, the process dies, or deadline."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            # not listening yet: wait for the process to exit, at most
            # 20 ms, before the next try (a death ends the wait at once)
            _wait_exit(proc, 0.02)
    return False


def _wait_log(proc, log_path, text, deadline):
    """Poll the log file until it contains text, the process dies, or
    deadline (poll interval under a deadline, not synchronisation)."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with open(log_path, "r", errors="replace") as f:
            if text in f.read():
                return True
        _wait_exit(proc, 0.02)
    return False


def _mosquitto_conf(port, data_dir, env):
    unsupported = [k for k in env if k not in MOSQUITTO_OPTIONS]
    if unsupported:
        pytest.skip("mosquitto has no counterpart for " + ", ".join(sorted(unsupported)))
    lines = [
        "allow_anonymous true",
        "persistence false",
        "log_dest stderr",
        "log_type all",
        "connection_messages true",
        "max_keepalive 65535",
    ]
    listener = ["listener %d 127.0.0.1" % port]
    for key, value in env.items():
        opt = MOSQUITTO_OPTIONS[key]
        if opt == "max_keepalive":
            # replaces the default line above (0 is not "no maximum" there)
            lines.remove("max_keepalive 65535")
            value = value if value != "0" else "65535"
        (listener if opt in MOSQUITTO_LISTENER_OPTIONS else lines).append(
            "%s %s" % (opt, value))
    path = os.path.join(data_dir, "mosquitto.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines + listener) + "\n")
    return path


def _normalise_env(env):
    out = {}
    for key, value in env.items():
        key = key.upper()
        if not key.startswith("MQD_"):
            key = "MQD_" + key
        out[key] = str(value)
    return out


@pytest.fixture
def start_broker(request, tmp_path):
    brokers = []
    request.node.stash[_BROKERS] = brokers

    def start(proc_env=None, data_dir=None, port=None, expect_exit=False, **env):
        env = _normalise_env(env)
        n = len(brokers)
        if data_dir is None:
            data_dir = tmp_path / ("data%d" % n)
            data_dir.mkdir()
        else:
            data_dir = Path(data_dir)
            data_dir.mkdir(parents=True, exist_ok=True)
        log_path = str(tmp_path / ("broker%d.stderr.log" % n))
        for attempt in range(3):
            if attempt == 0 and port is not None:
                want = port
            else:
                want = free_port()
            port = want
            if BROKER_KIND == "mosquitto":
                conf = _mosquitto_conf(port, str(data_dir), env)
                cmd = [MOSQUITTO_BIN, "-c", conf]
                penv = dict(os.environ)
            else:
                cmd = [MQD_BIN, "--bind", "127.0.0.1", "-p", str(port),
                       "--data-dir", str(data_dir), "--log-level", "debug",
                       "--node-name", env.get("MQD_NODE_NAME", "test")]
                penv = dict(os.environ)
                # every broker has its own cluster port (tests run in
                # parallel; the default 7883 would be taken)
                penv["MQD_CLUSTER_BIND"] = "127.0.0.1"
                penv["MQD_CLUSTER_PORT"] = str(free_port())
                # and its own admin API port (the default 8081 likewise)
                penv["MQD_ADMIN_PORT"] = str(free_port())
                penv.update(env)
            penv.update(proc_env or {})
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=log, env=penv)
            b = Broker(BROKER_KIND, port, proc, log_path, str(data_dir), env)
            b.admin_port = int(penv.get("MQD_ADMIN_PORT", 0))
            brokers.append(b)
            deadline = time.monotonic() + START_TIMEOUT
            if expect_exit:
                if _wait_port(proc, port, deadline):
                    pytest.fail("broker started on port %d, expected it to exit\n%s"
                                % (port, b.log_tail()))
                if proc.poll() is None:
                    b.start_failed = True
                    b.stop()
                    pytest.fail("broker neither listened nor exited within %.0fs\n%s"
                                % (START_TIMEOUT, b.log_tail()))
                b.start_failed = True      # the test asserts on the status
                b.stopped = True
                b.status = proc.returncode
                return b
            if BROKER_KIND == "mosquitto":
                # mosquitto miscounts a connection closed before CONNECT
                # against max_connections: wait for its "running" log line
                # instead of probing the port
                ready = _wait_log(proc, log_path, " running", deadline)
            else:
                ready = _wait_port(proc, port, deadline)
            if ready:
                return b
            if proc.poll() is None:
                b.start_failed = True
                b.stop()
                pytest.fail("broker did not accept on port %d within %.0fs\n%s"
                            % (port, START_TIMEOUT, b.log_tail()))
            b.start_failed = True
            if "in use" not in b.log_text():
                pytest.fail("broker exited with status %s at start\n%s"
                            % (proc.returncode, b.log_tail()))
            # the free port was taken in the meantime: try another one
        pytest.fail("could not start a broker on a free port")

    yield start

    problems = []
    for b in brokers:
        if b.start_failed:
            continue          # reported when it happened
        status = b.stop()
        if b.killed:
            pass                  # SIGKILLed by the test: no exit status to check
        elif b.died:
            problems.append("broker pid %d died during the test (status %s)"
                            % (b.pid, status))
        elif status != 0:
            problems.append("broker pid %d: exit status %s after SIGTERM, expected 0"
                            % (b.pid, status))
        text = b.log_text()
        for marker in SANITIZER_MARKERS:
            if marker in text:
                problems.append("broker pid %d: %r in its stderr" % (b.pid, marker))
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


@pytest.fixture
def broker(start_broker):
    return start_broker()


@pytest.fixture
def clients(start_broker):
    # depends on start_broker so that clients are torn down before brokers
    c = Clients()
    yield c
    c.close_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for b in item.stash.get(_BROKERS, []):
            rep.sections.append(("%s pid %d port %d stderr (%s)" % (
                b.kind, b.pid, b.port, b.log_path), b.log_tail()))
