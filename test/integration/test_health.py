"""mqd --health: the one-shot probe the container HEALTHCHECK runs. It reads
the same configuration as mqd (file, MQD_* environment, flags), connects to
the MQTT port, sends CONNECT and expects a CONNACK: exit 0 and silence when
the node serves, exit 1 and one line on stderr when it does not."""

import os
import socket
import subprocess
import threading
import time

from conftest import MQD_BIN, free_port

PROBE_TIMEOUT = 15.0   # the probe gives up after 3 s; sanitizer builds are slow


def probe(*args, env=None):
    penv = {k: v for k, v in os.environ.items() if not k.startswith("MQD_")}
    penv.update(env or {})
    t0 = time.monotonic()
    r = subprocess.run([MQD_BIN, "--health", *args], env=penv,
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=PROBE_TIMEOUT)
    return r.returncode, r.stdout, r.stderr, time.monotonic() - t0


def test_healthy_node_by_flags(broker):
    rc, out, err, _ = probe("--bind", "127.0.0.1", "-p", str(broker.port))
    assert (rc, out, err) == (0, "", "")
    if broker.is_mqd:
        # the probe connected as a client and said goodbye, logged at
        # debug level: a HEALTHCHECK every few seconds is not news at info
        broker.wait_log(r"Z debug client connected client=mqd-health-", 10)
        broker.wait_log(r"Z debug client disconnected client=mqd-health-",
                        10)


def test_healthy_node_by_environment(broker):
    # as in a container: the probe sees the node's own MQD_* variables; an
    # empty or wildcard bind is probed on the loopback address
    for bind in ("", "0.0.0.0", "127.0.0.1"):
        rc, out, err, _ = probe(env={"MQD_MQTT_PORT": str(broker.port),
                                     "MQD_MQTT_BIND": bind})
        assert (rc, err) == (0, ""), bind


def test_healthy_node_by_file(broker, tmp_path):
    conf = tmp_path / "mqd.conf"
    conf.write_text("[mqtt]\nbind = 127.0.0.1\nport = %d\n" % broker.port)
    rc, _, err, _ = probe("-c", str(conf))
    assert (rc, err) == (0, "")


def test_node_refusing_anonymous_is_healthy(start_broker, tmp_path):
    users = tmp_path / "users"
    users.write_text("alice:secret\n")
    b = start_broker(auth_password_file=str(users), auth_allow_anonymous="false")
    b.require_mqd("auth settings")
    # CONNACK 0x05 still means the node serves
    rc, _, err, _ = probe("--bind", "127.0.0.1", "-p", str(b.port))
    assert (rc, err) == (0, "")


def test_no_broker_running():
    port = free_port()
    rc, out, err, took = probe("--bind", "127.0.0.1", "-p", str(port))
    assert rc == 1
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0] == "mqd: health: 127.0.0.1:%d: connect: Connection refused" % port
    assert took < PROBE_TIMEOUT


def test_broker_stopped(start_broker):
    b = start_broker()
    rc, _, _, _ = probe("--bind", "127.0.0.1", "-p", str(b.port))
    assert rc == 0
    b.stop()
    rc, _, err, _ = probe("--bind", "127.0.0.1", "-p", str(b.port))
    assert rc == 1
    assert "connect: Connection refused" in err


class FakeServer:
    """A listener on 127.0.0.1 that answers every connection with @reply
    (None: reads and never answers)."""

    def __init__(self, reply):
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            c, _ = self.sock.accept()
        except OSError:
            return
        self.conns.append(c)
        c.settimeout(10)
        try:
            c.recv(256)
            if self.reply is not None:
                c.sendall(self.reply)
        except OSError:
            pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()
        self.thread.join(10)


def test_listener_that_never_answers():
    srv = FakeServer(None)
    try:
        rc, _, err, took = probe("--bind", "127.0.0.1", "-p", str(srv.port))
    finally:
        srv.close()
    assert rc == 1
    assert err == "mqd: health: 127.0.0.1:%d: no CONNACK within 3000 ms\n" % srv.port
    assert 2.5 < took < PROBE_TIMEOUT


def test_listener_that_is_not_mqtt():
    srv = FakeServer(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    try:
        rc, _, err, _ = probe("--bind", "127.0.0.1", "-p", str(srv.port))
    finally:
        srv.close()
    assert rc == 1
    assert "answer is not a CONNACK" in err
    assert len(err.splitlines()) == 1


def test_connack_refused_for_another_reason():
    # 0x03: server unavailable
    srv = FakeServer(bytes([0x20, 0x02, 0x00, 0x03]))
    try:
        rc, _, err, _ = probe("--bind", "127.0.0.1", "-p", str(srv.port))
    finally:
        srv.close()
    assert rc == 1
    assert err.endswith("CONNACK refused rc=3\n")


def test_help_names_the_probe():
    r = subprocess.run([MQD_BIN, "--help"], capture_output=True, text=True,
                       timeout=PROBE_TIMEOUT)
    assert r.returncode == 0
    assert "--health" in r.stdout


def test_bad_configuration_is_exit_2():
    rc, _, err, _ = probe(env={"MQD_MQTT_PORT": "70000"})
    assert rc == 2
    assert "MQD_MQTT_PORT" in err
