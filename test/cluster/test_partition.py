"""A network partition, made for real: three mqd nodes, each in a network
namespace of its own (ip netns), joined by veth pairs to a bridge that this
test creates in the root namespace; the test's clients reach the nodes
through the bridge. Cutting node 3's cable (its veth down) splits the
cluster in two: each side declares the other dead and goes on. What is
published on the majority side for a persistent session on node 3 is
acknowledged and waits in the outboxes; when the cable is back the two
sides find each other again (the seeds are dialed again) and node 3's
session gets every acknowledged message, once.

It needs root and iproute2; where network namespaces cannot be made the
test is skipped with the reason (the machine does not allow it). Every
wait is on an event with a deadline; everything it made is removed by
name and every process it started is ended by PID.
"""

import os
import shutil
import signal
import subprocess
import time

import pytest

import mqtt5_raw as m5
from conftest import MQD_BIN

pytestmark = pytest.mark.skipif(
    os.environ.get("MQD_TEST_BROKER", "mqd") != "mqd",
    reason="mqd-specific: the cluster")

DEADLINE = 30.0
PERSIST = [(m5.SESSION_EXPIRY_INTERVAL, 3600)]


def _ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, check=check, timeout=30)


class Node:
    """An mqd in a namespace: reached at host:1883 from the root one."""

    def __init__(self, name, ns, host, seeds, data_dir, log_path):
        self.name, self.ns, self.host, self.port = name, ns, host, 1883
        self.log_path = log_path
        env = dict(os.environ)
        env.update(MQD_NODE_NAME=name, MQD_MQTT_BIND="0.0.0.0",
                   MQD_MQTT_PORT="1883", MQD_CLUSTER_BIND="0.0.0.0",
                   MQD_CLUSTER_PORT="7883",
                   MQD_CLUSTER_ADVERTISE="%s:7883" % host,
                   MQD_CLUSTER_SEEDS=",".join("%s:7883" % s for s in seeds),
                   MQD_ADMIN_PORT="8081", MQD_NODE_DATA_DIR=data_dir,
                   MQD_NODE_LOG_LEVEL="info")
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, MQD_BIN], env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_log(self, text, after=0, timeout=DEADLINE):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("%s exited (%s):\n%s" % (
                    self.name, self.proc.returncode, self.log()[-3000:]))
            if text in self.log()[after:]:
                return
            try:  # between reads, wait on the process: its exit ends it
                self.proc.wait(0.05)
            except subprocess.TimeoutExpired:
                pass
        raise AssertionError("%s: no %r within %.0fs\n%s" % (
            self.name, text, timeout, self.log()[-3000:]))

    def stop(self):
        if self.proc.poll() is None:
            # ip netns exec runs mqd in its place (exec): this PID is mqd
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(20)
        return self.proc.returncode


@pytest.fixture
def partitionable(tmp_path):
    """Three namespaced nodes on a bridge; yields (nodes, cut, heal)."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("network namespaces need root and iproute2")
    tag = "%x" % (os.getpid() & 0xffff)
    net = 10 + os.getpid() % 200  # 10.231.<net>.0/24, private to the test
    br = "mqbr" + tag
    made_ns, made_links, nodes = [], [], []
    try:
        probe = _ip("netns", "add", "mqd%s-probe" % tag, check=False)
        if probe.returncode != 0:
            pytest.skip("cannot make a network namespace here: " +
                        probe.stderr.strip())
        _ip("netns", "del", "mqd%s-probe" % tag)
        _ip("link", "add", br, "type", "bridge")
        made_links.append(br)
        _ip("addr", "add", "10.231.%d.1/24" % net, "dev", br)
        _ip("link", "set", br, "up")
        hosts = ["10.231.%d.%d" % (net, 11 + i) for i in range(3)]
        for i, host in enumerate(hosts):
            ns = "mqd%s-n%d" % (tag, i + 1)
            outer, inner = "mqv%s%d" % (tag, i + 1), "eth0"
            _ip("netns", "add", ns)
            made_ns.append(ns)
            _ip("link", "add", outer, "type", "veth", "peer", "name",
                "mqp%s%d" % (tag, i + 1))
            made_links.append(outer)
            _ip("link", "set", "mqp%s%d" % (tag, i + 1), "netns", ns)
            _ip("-n", ns, "link", "set", "mqp%s%d" % (tag, i + 1), "name",
                inner)
            _ip("-n", ns, "addr", "add", host + "/24", "dev", inner)
            _ip("-n", ns, "link", "set", inner, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("link", "set", outer, "master", br)
            _ip("link", "set", outer, "up")
        for i, host in enumerate(hosts):
            data = tmp_path / ("data%d" % (i + 1))
            data.mkdir()
            nodes.append(Node("n%d" % (i + 1), made_ns[i], host,
                              [h for h in hosts if h != host], str(data),
                              str(tmp_path / ("n%d.log" % (i + 1)))))

        def cut(i):
            _ip("link", "set", "mqv%s%d" % (tag, i + 1), "down")

        def heal(i):
            _ip("link", "set", "mqv%s%d" % (tag, i + 1), "up")
        yield nodes, cut, heal
        for nd in nodes:
            assert nd.stop() == 0, "%s did not stop cleanly:\n%s" % (
                nd.name, nd.log()[-3000:])
    finally:
        for nd in nodes:
            if nd.proc.poll() is None:
                os.kill(nd.proc.pid, signal.SIGKILL)
                nd.proc.wait(20)
        for ns in made_ns:
            _ip("netns", "del", ns, check=False)
        for link in made_links:
            _ip("link", "del", link, check=False)


def _collect(s, n):
    got = []
    while len(got) < n:
        p = s.expect(m5.PUBLISH)
        s.ack(p)
        got.append(p.payload)
    return got


def test_partition_heals_without_losing_acknowledged_messages(
        partitionable, clients):
    """[#6] cut node 3 off: both sides see the other dead and go on;
    QoS 1 and 2 messages published on node 1 for node 3's persistent
    session are acknowledged meanwhile; healed, the cluster is whole again
    and the session gets each of them once, in order."""
    nodes, cut, heal = partitionable
    n1, n2, n3 = nodes
    for nd in nodes:
        for other in nodes:
            if other is not nd:
                nd.wait_log("cluster member node=%s state=alive" %
                            other.name)
    sub = m5.client(clients, n3)
    sub.handshake("behind-the-cut", clean_start=False, props=PERSIST)
    sub.subscribe([("part/#", m5.sub_options(2))])
    pub = m5.client(clients, n1)
    pub.handshake("part-pub")
    # the route reached node 1: a QoS 0 probe gets through
    deadline = time.monotonic() + DEADLINE
    while True:
        assert time.monotonic() < deadline, "no route to node 3"
        pub.publish("part/probe", b"probe", qos=0)
        try:
            p = sub.expect(m5.PUBLISH, timeout=0.2)
            break
        except AssertionError as e:
            if "no PUBLISH" not in str(e):
                raise
    sub.disconnect()
    marks = [len(nd.log()) for nd in nodes]
    cut(2)
    n1.wait_log("cluster member node=n3 state=dead", after=marks[0])
    n2.wait_log("cluster member node=n3 state=dead", after=marks[1])
    n3.wait_log("cluster member node=n1 state=dead", after=marks[2])
    n3.wait_log("cluster member node=n2 state=dead", after=marks[2])
    # the majority side goes on, and acknowledges
    for i in range(20):
        ack = pub.publish("part/x", b"p%02d" % i, qos=1 + i % 2)
        assert ack.rc == 0, ack
    marks = [len(nd.log()) for nd in nodes]
    heal(2)
    # the two sides find each other again
    for nd, mark, others in ((n1, marks[0], [n3]), (n2, marks[1], [n3]),
                             (n3, marks[2], [n1, n2])):
        for other in others:
            nd.wait_log("cluster member node=%s state=alive" % other.name,
                        after=mark, timeout=60)
    s = m5.client(clients, n3)
    ack = s.handshake("behind-the-cut", clean_start=False, props=PERSIST)
    assert ack.session_present, ack
    got = [x for x in _collect(s, 20)]
    assert got == [b"p%02d" % i for i in range(20)], got
    s.subscribe([("zz/end", m5.sub_options(1))])
    s.publish("zz/end", b"end", qos=1)
    p = s.expect(m5.PUBLISH)
    assert p.payload == b"end", "a duplicate arrived: %r" % (p,)
