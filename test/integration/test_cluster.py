"""Cluster, first slice: several real mqd processes on loopback join
through a seed, see each other alive (SWIM-style probing), exchange routes,
and forward published messages to the nodes whose subscribers match; a
killed node is marked dead within 5 s, a restarted one rejoins, a node
that stops with SIGTERM is seen leaving, a peer with the wrong secret is
refused with a log line.

Every wait is on an event (a log line, a message) with a deadline. Routes
travel asynchronously, so a test publishes a probe until the first copy
arrives before it counts anything.
"""

import os
import signal
import time

import pytest

import mqtt5_raw as m5
from conftest import free_port

pytestmark = pytest.mark.skipif(
    os.environ.get("MQD_TEST_BROKER", "mqd") != "mqd",
    reason="mqd-specific: the cluster")

DEADLINE = 20.0


def _node(start_broker, name, cport, seeds=None, data_dir=None, port=None,
          **env):
    env = dict(env, node_name=name, cluster_port=cport)
    if seeds:
        env["cluster_seeds"] = ",".join("127.0.0.1:%d" % p for p in seeds)
    return start_broker(data_dir=data_dir, port=port, **env)


def _wait_log(b, pattern, timeout=DEADLINE, after=0):
    return b.wait_log(pattern, timeout, after)


def _alive(b, name, after=0):
    return _wait_log(b, r"cluster member node=%s state=alive" % name,
                     after=after)


def _three(start_broker):
    ports = [free_port() for _ in range(3)]
    a = _node(start_broker, "a", ports[0])
    b = _node(start_broker, "b", ports[1], seeds=[ports[0]])
    c = _node(start_broker, "c", ports[2], seeds=[ports[0]])
    # joined through one seed, each learns every other member
    for x, others in ((a, "bc"), (b, "ac"), (c, "ab")):
        for o in others:
            _alive(x, o)
    return a, b, c, ports


def _probe(pub, sub, topic, timeout=DEADLINE):
    """Publishes QoS 0 probes on topic until sub receives one (the route
    reached the publisher's node); drains the extra probes."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        pub.publish(topic, b"probe", qos=0)
        try:
            p = sub.expect(m5.PUBLISH, timeout=0.2)
            assert p.payload == b"probe", p
            return
        except AssertionError as e:
            if "no PUBLISH" not in str(e):
                raise
    raise AssertionError("route to %r never arrived" % topic)


def _drain_probes(sub, pub, marker_topic):
    """Reads until a QoS 1 marker published after the probes arrives."""
    pub.publish(marker_topic, b"marker", qos=1)
    while True:
        p = sub.expect(m5.PUBLISH)
        sub.ack(p)
        if p.payload == b"marker":
            return


def test_join_routes_and_forwarding(start_broker, clients):
    """A publish on any node reaches the matching subscribers on every other
    node, once per subscriber, with QoS, MQTT 5 properties and the
    retain-as-published rule as on one node."""
    a, b, c, _ = _three(start_broker)
    sub = m5.client(clients, c)
    sub.handshake("sub-c")
    sub.subscribe([("t/#", m5.sub_options(1)), ("t/+/x", m5.sub_options(2))])
    other = m5.client(clients, b)
    other.handshake("sub-b")
    other.subscribe([("unrelated/#", m5.sub_options(1))])
    pub = m5.client(clients, a)
    pub.handshake("pub-a")
    _probe(pub, sub, "t/probe")
    _drain_probes(sub, pub, "t/marker")

    props = [(m5.CONTENT_TYPE, "text/plain"),
             (m5.USER_PROPERTY, ("k", "v1")),
             (m5.USER_PROPERTY, ("k", "v2")),
             (m5.MESSAGE_EXPIRY_INTERVAL, 3600)]
    for i in range(50):
        pub.publish("t/%d/x" % i, b"m%d" % i, qos=1, props=props)
    got = []
    for i in range(50):
        p = sub.expect(m5.PUBLISH)
        sub.ack(p)
        got.append(p)
    # overlapping subscriptions on node c: one copy each, at the higher
    # QoS, capped by the message's QoS 1 ([MQTT-3.3.5-1] both)
    assert [(p.topic, p.payload, p.qos) for p in got] == [
        (b"t/%d/x" % i, b"m%d" % i, 1) for i in range(50)]
    for p in got:
        # [MQTT-3.3.2-15] [MQTT-3.3.2-17] v5: properties forwarded as sent,
        # user properties in order; the expiry counts down
        assert p.props.get(m5.CONTENT_TYPE) == b"text/plain", p
        assert p.props.all(m5.USER_PROPERTY) == [(b"k", b"v1"), (b"k", b"v2")], p
        assert 3500 < p.props.get(m5.MESSAGE_EXPIRY_INTERVAL) <= 3600, p
        assert not p.retain
    # nothing for the subscriber on b: the marker comes first
    pub.publish("unrelated/m", b"only-b", qos=1)
    p = other.expect(m5.PUBLISH)
    assert p.payload == b"only-b", p


def test_will_fires_cluster_wide(start_broker, clients):
    """[MQTT-3.1.2-8] both: the will of a client that vanished from node a
    reaches a subscriber on node b."""
    a, b, c, _ = _three(start_broker)
    sub = m5.client(clients, b)
    sub.handshake("will-watch")
    sub.subscribe([("will/#", m5.sub_options(1))])
    pub = m5.client(clients, a)
    pub.handshake("will-probe")
    _probe(pub, sub, "will/probe")
    _drain_probes(sub, pub, "will/marker")
    w = m5.client(clients, a)
    w.handshake("will-owner", will=dict(topic="will/gone", payload=b"bye", qos=1))
    w.abort()
    p = sub.expect(m5.PUBLISH)
    assert (p.topic, p.payload) == (b"will/gone", b"bye"), p


def test_killed_node_dead_within_5s_and_rejoins(start_broker):
    """A kill -9'd node is marked dead by the others within 5 s (the
    default); started again on its data dir it rejoins by itself."""
    a, b, c, ports = _three(start_broker)
    mark_a, mark_c = len(a.log_text()), len(c.log_text())
    t0 = time.monotonic()
    status = b.kill()
    assert status == -signal.SIGKILL
    _wait_log(a, r"cluster member node=b state=dead", after=mark_a)
    _wait_log(c, r"cluster member node=b state=dead", after=mark_c)
    took = time.monotonic() - t0
    assert took <= 5.5, "dead after %.1f s" % took
    mark_a, mark_c = len(a.log_text()), len(c.log_text())
    _node(start_broker, "b", ports[1], seeds=[ports[0]],
          data_dir=b.data_dir, port=b.port)
    _alive(a, "b", after=mark_a)
    _alive(c, "b", after=mark_c)


def test_peers_dialed_by_name(start_broker):
    """Seeds and advertised addresses may be host names (docker-compose
    gives service names): each dial looks the name up again, without
    blocking the node, and a name that does not resolve is one failed dial
    like any other while the other seeds are joined."""
    pa, pb = free_port(), free_port()
    a = start_broker(node_name="a", cluster_port=pa,
                     cluster_advertise="localhost:%d" % pa)
    b = start_broker(node_name="b", cluster_port=pb,
                     cluster_advertise="localhost:%d" % pb,
                     cluster_seeds="no-such-node.invalid:%d,localhost:%d"
                     % (pa, pa))
    _alive(a, "b")
    _alive(b, "a")
    _wait_log(b, r"cluster link dropped peer=no-such-node\.invalid:%d" % pa)


def test_sigterm_announces_leave(start_broker):
    a, b, c, _ = _three(start_broker)
    mark = len(a.log_text())
    assert b.stop() == 0
    _wait_log(a, r"cluster member node=b state=left", after=mark)


def test_wrong_secret_refused(start_broker):
    """A peer without the cluster secret is dropped with a clear log line,
    and the node carries on."""
    pa, pd = free_port(), free_port()
    a = _node(start_broker, "a", pa, cluster_secret="s3cret")
    d = _node(start_broker, "d", pd, seeds=[pa], cluster_secret="wrong")
    _wait_log(a, r"cluster link dropped .*reason=\"[^\"]*secret")
    assert "cluster member node=d state=alive" not in a.log_text()
    a.assert_alive()
    d.assert_alive()


def _retained_on(clients, node, flt, want, timeout=DEADLINE):
    """Subscribes to flt on node again and again (a new session each time)
    until the retained messages it gets are exactly `want`
    ({topic: payload}); replication is asynchronous."""
    t0 = time.monotonic()
    got = None
    while time.monotonic() - t0 < timeout:
        c = m5.client(clients, node)
        c.handshake("ret-probe")
        c.subscribe([(flt, m5.sub_options(1))])
        # the marker ends what the broker sends for the new subscription
        c.subscribe([("zz-marker", m5.sub_options(0))])
        c.publish("zz-marker", b"end", qos=1)
        got = {}
        while True:
            p = c.expect(m5.PUBLISH)
            if p.topic == b"zz-marker":
                break
            c.ack(p)
            got[p.topic] = p.payload
        c.disconnect()
        if got == want:
            return   # else: at once again (each try is a round trip)
    raise AssertionError("retained on %r: %r, want %r" % (flt, got, want))


def test_retained_replicated_last_writer_wins(start_broker, clients):
    """A retained message set on one node is there for new subscribers on
    every node; a later one (on another node) wins everywhere; a clear
    replicates; a node that joins later catches up."""
    a, b, c, ports = _three(start_broker)
    pa = m5.client(clients, a)
    pa.handshake("ret-a")
    pa.publish("r/1", b"one-from-a", qos=1, retain=True)
    pa.publish("r/2", b"two-from-a", qos=1, retain=True)
    _retained_on(clients, c, "r/#", {b"r/1": b"one-from-a", b"r/2": b"two-from-a"})
    pb = m5.client(clients, b)
    pb.handshake("ret-b")
    pb.publish("r/1", b"one-from-b", qos=1, retain=True)   # later: wins
    pb.publish("r/2", b"", qos=1, retain=True)             # cleared
    want = {b"r/1": b"one-from-b"}
    for node in (a, b, c):
        _retained_on(clients, node, "r/#", want)
    d = _node(start_broker, "d", free_port(), seeds=[ports[0]])
    _retained_on(clients, d, "r/#", want)


def test_retained_set_while_node_down_reaches_it(start_broker, clients):
    a, b, c, ports = _three(start_broker)
    assert b.kill() == -signal.SIGKILL
    pa = m5.client(clients, a)
    pa.handshake("ret-a2")
    pa.publish("down/x", b"while b was down", qos=1, retain=True)
    b2 = _node(start_broker, "b", ports[1], seeds=[ports[0]],
               data_dir=b.data_dir, port=b.port)
    _retained_on(clients, b2, "down/#", {b"down/x": b"while b was down"})


def test_open_cluster_port_without_secret_warns(start_broker):
    """An operator learns at start that a cluster port reachable from
    other hosts accepts any peer while no secret is set."""
    open_ = _node(start_broker, "w1", free_port(), cluster_bind="0.0.0.0")
    _wait_log(open_, r"warn cluster link open without a secret")
    closed = _node(start_broker, "w2", free_port(), cluster_bind="0.0.0.0",
                   cluster_secret="s")
    loop = _node(start_broker, "w3", free_port())   # 127.0.0.1 (conftest)
    _wait_log(closed, r"mqd started")
    _wait_log(loop, r"mqd started")
    assert "without a secret" not in closed.log_text()
    assert "without a secret" not in loop.log_text()
