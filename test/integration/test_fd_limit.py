"""Out of file descriptors: when mqd cannot accept (EMFILE), it pauses
accepting instead of spinning on the pending connection, keeps serving the
clients it has, and accepts the waiting ones once descriptors free up."""

import os
import resource
import signal
import socket
import subprocess
import time

import mqtt_raw as m
from conftest import MQD_BIN, _wait_port

LIMIT = 40


def _cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_emfile_pauses_accept_and_recovers(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "mqd.log", "w")
    proc = subprocess.Popen(
        [MQD_BIN, "--bind", "127.0.0.1", "-p", str(port), "--data-dir",
         str(tmp_path / "data"), "--log-level", "info"],
        stdout=log, stderr=subprocess.STDOUT,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                              (LIMIT, LIMIT)))
    socks = []
    try:
        assert _wait_port(proc, port, time.monotonic() + 20)
        # more clients than mqd has descriptors for
        for i in range(LIMIT + 10):
            c = m.RawClient("127.0.0.1", port)
            c.send(m.connect("fd-%d" % i))
            socks.append(c)
        served = [c for c in socks[:10]]
        for c in served:
            assert c.expect(m.CONNACK).rc == 0
        waiting = socks[-1]
        waiting.expect_nothing(0.5)     # bounded: it cannot be accepted yet
        # not spinning on the pending connection while it waits
        cpu0 = _cpu_seconds(proc.pid)
        waiting.expect_nothing(1.0)
        assert _cpu_seconds(proc.pid) - cpu0 < 0.5
        # the clients it has are still served
        served[0].ping()
        # free descriptors: the waiting client is accepted and answered
        for c in socks[:30]:
            c.close()
        assert waiting.expect(m.CONNACK, timeout=10).rc == 0
    finally:
        for c in socks:
            c.close()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
        log.close()
    text = (tmp_path / "mqd.log").read_text()
    assert rc == 0, text
    assert "accept failed" in text
    assert "AddressSanitizer" not in text and "runtime error:" not in text
