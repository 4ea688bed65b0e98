"""PUBLISH and the QoS 0/1/2 flows in both directions, packet identifiers,
QoS downgrade, ordering, the outgoing in-flight window and queue limits."""

import pytest

import mqtt_raw as m

# Bounded negative waits ("nothing arrives") last this long.
QUIET = 0.5


def _pair(broker, clients, sub_filters, tag="q"):
    sub = clients.raw(broker)
    sub.handshake(tag + "-sub")
    sub.subscribe(sub_filters)
    pub = clients.raw(broker)
    pub.handshake(tag + "-pub")
    return sub, pub


def _assert_no_ack_pending(c):
    """Event-based "no response": a PINGREQ is answered in order, so if the
    next packet is the PINGRESP, nothing was sent before it."""
    c.send(m.pingreq())
    pkt = c.recv()
    assert pkt.type == m.PINGRESP, "expected nothing before PINGRESP, got %r" % pkt


def test_v311_mqtt_4_3_1_1_qos0_delivery(broker, clients):
    sub, pub = _pair(broker, clients, [("q0/t", 2)])
    pub.send(m.publish("q0/t", b"zero", qos=0))
    # [MQTT-3.3.4-1] 3.1.1: nothing is sent back for a QoS 0 PUBLISH
    _assert_no_ack_pending(pub)
    p = sub.expect_publish()
    # [MQTT-4.3.1-1] 3.1.1: delivered as QoS 0; [MQTT-3.3.1-2] 3.1.1: DUP 0
    assert (p.qos, p.dup, p.retain) == (0, False, False)
    # [MQTT-2.3.1-5] 3.1.1: no Packet Identifier in a QoS 0 PUBLISH (the
    # payload starts right after the topic)
    assert p.pid is None and p.payload == b"zero"
    assert p.topic == b"q0/t"


def test_v311_mqtt_3_3_4_1_qos1_flow(broker, clients):
    sub, pub = _pair(broker, clients, [("q1/t", 1)])
    pub.send(m.publish("q1/t", b"one", qos=1, pid=0x1234))
    ack = pub.expect(m.PUBACK)
    # [MQTT-3.3.4-1] 3.1.1: QoS 1 -> PUBACK; [MQTT-2.3.1-6] 3.1.1 and
    # [MQTT-4.3.2-2] 3.1.1: with the PUBLISH's Packet Identifier
    assert ack.pid == 0x1234
    p = sub.expect_publish(ack=False)
    # [MQTT-4.3.2-1] 3.1.1: QoS 1, DUP 0, a non-zero identifier
    # ([MQTT-2.3.1-1] 3.1.1)
    assert (p.qos, p.dup, p.payload) == (1, False, b"one")
    assert p.pid != 0
    sub.send(m.puback(p.pid))
    _assert_no_ack_pending(sub)


def test_v311_mqtt_3_3_4_1_qos2_flow(broker, clients):
    sub, pub = _pair(broker, clients, [("q2/t", 2)])
    pub.send(m.publish("q2/t", b"two", qos=2, pid=0xBEEF))
    rec = pub.expect(m.PUBREC)
    # [MQTT-3.3.4-1] 3.1.1: QoS 2 -> PUBREC; [MQTT-4.3.3-2] 3.1.1 and
    # [MQTT-2.3.1-6] 3.1.1: same Packet Identifier
    assert rec.pid == 0xBEEF
    pub.send(m.pubrel(0xBEEF))
    comp = pub.expect(m.PUBCOMP)
    # [MQTT-4.3.3-2] 3.1.1: PUBREL -> PUBCOMP with the same identifier
    assert comp.pid == 0xBEEF
    p = sub.expect(m.PUBLISH)
    # [MQTT-4.3.3-1] 3.1.1: QoS 2, DUP 0, a non-zero identifier
    assert (p.qos, p.dup, p.payload) == (2, False, b"two")
    assert p.pid != 0
    sub.send(m.pubrec(p.pid))
    rel = sub.expect(m.PUBREL)
    # [MQTT-4.3.3-1] 3.1.1: after PUBREC the server sends PUBREL with the
    # original identifier; [MQTT-2.2.2-1] 3.1.1: its reserved flags are 0010
    assert (rel.pid, rel.flags) == (p.pid, 0x02)
    sub.send(m.pubcomp(p.pid))
    _assert_no_ack_pending(sub)


def test_v311_mqtt_4_3_3_2_qos2_duplicate_publish_delivered_once(broker, clients):
    sub, pub = _pair(broker, clients, [("eo/t", 2), ("eo/marker", 0)], "eo")
    pub.send(m.publish("eo/t", b"once", qos=2, pid=7))
    assert pub.expect(m.PUBREC).pid == 7
    # re-send before PUBREL (as after a lost PUBREC)
    pub.send(m.publish("eo/t", b"once", qos=2, pid=7, dup=True))
    # [MQTT-4.3.3-2] 3.1.1: answered with PUBREC again ...
    assert pub.expect(m.PUBREC).pid == 7
    pub.send(m.pubrel(7))
    assert pub.expect(m.PUBCOMP).pid == 7
    # ... and not delivered twice: the next thing after the one copy is a
    # marker published afterwards
    first = sub.expect_publish()
    assert first.payload == b"once"
    sub.expect_marker(pub, "eo/marker")
    # [MQTT-4.3.3-2] 3.1.1: after PUBCOMP the same identifier is a new
    # message
    pub.send(m.publish("eo/t", b"again", qos=2, pid=7))
    assert pub.expect(m.PUBREC).pid == 7
    pub.send(m.pubrel(7))
    assert pub.expect(m.PUBCOMP).pid == 7
    assert sub.expect_publish().payload == b"again"


def test_v311_mqtt_4_3_3_2_qos2_pubrel_unknown_id_gets_pubcomp(broker, clients):
    c = clients.raw(broker)
    c.handshake("relx")
    # a PUBREL whose PUBLISH the server already completed (a client re-sending
    # PUBREL after a lost PUBCOMP): answered with PUBCOMP, same identifier
    c.publish("relx/t", b"x", qos=2, pid=44)
    c.send(m.pubrel(44))
    # [MQTT-4.3.3-2] 3.1.1: respond to a PUBREL with PUBCOMP, same identifier
    assert c.expect(m.PUBCOMP).pid == 44


def test_v311_mqtt_4_3_2_2_qos1_id_reuse_after_puback_is_new_message(broker, clients):
    sub, pub = _pair(broker, clients, [("reuse/t", 1)], "reuse")
    pub.send(m.publish("reuse/t", b"first", qos=1, pid=9))
    assert pub.expect(m.PUBACK).pid == 9
    # [MQTT-4.3.2-2] 3.1.1: after the PUBACK, a PUBLISH with that identifier
    # is a new publication, whatever its DUP flag
    pub.send(m.publish("reuse/t", b"second", qos=1, pid=9, dup=True))
    assert pub.expect(m.PUBACK).pid == 9
    assert sub.expect_publish().payload == b"first"
    assert sub.expect_publish().payload == b"second"


def test_v311_mqtt_3_8_4_6_delivery_qos_is_minimum(broker, clients):
    subs = []
    for q in (0, 1, 2):
        s = clients.raw(broker)
        s.handshake("down-%d" % q)
        # [MQTT-3.8.4-5] 3.1.1: granted QoS returned (here = requested)
        assert s.subscribe([("down/t", q)]) == [q]
        subs.append(s)
    pub = clients.raw(broker)
    pub.handshake("down-pub")
    for pq in (0, 1, 2):
        pub.publish("down/t", b"pq%d" % pq, qos=pq)
        for sq, s in enumerate(subs):
            p = s.expect_publish()
            # [MQTT-3.8.4-6] 3.1.1: delivered at min(published, granted)
            assert p.payload == b"pq%d" % pq
            assert p.qos == min(pq, sq), "sub QoS %d, pub QoS %d, got %d" % (sq, pq, p.qos)


def test_v311_mqtt_3_3_1_3_dup_not_copied_from_publisher(broker, clients):
    sub1, pub = _pair(broker, clients, [("dup/t", 1)], "dup")
    sub0 = clients.raw(broker)
    sub0.handshake("dup-sub0")
    sub0.subscribe([("dup/t", 0)])
    # the publisher's first transmission, flagged DUP=1
    pub.send(m.publish("dup/t", b"d", qos=1, pid=3, dup=True))
    assert pub.expect(m.PUBACK).pid == 3
    p1 = sub1.expect_publish()
    # [MQTT-3.3.1-3] 3.1.1: outgoing DUP reflects only the server's own
    # retransmission: a first delivery has DUP 0
    assert (p1.qos, p1.dup) == (1, False)
    p0 = sub0.expect_publish()
    # [MQTT-3.3.1-2] 3.1.1: a QoS 0 PUBLISH always has DUP 0
    assert (p0.qos, p0.dup) == (0, False)


def test_v311_mqtt_2_3_1_4_outgoing_packet_ids_unique(start_broker, clients):
    b = start_broker(MQD_MQTT_MAX_INFLIGHT=16)
    sub, pub = _pair(b, clients, [("ids/#", 2)], "ids")
    n = 10
    for i in range(n):
        pub.publish("ids/%d" % i, b"%d" % i, qos=1 + i % 2)
    got = [sub.expect(m.PUBLISH) for _ in range(n)]
    pids = [p.pid for p in got]
    # [MQTT-2.3.1-1] 3.1.1: non-zero; [MQTT-4.3.2-1] 3.1.1,
    # [MQTT-4.3.3-1] 3.1.1 and [MQTT-2.3.1-4] 3.1.1: each new QoS 1/2 message
    # gets an identifier not in use (none of these is acknowledged yet)
    assert 0 not in pids
    assert len(set(pids)) == n, pids
    assert [p.qos for p in got] == [1 + i % 2 for i in range(n)]


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_v311_mqtt_4_6_0_6_ordered_delivery(broker, clients, qos):
    sub, pub = _pair(broker, clients, [("ord/t", 2)], "ord%d" % qos)
    n = 100
    # pipelined: all PUBLISHes go out before any acknowledgement is read
    data = b"".join(m.publish("ord/t", b"%03d" % i, qos=qos, pid=(i + 1) if qos else None)
                    for i in range(n))
    pub.send(data)
    if qos:
        acks = [pub.expect(m.PUBACK if qos == 1 else m.PUBREC, timeout=10) for _ in range(n)]
        # [MQTT-4.6.0-2] 3.1.1 (PUBACKs) / [MQTT-4.6.0-3] 3.1.1 (PUBRECs):
        # acknowledgements in the order the PUBLISHes arrived
        assert [a.pid for a in acks] == list(range(1, n + 1))
        if qos == 2:
            pub.send(b"".join(m.pubrel(i + 1) for i in range(n)))
            comps = [pub.expect(m.PUBCOMP, timeout=10) for _ in range(n)]
            assert [c.pid for c in comps] == list(range(1, n + 1))
    got = [sub.expect_publish(timeout=10).payload for _ in range(n)]
    # [MQTT-4.6.0-6] 3.1.1: one publisher, one topic, one QoS -> same order;
    # [MQTT-4.6.0-5] 3.1.1: topics are ordered by default
    assert got == [b"%03d" % i for i in range(n)]


def test_v311_mqtt_4_6_0_4_pubrel_order_follows_pubrec_order(start_broker, clients):
    b = start_broker(MQD_MQTT_MAX_INFLIGHT=10)
    sub, pub = _pair(b, clients, [("rel/t", 2)], "relord")
    for i in range(4):
        pub.publish("rel/t", b"%d" % i, qos=2)
    got = [sub.expect(m.PUBLISH) for _ in range(4)]
    order = [got[i].pid for i in (2, 0, 3, 1)]
    sub.send(b"".join(m.pubrec(pid) for pid in order))
    rels = [sub.expect(m.PUBREL) for _ in range(4)]
    # [MQTT-4.6.0-4] 3.1.1: PUBRELs in the order the PUBRECs arrived
    assert [r.pid for r in rels] == order
    sub.send(b"".join(m.pubcomp(pid) for pid in order))
    _assert_no_ack_pending(sub)


@pytest.mark.parametrize("qos", [1, 2])
def test_max_inflight_window(start_broker, clients, qos):
    # mqd: MQD_MQTT_MAX_INFLIGHT bounds the unacknowledged QoS 1/2 PUBLISHes
    # sent to one client; the rest wait and go out, in order, as acks free
    # the window
    window = 2
    b = start_broker(MQD_MQTT_MAX_INFLIGHT=window)
    sub, pub = _pair(b, clients, [("win/t", qos)], "win%d" % qos)
    n = 5
    for i in range(n):
        pub.publish("win/t", b"%d" % i, qos=qos)
    outstanding = [sub.expect(m.PUBLISH) for _ in range(window)]
    # the window is full: nothing more arrives (bounded wait)
    sub.expect_nothing(QUIET)
    received = list(outstanding)
    while outstanding:
        p = outstanding.pop(0)
        if qos == 1:
            sub.send(m.puback(p.pid))
        else:
            sub.send(m.pubrec(p.pid))
            rel = sub.expect(m.PUBREL, stash=True)
            assert rel.pid == p.pid
            sub.send(m.pubcomp(p.pid))
        if len(received) < n:
            nxt = sub.expect(m.PUBLISH)
            received.append(nxt)
            outstanding.append(nxt)
    assert [p.payload for p in received] == [b"%d" % i for i in range(n)]
    assert all(p.dup is False for p in received)
    _assert_no_ack_pending(sub)


def test_max_queued_offline_keeps_newest(start_broker, clients):
    # mqd: at most MQD_MQTT_MAX_QUEUED messages are queued per session;
    # beyond it the oldest are dropped (QoS 0 first)
    limit = 5
    b = start_broker(MQD_MQTT_MAX_QUEUED=limit)
    sub = clients.raw(b)
    sub.handshake("mq-sub", clean=False)
    sub.subscribe([("mq/t", 1)])
    sub.disconnect()
    pub = clients.raw(b)
    pub.handshake("mq-pub")
    n = 3 * limit
    for i in range(n):
        pub.publish("mq/t", b"%02d" % i, qos=1)
    again = clients.raw(b)
    ack = again.handshake("mq-sub", clean=False)
    assert ack.session_present == 1
    got = []
    while True:
        try:
            p = again.expect_publish(timeout=QUIET * 2)   # bounded: queue drained
        except AssertionError:
            break
        got.append(int(p.payload))
        assert len(got) <= n
    assert 1 <= len(got) <= limit, got
    assert got == sorted(got), got
    # oldest dropped: the newest message survived
    assert got[-1] == n - 1, got
