"""Cluster, first slice: several real mqd processes on loopback join
through a seed, see each other alive (SWIM-style probing), exchange routes,
and forward published messages to the nodes whose subscribers match; a
killed node is marked dead within 5 s, a restarted one rejoins, a node
that stops with SIGTERM is seen leaving, a peer with the wrong secret is
refused with a log line; QoS 1/2 forwards are acknowledged: a dead
node's persistent sessions get, from the outbox, what was published while
it was down (across restarts of either side, exactly once), and under
durability sync the publisher's PUBACK waits for the remote commit (at
most forward_timeout_ms).

Every wait is on an event (a log line, a message) with a deadline. Routes
travel asynchronously, so a test publishes a probe until the first copy
arrives before it counts anything.
"""

import json
import os
import signal
import time
import urllib.request

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
    sub = _subscriber(clients, c, "sub-c", [("t/#", 1), ("t/+/x", 2)])
    other = _subscriber(clients, b, "sub-b", [("unrelated/#", 1)])
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
    sub = _subscriber(clients, b, "will-watch", [("will/#", 1)])
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


# ---- acknowledged forwarding: outbox, duplicates, the sync ack ----

PERSIST = [(m5.SESSION_EXPIRY_INTERVAL, 3600)]


def _subscriber(clients, node, cid, filters, **kw):
    """An MQTT 5 client on node, connected as cid (kw: handshake options)
    and subscribed to filters, a list of (filter, QoS)."""
    s = m5.client(clients, node)
    s.handshake(cid, **kw)
    s.subscribe([(f, m5.sub_options(q)) for f, q in filters])
    return s


def _persistent_sub(clients, node, cid, flt, probe_from=None, probe=None):
    """A persistent MQTT 5 session on node subscribed to flt at QoS 1; with
    probe_from, probes until the route reached that node; disconnected
    (offline) on return."""
    s = _subscriber(clients, node, cid, [(flt, 1)], clean_start=False,
                    props=PERSIST)
    if probe_from is not None:
        pub = m5.client(clients, probe_from)
        pub.handshake(cid + "-prober")
        _probe(pub, s, probe)  # QoS 0: nothing of it is queued offline
        pub.disconnect()
    s.disconnect()


def _resume(clients, node, cid):
    s = m5.client(clients, node)
    ack = s.handshake(cid, clean_start=False, props=PERSIST)
    assert ack.session_present, "session present expected: %r" % ack
    return s


def _collect(s, n):
    """Acks and returns the payloads of the next n PUBLISHes that are not
    probes, in order."""
    got = []
    while len(got) < n:
        p = s.expect(m5.PUBLISH)
        s.ack(p)
        if p.payload != b"probe":
            got.append(p.payload)
    return got


def _nothing_more(s):
    """A marker published to s's own new subscription arrives next:
    nothing else was queued for s."""
    s.subscribe([("zz/end", m5.sub_options(1))])
    s.publish("zz/end", b"end", qos=1)
    p = s.expect(m5.PUBLISH)
    assert p.payload == b"end", "unexpected extra delivery %r" % (p,)


def _restart_a_then_b(start_broker, a, b, ports, entries):
    """kill -9 node a (b is dead already), restart it from its data dir
    with its outbox of entries for b, then restart b; b is returned once
    a has sent it the outbox again."""
    assert a.kill() == -signal.SIGKILL
    a2 = _node(start_broker, "a", ports[0], seeds=[ports[2]],
               data_dir=a.data_dir, port=a.port)
    _wait_log(a2, r"storage loaded .* outbox=%d " % entries)
    b2 = _node(start_broker, "b", ports[1], seeds=[ports[0]],
               data_dir=b.data_dir, port=b.port)
    _wait_log(a2, r"cluster outbox replay node=b entries=%d" % entries)
    return b2


def test_outbox_for_a_dead_node_survives_restarts(start_broker, clients):
    """[#6] kill -9 node b: the others mark it dead, drop the routes of its
    clean sessions and keep those of its persistent sessions; what matches
    them waits in the outbox (on disk: node a is killed and restarted too)
    and reaches b's persistent session once b is back, exactly once."""
    a, b, c, ports = _three(start_broker)
    clean = _subscriber(clients, b, "clean-b", [("vol/#", 1)])
    _persistent_sub(clients, b, "ps-b", "dur/#", probe_from=a, probe="dur/p")
    live = _subscriber(clients, c, "live-c", [("live/#", 1)])
    pa = m5.client(clients, a)
    pa.handshake("pub-a")
    _probe(pa, live, "live/probe")
    mark_a, mark_c = len(a.log_text()), len(c.log_text())
    assert b.kill() == -signal.SIGKILL
    for x, mark in ((a, mark_a), (c, mark_c)):
        _wait_log(x, r"cluster member node=b state=dead", after=mark)
        _wait_log(x, r"cluster routes dropped node=b routes=2 "
                     r"kept_durable=1", after=mark)
    # node a <-> node c traffic goes on while b is dead
    pa.publish("live/x", b"still here", qos=1)
    assert _collect(live, 1) == [b"still here"]
    pc = m5.client(clients, c)
    pc.handshake("pub-c")
    for i in range(30):
        pa.publish("dur/a", b"a%03d" % i, qos=1)
        pc.publish("dur/c", b"c%03d" % i, qos=2)
    # a clean session's route went with its node: nobody matches (0x10)
    assert pa.publish("vol/x", b"v", qos=1).rc == 0x10
    pa.disconnect()
    # the origin crashes and comes back: its outbox is on disk
    b2 = _restart_a_then_b(start_broker, a, b, ports, 30)
    s = _resume(clients, b2, "ps-b")
    got = _collect(s, 60)
    # every one, in each publisher's order
    assert [x for x in got if x[:1] == b"a"] == [b"a%03d" % i for i in range(30)]
    assert [x for x in got if x[:1] == b"c"] == [b"c%03d" % i for i in range(30)]
    _nothing_more(s)


def test_outbox_keeps_shared_groups_across_a_restart(start_broker, clients):
    """[#6] v5 section 4.8.2: a shared group whose only member is a
    persistent session on node b; b is killed, node a acknowledges 10 QoS 1
    messages for the group (they wait in a's outbox, on disk), then a is
    killed and restarted too. The restored outbox entries still name the
    group, so b gives them to its member once both are back: before, a
    restored entry reached b's plain subscribers only and the group's
    member lost every one of them."""
    a, b, c, ports = _three(start_broker)
    m = _subscriber(clients, b, "gm-b", [("$share/g/grp/#", 1)],
                    clean_start=False, props=PERSIST)
    pa = m5.client(clients, a)
    pa.handshake("gpub-a")
    _probe(pa, m, "grp/probe")  # node a knows the group on b
    m.disconnect()
    mark = len(a.log_text())
    assert b.kill() == -signal.SIGKILL
    _wait_log(a, r"cluster member node=b state=dead", after=mark)
    for i in range(10):
        assert pa.publish("grp/x", b"g%02d" % i, qos=1).rc == 0
    pa.disconnect()
    b2 = _restart_a_then_b(start_broker, a, b, ports, 10)
    s = _resume(clients, b2, "gm-b")
    assert _collect(s, 10) == [b"g%02d" % i for i in range(10)]
    _nothing_more(s)


def test_group_members_here_do_not_wait_for_a_dead_node(start_broker,
                                                       clients):
    """[#6] v5 section 4.8.2: a group with a persistent member on node b
    and a connected member on node a; b is killed: every message published
    on a goes to a's member at once, none waits in the outbox for b."""
    a, b, c, ports = _three(start_broker)
    mb = _subscriber(clients, b, "gd-b", [("$share/d/gd/#", 1)],
                     clean_start=False, props=PERSIST)
    ma = _subscriber(clients, a, "gd-a", [("$share/d/gd/#", 1)])
    mark = len(a.log_text())
    assert b.kill() == -signal.SIGKILL
    _wait_log(a, r"cluster member node=b state=dead", after=mark)
    pa = m5.client(clients, a)
    pa.handshake("gdpub-a")
    for i in range(10):
        assert pa.publish("gd/x", b"d%02d" % i, qos=1).rc == 0
    assert _collect(ma, 10) == [b"d%02d" % i for i in range(10)]
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/metrics"
                                % a.admin_port, timeout=10) as r:
        m = json.load(r)
    assert m["metrics"]["cluster.outbox"] == 0, m["metrics"]


def test_sync_ack_waits_for_the_remote_node(start_broker, clients):
    """[#6] durability sync: the publisher's PUBACK comes only once the
    node holding the persistent session has queued the message on disk.
    Node b is stopped (SIGSTOP) while the link stays up: no PUBACK; it
    comes after SIGCONT; then both nodes crash and b alone, restarted,
    still has the message."""
    pa, pb = free_port(), free_port()
    a = _node(start_broker, "a", pa, cluster_forward_timeout_ms=60000)
    b = _node(start_broker, "b", pb, seeds=[pa],
              cluster_forward_timeout_ms=60000)
    _alive(a, "b")
    _alive(b, "a")
    _persistent_sub(clients, b, "ps-w", "w/#", probe_from=a, probe="w/p")
    pub = m5.client(clients, a)
    pub.handshake("pub-w")
    os.kill(b.pid, signal.SIGSTOP)
    try:
        pub.send(m5.publish("w/1", b"held", qos=1, pid=7))
        # bounded negative check: no PUBACK while b cannot queue it
        with pytest.raises(AssertionError, match="no PUBACK"):
            pub.expect(m5.PUBACK, timeout=1.0)
    finally:
        os.kill(b.pid, signal.SIGCONT)
    ack = pub.expect(m5.PUBACK)
    assert ack.pid == 7 and ack.rc == 0, ack
    assert a.kill() == -signal.SIGKILL
    assert b.kill() == -signal.SIGKILL
    b2 = _node(start_broker, "b", pb, data_dir=b.data_dir, port=b.port)
    s = _resume(clients, b2, "ps-w")
    assert _collect(s, 1) == [b"held"]
    _nothing_more(s)


def test_forward_timeout_hands_over_to_the_outbox(start_broker, clients):
    """[#6] a peer that does not answer within forward_timeout_ms does not
    hold the publisher: the PUBACK comes, the message waits in the outbox
    and is delivered once the peer answers again."""
    pa, pb = free_port(), free_port()
    a = _node(start_broker, "a", pa, cluster_forward_timeout_ms=300)
    b = _node(start_broker, "b", pb, seeds=[pa])
    _alive(a, "b")
    _persistent_sub(clients, b, "ps-t", "t/#", probe_from=a, probe="t/p")
    pub = m5.client(clients, a)
    pub.handshake("pub-t")
    os.kill(b.pid, signal.SIGSTOP)
    try:
        ack = pub.publish("t/1", b"late", qos=1, timeout=10)
        assert ack.rc == 0, ack
    finally:
        os.kill(b.pid, signal.SIGCONT)
    s = _resume(clients, b, "ps-t")
    assert _collect(s, 1) == [b"late"]
    _nothing_more(s)


def test_outbox_bound_counts_drops(start_broker, clients):
    """[#6] the outbox of a node that is down is bounded (outbox_max): what
    does not fit is dropped and counted in a log line."""
    pa, pb = free_port(), free_port()
    a = _node(start_broker, "a", pa, cluster_outbox_max=5)
    b = _node(start_broker, "b", pb, seeds=[pa])
    _alive(a, "b")
    _persistent_sub(clients, b, "ps-o", "o/#", probe_from=a, probe="o/p")
    mark = len(a.log_text())
    assert b.kill() == -signal.SIGKILL
    _wait_log(a, r"cluster member node=b state=dead", after=mark)
    pub = m5.client(clients, a)
    pub.handshake("pub-o")
    for i in range(8):
        pub.publish("o/x", b"%d" % i, qos=1)
    _wait_log(a, r"cluster outbox full node=b entries=5 dropped_total=1",
              after=mark)
    # and the operator sees it: metrics and the per-peer outbox depth
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/metrics"
                                % a.admin_port, timeout=10) as r:
        m = json.load(r)
    assert m["metrics"]["cluster.outbox"] == 5, m["metrics"]
    assert m["metrics"]["cluster.outbox_dropped.full"] == 3, m["metrics"]
    assert m["cluster_peers"]["b"]["outbox"] == 5, m["cluster_peers"]
    b2 = _node(start_broker, "b", pb, seeds=[pa], data_dir=b.data_dir,
               port=b.port)
    s = _resume(clients, b2, "ps-o")
    assert _collect(s, 5) == [b"0", b"1", b"2", b"3", b"4"]
    _nothing_more(s)


# ---- cluster-wide client ids: takeover ----

def _pair(start_broker):
    pa, pb = free_port(), free_port()
    a = _node(start_broker, "a", pa)
    b = _node(start_broker, "b", pb, seeds=[pa])
    _alive(a, "b")
    _alive(b, "a")
    return a, b


def test_takeover_moves_the_session_to_the_new_node(start_broker, clients):
    """[#6] [MQTT-3.1.4-3] v5: a client id is unique in the cluster. The
    client connects to node b while its connection and session live on
    node a: a sends the old connection DISCONNECT 0x8E and hands the
    session over (subscriptions, in-flight and queued messages, packet
    ids); b answers session present, resends the in-flight ones with DUP
    and the same packet ids, then the queued ones; later publishes on any
    node reach the client on b."""
    a, b = _pair(start_broker)
    old = m5.client(clients, a)
    old.handshake("mover", clean_start=False,
                  props=PERSIST + [(m5.RECEIVE_MAXIMUM, 2)])
    old.subscribe([("mv/#", m5.sub_options(1))])
    pub = m5.client(clients, a)
    pub.handshake("mv-pub")
    for i in range(5):
        pub.publish("mv/x", b"m%d" % i, qos=1)
    # two in flight (receive maximum 2), not acknowledged; three queued
    inflight = [old.expect(m5.PUBLISH) for _ in range(2)]
    assert [p.payload for p in inflight] == [b"m0", b"m1"]
    new = m5.client(clients, b)
    ack = new.handshake("mover", clean_start=False, props=PERSIST)
    assert ack.session_present, ack  # [MQTT-3.1.2-5] v5: resumed
    old.expect_disconnect(m5.SESSION_TAKEN_OVER)
    again = [new.expect(m5.PUBLISH) for _ in range(2)]
    for p, q in zip(again, inflight):
        # [MQTT-4.4.0-1] v5: resent with DUP, same packet id
        assert (p.payload, p.pid, p.dup) == (q.payload, q.pid, True), p
        new.ack(p)
    assert _collect(new, 3) == [b"m2", b"m3", b"m4"]
    # the route moved with the session: a publish on a reaches b
    pub.publish("mv/y", b"after", qos=1)
    assert _collect(new, 1) == [b"after"]
    _nothing_more(new)
    _wait_log(a, r"session handed over client=mover")
    _wait_log(b, r"session handed over client=mover")


def test_takeover_with_clean_start_discards_the_session(start_broker, clients):
    """[#6] [MQTT-3.1.2-4] v5: the same takeover with clean start: the old
    connection gets 0x8E, the session on the other node is discarded
    (session present 0, no subscriptions left anywhere)."""
    a, b = _pair(start_broker)
    old = _subscriber(clients, a, "cleaner", [("cl/#", 1)],
                      clean_start=False, props=PERSIST)
    new = m5.client(clients, b)
    ack = new.handshake("cleaner", clean_start=True)
    assert not ack.session_present, ack
    old.expect_disconnect(m5.SESSION_TAKEN_OVER)
    pub = m5.client(clients, a)
    pub.handshake("cl-pub")
    # 0x10: no subscriber anywhere any more
    assert pub.publish("cl/x", b"x", qos=1).rc == 0x10


def test_takeover_of_an_offline_session(start_broker, clients):
    """[#6] a persistent session left offline on node a, with messages
    queued for it, resumes on node b with all of them."""
    a, b = _pair(start_broker)
    _persistent_sub(clients, a, "roamer", "ro/#")
    pub = m5.client(clients, a)
    pub.handshake("ro-pub")
    for i in range(4):
        pub.publish("ro/x", b"q%d" % i, qos=2)
    s = _resume(clients, b, "roamer")
    assert _collect(s, 4) == [b"q0", b"q1", b"q2", b"q3"]
    _nothing_more(s)


def test_takeover_race_leaves_one_owner(start_broker, clients):
    """[#6] the same client id connecting to two nodes at once: exactly one
    connection is left; the other is refused (CONNACK 0x89) or, if it
    came first, taken over (DISCONNECT 0x8E, or closed before its CONNACK
    went out)."""
    a, b = _pair(start_broker)
    for round_ in range(5):
        cid = "racer%d" % round_
        ca = m5.client(clients, a)
        cb = m5.client(clients, b)
        ca.send(m5.connect(cid, clean_start=False, props=PERSIST))
        cb.send(m5.connect(cid, clean_start=False, props=PERSIST))
        alive = []
        for c in (ca, cb):
            try:
                ack = c.recv()
            except m5.Closed:
                # taken over before its CONNACK (held for the commit of
                # its new session) was written
                continue
            assert ack.type == m5.CONNACK, ack
            if ack.rc == 0:
                alive.append(c)
            else:
                assert ack.rc == 0x89, ack  # Server busy
        left = []
        for c in alive:
            c.send(m5.pingreq())
            try:
                got = c.recv()
            except m5.Closed:
                continue
            if got.type == m5.PINGRESP:
                left.append(c)
            else:
                assert got.type == m5.DISCONNECT and \
                    got.rc == m5.SESSION_TAKEN_OVER, got
        assert len(left) == 1, "round %d: %d connections left" % (
            round_, len(left))


# ---- shared subscriptions across the cluster ----

def test_shared_group_spans_the_cluster(start_broker, clients):
    """[#6] v5 section 4.8.2 (each message to one member of the group): a
    shared subscription group with members on all three nodes: each
    message goes to exactly one member of the group, in
    the whole cluster, and the nodes take turns (balanced); plain
    subscribers on the same topic still get every message."""
    a, b, c, _ = _three(start_broker)
    members = {}
    for node, name in ((a, "a"), (b, "b"), (c, "c")):
        for i in range(2):
            s = _subscriber(clients, node, "sh-%s%d" % (name, i),
                            [("$share/g/sh/#", 1)])
            members["%s%d" % (name, i)] = s
    plain = {}
    for node, name in ((b, "b"), (c, "c")):
        p = _subscriber(clients, node, "plain-" + name, [("sh/#", 1)])
        plain[name] = p
    pub = m5.client(clients, a)
    pub.handshake("sh-pub")
    # the plain routes were sent after the shared ones on each link: once
    # a probe reaches the plain subscriber, node a knows the group there
    for name, p in plain.items():
        _probe(pub, p, "sh/probe-" + name)
    # the probes went to the group too: drain them before counting
    for s in members.values():
        while True:
            try:
                q = s.expect(m5.PUBLISH, timeout=0.3)
            except AssertionError as e:
                if "no PUBLISH" not in str(e):
                    raise
                break
            s.ack(q)
    n = 60
    for i in range(n):
        pub.publish("sh/x", b"s%02d" % i, qos=1)
    got = {k: [] for k in members}
    deadline = time.monotonic() + DEADLINE
    while sum(len(v) for v in got.values()) < n:
        assert time.monotonic() < deadline, got
        for k, s in members.items():
            try:
                q = s.expect(m5.PUBLISH, timeout=0.05)
            except AssertionError as e:
                if "no PUBLISH" not in str(e):
                    raise
                continue
            s.ack(q)
            got[k].append(q.payload)
    everything = sorted(x for v in got.values() for x in v)
    assert everything == [b"s%02d" % i for i in range(n)], got
    per_node = {x: len(got[x + "0"]) + len(got[x + "1"]) for x in "abc"}
    for x, count in per_node.items():
        assert n // 6 <= count <= n // 2, per_node  # turns, not one node
    for k, v in got.items():
        assert v, "member %s got nothing: %r" % (k, per_node)
    for k, s in members.items():  # nothing more, to anyone (bounded wait)
        with pytest.raises(AssertionError, match="no PUBLISH"):
            s.expect(m5.PUBLISH, timeout=0.3)
    for p in plain.values():
        assert _collect(p, n) == [b"s%02d" % i for i in range(n)]
