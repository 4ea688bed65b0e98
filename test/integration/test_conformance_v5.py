"""MQTT 5.0 conformance: statements of ../shared/MQTT-CHECKLIST.md that no
other file covered (packet identifiers, QoS 1/2 server obligations as
sender and receiver, reason strings dropped for the client's Maximum Packet
Size, the one-CONNACK and no-DISCONNECT-before-CONNACK rules, enhanced
authentication and its refusals, shared subscription QoS 2 and negative
acks, the initial send quota). Every wait has a deadline; "nothing else
arrived" is proved with PINGREQ/PINGRESP on the same connection or a marker
message, except where the test needs wall-clock time to pass (message
expiry)."""

import pytest

import mqtt_raw as m
import mqtt5_raw as m5
from test_auth import Scram, USERS

SCRAM = "SCRAM-SHA-256"
# A client Maximum Packet Size that the success CONNACK (16 bytes) and the
# bare acks fit in, but not an ack with a Reason String.
SMALL_MAX = 20


def _c5(clients, broker, cid, **kw):
    c = m5.client(clients, broker)
    c.handshake(cid, **kw)
    return c


def _text(v):
    return v.decode() if isinstance(v, (bytes, bytearray)) else v


@pytest.fixture
def auth_broker(start_broker, tmp_path):
    path = tmp_path / "users"
    path.write_text(USERS)
    return start_broker(auth_password_file=str(path))


def _scram_start(clients, broker, cid, user="alice", password="wonderland",
                 props=None):
    c = m5.client(clients, broker)
    s = Scram(user, password)
    p = {m5.AUTHENTICATION_METHOD: SCRAM, m5.AUTHENTICATION_DATA: s.first()}
    p.update(props or {})
    c.send(m5.connect(cid, props=p))
    return c, s


def _scram_connect(clients, broker, cid):
    c, s = _scram_start(clients, broker, cid)
    a = c.expect(m5.AUTH)
    c.send(m5.auth(0x18, props={m5.AUTHENTICATION_METHOD: SCRAM,
                                m5.AUTHENTICATION_DATA: s.final(
                                    a.props.get(m5.AUTHENTICATION_DATA))}))
    ack = c.expect(m5.CONNACK)
    assert ack.rc == 0, ack
    return c, s, a, ack


def _no_user_props(pkt):
    return not pkt.props.has(m5.USER_PROPERTY)


# ---- packet identifiers ---------------------------------------------------

def test_v5_mqtt_2_2_1_4_server_packet_ids_nonzero_unique(broker, clients):
    s = _c5(clients, broker, "pid-sub", props={m5.RECEIVE_MAXIMUM: 10})
    s.subscribe([("pid/t", m5.sub_options(1))])
    p = _c5(clients, broker, "pid-pub")
    for i in range(10):
        p.publish("pid/t", b"a%d" % i, qos=1)
    first = [s.expect(m.PUBLISH) for _ in range(10)]
    ids = [x.pid for x in first]
    # [MQTT-2.2.1-4] v5: non-zero, and none in use twice
    assert all(i != 0 for i in ids), ids
    assert len(set(ids)) == 10, ids
    # free half of them; the new messages must not reuse one still in use
    for x in first[:5]:
        s.send(m5.puback(x.pid))
    for i in range(5):
        p.publish("pid/t", b"b%d" % i, qos=1)
    more = [s.expect(m.PUBLISH) for _ in range(5)]
    in_use = {x.pid for x in first[5:]}
    new_ids = [x.pid for x in more]
    # [MQTT-2.2.1-4] v5
    assert all(i != 0 for i in new_ids), new_ids
    assert len(set(new_ids)) == 5 and not in_use & set(new_ids), (in_use, new_ids)
    assert [x.payload for x in more] == [b"b%d" % i for i in range(5)]


def test_v5_mqtt_2_2_1_5_ack_packet_ids(broker, clients):
    s = _c5(clients, broker, "ackid-sub")
    s.subscribe([("ackid/t", m5.sub_options(2))])
    p = _c5(clients, broker, "ackid-pub")
    p.send(m5.publish("ackid/t", b"q1", qos=1, pid=0x1234))
    # [MQTT-2.2.1-5] v5: PUBACK carries the PUBLISH's identifier
    assert p.expect(m.PUBACK).pid == 0x1234
    p.send(m5.publish("ackid/t", b"q2", qos=2, pid=0xBEEF))
    # [MQTT-2.2.1-5] v5: PUBREC and PUBCOMP too
    assert p.expect(m.PUBREC).pid == 0xBEEF
    p.send(m5.pubrel(0xBEEF))
    assert p.expect(m.PUBCOMP).pid == 0xBEEF
    x1 = s.expect(m.PUBLISH)
    s.send(m5.puback(x1.pid))
    x2 = s.expect(m.PUBLISH)
    assert (x2.qos, x2.payload) == (2, b"q2")
    s.send(m5.pubrec(x2.pid))
    # [MQTT-2.2.1-5] v5: the server's PUBREL names the PUBLISH it sent
    rel = s.expect(m.PUBREL)
    assert rel.pid == x2.pid
    s.send(m5.pubcomp(x2.pid))
    s.ping()


def test_v5_mqtt_2_2_1_6_suback_unsuback_packet_ids(broker, clients):
    c = _c5(clients, broker, "subid")
    c.send(m5.subscribe(0x4242, [("subid/a", 0), ("subid/b", 1)]))
    ack = c.expect(m.SUBACK)
    # [MQTT-2.2.1-6] v5
    assert ack.pid == 0x4242 and ack.codes == [0, 1], ack
    c.send(m5.unsubscribe(0x0101, ["subid/a"]))
    ack = c.expect(m.UNSUBACK)
    # [MQTT-2.2.1-6] v5
    assert ack.pid == 0x0101, ack


# ---- CONNECT / CONNACK properties ------------------------------------------

def test_v5_mqtt_3_1_2_26_topic_alias_within_client_maximum(broker, clients):
    s = _c5(clients, broker, "ta-sub", props={m5.TOPIC_ALIAS_MAXIMUM: 2})
    s.subscribe([("ta/#", 0)])
    p = _c5(clients, broker, "ta-pub")
    topics = ["ta/%d" % i for i in range(5)]
    for rnd in range(3):
        for t in topics:
            p.publish(t, b"%s-%d" % (t.encode(), rnd))
    aliases = {}
    for rnd in range(3):
        for t in topics:
            x = s.expect(m.PUBLISH)
            alias = x.props.get(m5.TOPIC_ALIAS)
            if alias is not None:
                # [MQTT-3.1.2-26] v5: never above the client's maximum (2)
                assert 1 <= alias <= 2, x
                if x.topic:
                    aliases[alias] = x.topic
                else:
                    assert aliases.get(alias) == t.encode(), (x, aliases)
            else:
                assert x.topic == t.encode(), x
            assert x.payload == b"%s-%d" % (t.encode(), rnd)


def test_v5_mqtt_3_1_2_28_no_response_information_unless_asked(broker, clients):
    a = _c5(clients, broker, "rri-none").connack
    # [MQTT-3.1.2-28] v5: Request Response Information absent
    assert not a.props.has(m5.RESPONSE_INFORMATION), a
    a = _c5(clients, broker, "rri-0",
            props={m5.REQUEST_RESPONSE_INFORMATION: 0}).connack
    # [MQTT-3.1.2-28] v5: Request Response Information 0
    assert not a.props.has(m5.RESPONSE_INFORMATION), a


# ---- enhanced authentication ----------------------------------------------

def test_v5_mqtt_3_1_2_30_publish_during_auth_is_protocol_error(auth_broker, clients):
    w = _c5(clients, auth_broker, "auth30-w", username="alice", password=b"wonderland")
    w.subscribe([("auth30/t", m5.sub_options(1))])
    c, _ = _scram_start(clients, auth_broker, "auth30")
    a = c.expect(m5.AUTH)
    assert a.rc == 0x18
    c.send(m5.publish("auth30/t", b"too-early", qos=1, pid=1))
    got = c.expect_closed()
    # [MQTT-3.1.2-30] v5: anything but AUTH/DISCONNECT before CONNACK is a
    # Protocol Error: close, at most a CONNACK 0x82 first
    assert all(p.type == m5.CONNACK and p.rc == m5.PROTOCOL_ERROR for p in got), got
    # [MQTT-3.14.0-1] v5: no DISCONNECT before a successful CONNACK
    assert not [p for p in got if p.type == m5.DISCONNECT], got
    # the PUBLISH was not processed: the marker is the first thing w sees
    mk = _c5(clients, auth_broker, "auth30-mk", username="bob", password=b"b:colon")
    w.expect_marker(mk, "auth30/t")


def test_v5_mqtt_4_12_0_2_and_5_auth_continue_and_method(auth_broker, clients):
    c, s, a, ack = _scram_connect(clients, auth_broker, "auth-ok")
    # [MQTT-4.12.0-2] v5: the server asks for more data with AUTH 0x18
    assert a.rc == 0x18, a
    # [MQTT-4.12.0-5] v5: the server AUTH and the success CONNACK carry the
    # Authentication Method of the CONNECT, unchanged
    assert _text(a.props.get(m5.AUTHENTICATION_METHOD)) == SCRAM, a
    assert _text(ack.props.get(m5.AUTHENTICATION_METHOD)) == SCRAM, ack
    c.ping()


def test_v5_mqtt_3_15_2_2_3_auth_within_client_max_packet_size(auth_broker, clients):
    limit = 200
    c, s = _scram_start(clients, auth_broker, "auth-small",
                        props={m5.MAXIMUM_PACKET_SIZE: limit})
    a = c.expect(m5.AUTH)
    # [MQTT-3.15.2-2] v5 / [MQTT-3.15.2-3] v5: the server's AUTH respects
    # the client's Maximum Packet Size: no Reason String or User Property
    # that would push it over
    assert len(a.raw) <= limit, (len(a.raw), a)
    c.send(m5.auth(0x18, props={m5.AUTHENTICATION_METHOD: SCRAM,
                                m5.AUTHENTICATION_DATA: s.final(
                                    a.props.get(m5.AUTHENTICATION_DATA))}))
    assert c.expect(m5.CONNACK).rc == 0


def test_v5_mqtt_4_12_0_3_auth_with_wrong_code_mid_exchange(auth_broker, clients):
    c, s = _scram_start(clients, auth_broker, "auth-bad-rc")
    a = c.expect(m5.AUTH)
    c.send(m5.auth(0x19, props={m5.AUTHENTICATION_METHOD: SCRAM,
                                m5.AUTHENTICATION_DATA: s.final(
                                    a.props.get(m5.AUTHENTICATION_DATA))}))
    got = c.expect_closed()
    # [MQTT-4.12.0-3] v5: Protocol Error before the connect completed:
    # optional CONNACK 0x82, then close
    assert all(p.type == m5.CONNACK and p.rc == m5.PROTOCOL_ERROR for p in got), got
    # [MQTT-3.14.0-1] v5
    assert not [p for p in got if p.type == m5.DISCONNECT], got


@pytest.mark.parametrize("user,password", [("alice", "not-it"), ("mallory", "x")])
def test_v5_mqtt_4_12_0_4_auth_refused_connack_then_close(auth_broker, clients,
                                                          user, password):
    c, s = _scram_start(clients, auth_broker, "auth-refused", user, password)
    got = []
    try:
        a = c.expect(m5.AUTH, stash=True)
        c.send(m5.auth(0x18, props={m5.AUTHENTICATION_METHOD: SCRAM,
                                    m5.AUTHENTICATION_DATA: s.final(
                                        a.props.get(m5.AUTHENTICATION_DATA))}))
    except AssertionError:
        pass          # refused at the first step (unknown user)
    got = c.expect_closed()
    # [MQTT-4.12.0-4] v5: refused at any step -> optional CONNACK >= 0x80,
    # then close; never a success CONNACK
    assert all(p.type == m5.CONNACK and p.rc >= 0x80 for p in got), got
    # [MQTT-3.14.0-1] v5
    assert not [p for p in got if p.type == m5.DISCONNECT], got


def test_v5_mqtt_4_12_0_7_auth_without_method_after_connack(broker, clients):
    c = _c5(clients, broker, "auth7")
    c.send(m5.auth(0x19, props={m5.AUTHENTICATION_METHOD: SCRAM}))
    # [MQTT-4.12.0-7] v5: AUTH from a client that gave no Authentication
    # Method -> DISCONNECT 0x82, close
    c.expect_disconnect(m5.PROTOCOL_ERROR)


def test_v5_mqtt_4_12_1_1_reauth_with_other_method(auth_broker, clients):
    c, _, _, _ = _scram_connect(clients, auth_broker, "reauth-other")
    c.send(m5.auth(0x19, props={m5.AUTHENTICATION_METHOD: "PLAIN-X",
                                m5.AUTHENTICATION_DATA: b"x"}))
    # [MQTT-4.12.1-1] v5: a different method is a Protocol Error
    got = c.expect_disconnect(m5.PROTOCOL_ERROR)
    # [MQTT-3.2.0-2] v5: no second CONNACK
    assert not [p for p in got if p.type == m5.CONNACK], got


def test_v5_mqtt_4_12_1_2_reauth_refused_or_failed_disconnect(auth_broker, clients):
    c, _, _, _ = _scram_connect(clients, auth_broker, "reauth-fail")
    s2 = Scram("alice", "wrong-password")
    c.send(m5.auth(0x19, props={m5.AUTHENTICATION_METHOD: SCRAM,
                                m5.AUTHENTICATION_DATA: s2.first()}))
    got = []
    try:
        first = c.recv()
    except m.Closed:
        first = None
    if first is not None and first.type == m5.AUTH:
        # re-authentication supported: finish it with a wrong proof
        assert first.rc == 0x18, first
        c.send(m5.auth(0x18, props={m5.AUTHENTICATION_METHOD: SCRAM,
                                    m5.AUTHENTICATION_DATA: s2.final(
                                        first.props.get(m5.AUTHENTICATION_DATA))}))
        got = c.expect_closed()
    elif first is not None:
        got = [first] + c.expect_closed()
    discs = [p for p in got if p.type == m5.DISCONNECT]
    # [MQTT-4.12.1-2] v5: failed (here: refused) re-authentication ->
    # DISCONNECT with an error code (SHOULD), and the connection closed (MUST)
    assert discs and discs[-1].rc >= 0x80 and got[-1].type == m5.DISCONNECT, got
    # [MQTT-3.2.0-2] v5: no second CONNACK, re-authentication included
    assert not [p for p in got if p.type == m5.CONNACK], got


# ---- one CONNACK; no DISCONNECT before it; close after errors --------------

def test_v5_mqtt_3_2_0_2_second_connect_no_second_connack(broker, clients):
    c = _c5(clients, broker, "two-connects")
    c.send(m5.connect("two-connects"))
    got = c.expect_disconnect(m5.PROTOCOL_ERROR)
    # [MQTT-3.2.0-2] v5: never a second CONNACK on one connection
    assert not [p for p in got if p.type == m5.CONNACK], got
    # [MQTT-4.13.2-1] v5: DISCONNECT 0x82 chosen -> the connection is closed
    # (expect_disconnect waited for the close)


def test_v5_mqtt_3_2_2_7_refused_connack_then_close(auth_broker, clients):
    c = m5.client(clients, auth_broker)
    c.send(m5.connect("refused7", username="alice", password=b"wrong"))
    got = c.expect_closed()
    # [MQTT-3.2.2-7] v5 / [MQTT-4.13.2-1] v5: CONNACK 0x86, then close
    assert [(p.type, p.rc) for p in got] == [(m5.CONNACK, 0x86)], got
    c = m5.client(clients, auth_broker)
    c.send(m5.connect("refused7b", props={m5.AUTHENTICATION_METHOD: "NOPE"}))
    got = c.expect_closed()
    # [MQTT-3.2.2-7] v5 / [MQTT-4.13.2-1] v5: CONNACK 0x8C, then close
    assert [(p.type, p.rc) for p in got] == [(m5.CONNACK, 0x8C)], got


def test_v5_mqtt_3_14_0_1_no_disconnect_before_connack(broker, clients):
    cases = [
        # reserved Connect Flags bit set (Malformed)
        m.packet(m.CONNECT, 0, m.enc_str(b"MQTT") + bytes([5, 0x03, 0, 60, 0])
                 + m.enc_str(b"bad-flags")),
        # protocol level 6
        m5.connect("bad-level", proto_level=6),
        # a property CONNECT may not carry (Topic Alias)
        m5.connect("bad-prop", props={m5.TOPIC_ALIAS: 1}),
    ]
    for raw in cases:
        c = m5.client(clients, broker)
        c.send(raw)
        got = c.expect_closed()
        # [MQTT-3.14.0-1] v5: refused with CONNACK (>= 0x80) or just closed,
        # never DISCONNECT before a successful CONNACK
        assert not [p for p in got if p.type == m5.DISCONNECT], (raw, got)
        assert all(p.type == m5.CONNACK and p.rc >= 0x80 for p in got), (raw, got)
    # a PUBLISH as the first packet
    c = m5.client(clients, broker)
    c.send(m5.publish("x/y", b"early"))
    got = c.expect_closed()
    # [MQTT-3.14.0-1] v5
    assert not [p for p in got if p.type == m5.DISCONNECT], got


def test_v5_mqtt_4_2_1_tcp_ordered_lossless(broker, clients):
    s = _c5(clients, broker, "tcp-sub")
    s.subscribe([("tcp/t", m5.sub_options(1))])
    p = _c5(clients, broker, "tcp-pub")
    sizes = [0, 1, 127, 128, 16383, 16384, 70000, 3]
    for i, n in enumerate(sizes):
        p.publish("tcp/t", bytes([i]) * n, qos=1)
    # [MQTT-4.2-1] v5: over TCP every message arrives, whole, in order
    for i, n in enumerate(sizes):
        x = s.expect_publish()
        assert x.payload == bytes([i]) * n, (i, n, len(x.payload))


# ---- reason strings and the client's Maximum Packet Size -------------------

def _small(clients, broker, cid, **kw):
    props = {m5.MAXIMUM_PACKET_SIZE: SMALL_MAX}
    props.update(kw.pop("props", {}))
    c = _c5(clients, broker, cid, props=props, **kw)
    assert len(c.connack.raw) <= SMALL_MAX, c.connack
    return c


def _fits(pkt):
    """The packet is within SMALL_MAX and carries no Reason String or User
    Property (either of which would push it over)."""
    assert len(pkt.raw) <= SMALL_MAX, (len(pkt.raw), pkt)
    assert not pkt.props.has(m5.REASON_STRING), pkt
    assert _no_user_props(pkt), pkt


def test_v5_mqtt_3_4_2_2_3_and_3_5_2_2_3_puback_pubrec_reason_dropped(broker, clients):
    # control: without a limit these acks do carry a Reason String
    big = _c5(clients, broker, "rs-big")
    assert big.publish("rs/none", b"x", qos=1).props.has(m5.REASON_STRING)
    c = _small(clients, broker, "rs-small")
    ack = c.publish("rs/none", b"x", qos=1)
    assert ack.rc == m5.NO_MATCHING_SUBSCRIBERS
    # [MQTT-3.4.2-2] v5 / [MQTT-3.4.2-3] v5
    _fits(ack)
    c.send(m5.publish("rs/none", b"y", qos=2, pid=77))
    rec = c.expect(m.PUBREC)
    assert (rec.pid, rec.rc) == (77, m5.NO_MATCHING_SUBSCRIBERS)
    # [MQTT-3.5.2-2] v5 / [MQTT-3.5.2-3] v5
    _fits(rec)
    c.send(m5.pubrel(77))
    c.expect(m.PUBCOMP)


def test_v5_mqtt_3_6_2_2_3_and_3_7_2_2_3_pubrel_pubcomp_reason_dropped(broker, clients):
    big = _c5(clients, broker, "rs7-big")
    big.send(m5.pubrel(999))
    comp = big.expect(m.PUBCOMP)
    assert comp.rc == m5.PACKET_ID_NOT_FOUND and comp.props.has(m5.REASON_STRING)
    c = _small(clients, broker, "rs7-small")
    c.send(m5.pubrel(999))
    comp = c.expect(m.PUBCOMP)
    assert (comp.pid, comp.rc) == (999, m5.PACKET_ID_NOT_FOUND)
    # [MQTT-3.7.2-2] v5 / [MQTT-3.7.2-3] v5
    _fits(comp)
    # the server's PUBREL to a client with a small Maximum Packet Size
    c.subscribe([("rs7/t", m5.sub_options(2))])
    big.publish("rs7/t", b"z", qos=2)
    x = c.expect(m.PUBLISH)
    c.send(m5.pubrec(x.pid))
    rel = c.expect(m.PUBREL)
    # [MQTT-3.6.2-2] v5 / [MQTT-3.6.2-3] v5
    _fits(rel)
    c.send(m5.pubcomp(x.pid))
    c.ping()


def test_v5_mqtt_3_9_2_1_2_and_3_11_2_1_2_suback_unsuback_reason_dropped(broker, clients):
    big = _c5(clients, broker, "rs9-big")
    ack = big.subscribe_ack([("bad/#/x", 0)])
    assert ack.codes == [m5.TOPIC_FILTER_INVALID] and ack.props.has(m5.REASON_STRING)
    c = _small(clients, broker, "rs9-small")
    ack = c.subscribe_ack([("bad/#/x", 0)])
    assert ack.codes == [m5.TOPIC_FILTER_INVALID]
    # [MQTT-3.9.2-1] v5 / [MQTT-3.9.2-2] v5
    _fits(ack)
    c.send(m5.unsubscribe(5, ["never/subscribed"]))
    un = c.expect(m.UNSUBACK)
    assert un.codes == [m5.NO_SUBSCRIPTION_EXISTED], un
    # [MQTT-3.11.2-1] v5 / [MQTT-3.11.2-2] v5
    _fits(un)


def test_v5_mqtt_3_14_2_3_4_disconnect_reason_dropped(broker, clients):
    big = _c5(clients, broker, "rs14-big")
    big.send(m5.connect("rs14-big"))
    d = big.expect_closed()[-1]
    assert d.type == m5.DISCONNECT and d.props.has(m5.REASON_STRING), d
    c = _small(clients, broker, "rs14-small")
    c.send(m5.connect("rs14-small"))
    got = c.expect_closed()
    assert got and got[-1].type == m5.DISCONNECT and got[-1].rc == m5.PROTOCOL_ERROR, got
    # [MQTT-3.14.2-3] v5 / [MQTT-3.14.2-4] v5
    _fits(got[-1])


def test_v5_mqtt_3_2_2_19_20_connack_reason_dropped(auth_broker, clients):
    big = m5.client(clients, auth_broker)
    big.send(m5.connect("rs2-big", username="alice", password=b"wrong"))
    got = big.expect_closed()
    assert got and got[0].props.has(m5.REASON_STRING), got
    c = m5.client(clients, auth_broker)
    c.send(m5.connect("rs2-small", username="alice", password=b"wrong",
                      props={m5.MAXIMUM_PACKET_SIZE: SMALL_MAX}))
    got = c.expect_closed()
    assert [(p.type, p.rc) for p in got] == [(m5.CONNACK, 0x86)], got
    # [MQTT-3.2.2-19] v5 / [MQTT-3.2.2-20] v5
    _fits(got[0])


# ---- PUBLISH from the client ------------------------------------------------

def test_v5_mqtt_3_3_4_6_subscription_identifier_from_client(broker, clients):
    w = _c5(clients, broker, "sid-w")
    w.subscribe([("sid/t", m5.sub_options(1))])
    c = _c5(clients, broker, "sid-c")
    c.send(m5.publish("sid/t", b"bad", qos=1, pid=1,
                      props={m5.SUBSCRIPTION_IDENTIFIER: 5}))
    # [MQTT-3.3.4-6] v5: Protocol Error -> DISCONNECT 0x82, close
    got = c.expect_disconnect(m5.PROTOCOL_ERROR)
    assert not [p for p in got if p.type == m.PUBACK], got
    w.expect_marker(_c5(clients, broker, "sid-mk"), "sid/t")


def test_v5_mqtt_3_8_4_8_delivery_at_lower_qos(broker, clients):
    s = _c5(clients, broker, "minq-sub")
    s.subscribe([("minq/0", m5.sub_options(0)), ("minq/1", m5.sub_options(1)),
                 ("minq/2", m5.sub_options(2))])
    p = _c5(clients, broker, "minq-pub")
    cases = [("minq/0", 2, 0), ("minq/0", 1, 0), ("minq/1", 2, 1),
             ("minq/1", 0, 0), ("minq/2", 1, 1), ("minq/2", 2, 2)]
    for topic, pq, _ in cases:
        p.publish(topic, b"%s-%d" % (topic.encode(), pq), qos=pq)
    for topic, pq, want in cases:
        x = s.expect_publish()
        assert x.payload == b"%s-%d" % (topic.encode(), pq)
        # [MQTT-3.8.4-8] v5: min(published QoS, granted QoS)
        assert x.qos == want, (topic, pq, x)


# ---- QoS 1 ------------------------------------------------------------------

def test_v5_mqtt_4_3_2_3_unacked_qos1_kept_until_puback(broker, clients):
    props = {m5.SESSION_EXPIRY_INTERVAL: 300}
    s = _c5(clients, broker, "q1keep", props=props)
    s.subscribe([("q1keep/t", m5.sub_options(1))])
    _c5(clients, broker, "q1keep-pub").publish("q1keep/t", b"one", qos=1)
    x = s.expect(m.PUBLISH)
    s.abort()
    s = m5.client(clients, broker)
    assert s.handshake("q1keep", clean_start=False, props=props).session_present
    # [MQTT-4.3.2-3] v5: no PUBACK yet -> still unacknowledged, sent again
    y = s.expect(m.PUBLISH)
    assert (y.pid, y.payload, y.dup, y.qos) == (x.pid, b"one", True, 1), y
    s.send(m5.puback(y.pid))
    s.ping()
    s.abort()
    s = m5.client(clients, broker)
    assert s.handshake("q1keep", clean_start=False, props=props).session_present
    # acknowledged now: not sent again (PINGRESP is the first packet)
    s.ping()


def test_v5_mqtt_4_3_2_4_5_incoming_qos1_and_id_reuse(broker, clients):
    s = _c5(clients, broker, "q1in-sub")
    s.subscribe([("q1in/t", m5.sub_options(1))])
    p = _c5(clients, broker, "q1in-pub")
    p.send(m5.publish("q1in/t", b"first", qos=1, pid=7))
    # [MQTT-4.3.2-4] v5: PUBACK with the same identifier ...
    ack = p.expect(m.PUBACK)
    assert (ack.pid, ack.rc) == (7, 0), ack
    # ... and the message routed to the subscriber
    assert s.expect_publish().payload == b"first"
    # [MQTT-4.3.2-5] v5: after that PUBACK, identifier 7 again (DUP=1 or 0)
    # is a new message
    p.send(m5.publish("q1in/t", b"second", qos=1, pid=7, dup=True))
    assert p.expect(m.PUBACK).pid == 7
    assert s.expect_publish().payload == b"second"
    p.send(m5.publish("q1in/t", b"third", qos=1, pid=7))
    assert p.expect(m.PUBACK).pid == 7
    assert s.expect_publish().payload == b"third"


# ---- QoS 2, server sending ----------------------------------------------------

def test_v5_mqtt_4_3_3_3_to_6_qos2_sender_states(broker, clients):
    props = {m5.SESSION_EXPIRY_INTERVAL: 300}
    s = _c5(clients, broker, "q2out", props=props)
    s.subscribe([("q2out/t", m5.sub_options(2))])
    _c5(clients, broker, "q2out-pub").publish("q2out/t", b"two", qos=2)
    x = s.expect(m.PUBLISH)
    assert (x.qos, x.dup) == (2, False)
    s.abort()
    s = m5.client(clients, broker)
    assert s.handshake("q2out", clean_start=False, props=props).session_present
    # [MQTT-4.3.3-3] v5: no PUBREC yet -> still unacknowledged, sent again
    y = s.expect(m.PUBLISH)
    assert (y.pid, y.payload, y.dup, y.qos) == (x.pid, b"two", True, 2), y
    s.send(m5.pubrec(y.pid))
    # [MQTT-4.3.3-4] v5: PUBREC 0x00 -> PUBREL with the same identifier
    rel = s.expect(m.PUBREL)
    assert (rel.pid, rel.flags) == (x.pid, 2), rel
    s.abort()
    s = m5.client(clients, broker)
    assert s.handshake("q2out", clean_start=False, props=props).session_present
    # [MQTT-4.3.3-5] v5: no PUBCOMP yet -> PUBREL still outstanding, resent;
    # [MQTT-4.3.3-6] v5: and the PUBLISH is never sent again
    rel = s.expect(m.PUBREL)
    assert rel.pid == x.pid, rel
    s.send(m5.pubcomp(rel.pid))
    s.ping()
    s.abort()
    s = m5.client(clients, broker)
    assert s.handshake("q2out", clean_start=False, props=props).session_present
    # complete: nothing is resent (PINGRESP first)
    s.ping()


def test_v5_mqtt_4_3_3_7_13_expiry_does_not_stop_sent_qos2(broker, clients):
    props = {m5.SESSION_EXPIRY_INTERVAL: 300}
    s = _c5(clients, broker, "q2exp", props=props)
    s.subscribe([("q2exp/t", m5.sub_options(2))])
    _c5(clients, broker, "q2exp-pub").publish(
        "q2exp/t", b"short-lived", qos=2, props={m5.MESSAGE_EXPIRY_INTERVAL: 1})
    x = s.expect(m.PUBLISH)
    assert x.qos == 2
    # let the 1 s Message Expiry Interval run out (wall-clock time is what
    # is tested here); nothing may be resent on the live connection
    s.expect_nothing(2.5)
    s.abort()
    s = m5.client(clients, broker)
    assert s.handshake("q2exp", clean_start=False, props=props).session_present
    # [MQTT-4.3.3-7] v5: once sent, expiry no longer applies: resent
    y = s.expect(m.PUBLISH)
    assert (y.pid, y.payload, y.dup) == (x.pid, b"short-lived", True), y
    s.send(m5.pubrec(y.pid))
    # [MQTT-4.3.3-13] v5: the exchange is completed although expired
    rel = s.expect(m.PUBREL)
    assert rel.pid == x.pid
    s.send(m5.pubcomp(x.pid))
    s.ping()


# ---- QoS 2, server receiving --------------------------------------------------

def test_v5_mqtt_4_3_3_8_to_12_qos2_receiver(broker, clients):
    s = _c5(clients, broker, "q2in-sub")
    s.subscribe([("q2in/t", m5.sub_options(2))])
    p = _c5(clients, broker, "q2in-pub")
    mk = _c5(clients, broker, "q2in-mk")
    p.send(m5.publish("q2in/t", b"once", qos=2, pid=9))
    # [MQTT-4.3.3-8] v5: PUBREC with the same identifier
    rec = p.expect(m.PUBREC)
    assert (rec.pid, rec.rc) == (9, 0), rec
    # [MQTT-4.3.3-10] v5: repeats before PUBREL get PUBREC again ...
    p.send(m5.publish("q2in/t", b"once", qos=2, pid=9, dup=True))
    assert p.expect(m.PUBREC).pid == 9
    p.send(m5.publish("q2in/t", b"once", qos=2, pid=9, dup=True))
    assert p.expect(m.PUBREC).pid == 9
    p.send(m5.pubrel(9))
    # [MQTT-4.3.3-11] v5: PUBCOMP with the same identifier
    comp = p.expect(m.PUBCOMP)
    assert (comp.pid, comp.rc) == (9, 0), comp
    # [MQTT-4.3.3-8] v5: the message was taken over and routed ...
    assert s.expect_publish().payload == b"once"
    # [MQTT-4.3.3-10] v5: ... exactly once (the marker comes next)
    s.expect_marker(mk, "q2in/t")
    # [MQTT-4.3.3-12] v5: after PUBCOMP, identifier 9 is a new message
    p.send(m5.publish("q2in/t", b"again", qos=2, pid=9))
    assert p.expect(m.PUBREC).pid == 9
    p.send(m5.pubrel(9))
    assert p.expect(m.PUBCOMP).pid == 9
    assert s.expect_publish().payload == b"again"


# ---- negative acks from the client ---------------------------------------------

def test_v5_mqtt_4_4_0_2_puback_error_not_retransmitted(broker, clients):
    props = {m5.SESSION_EXPIRY_INTERVAL: 300, m5.RECEIVE_MAXIMUM: 1}
    s = _c5(clients, broker, "nack1", props=props)
    s.subscribe([("nack1/t", m5.sub_options(1))])
    p = _c5(clients, broker, "nack1-pub")
    p.publish("nack1/t", b"a", qos=1)
    p.publish("nack1/t", b"b", qos=1)
    x = s.expect(m.PUBLISH)
    assert x.payload == b"a"
    s.send(m5.puback(x.pid, rc=0x80))
    # the message counts as acknowledged: with Receive Maximum 1 the next
    # one follows
    y = s.expect(m.PUBLISH)
    assert y.payload == b"b"
    s.send(m5.puback(y.pid, rc=0x80))
    s.ping()
    s.abort()
    s = m5.client(clients, broker)
    assert s.handshake("nack1", clean_start=False, props=props).session_present
    # [MQTT-4.4.0-2] v5: PUBACK >= 0x80 -> never retransmitted
    s.ping()


def test_v5_mqtt_4_4_0_2_pubrec_error_ends_message(broker, clients):
    props = {m5.SESSION_EXPIRY_INTERVAL: 300, m5.RECEIVE_MAXIMUM: 1}
    s = _c5(clients, broker, "nack2", props=props)
    s.subscribe([("nack2/t", m5.sub_options(2))])
    p = _c5(clients, broker, "nack2-pub")
    p.publish("nack2/t", b"a", qos=2)
    p.publish("nack2/t", b"b", qos=2)
    x = s.expect(m.PUBLISH)
    assert x.payload == b"a"
    s.send(m5.pubrec(x.pid, rc=0x80))
    # [MQTT-4.4.0-2] v5: PUBREC >= 0x80 -> the PUBLISH is treated as
    # acknowledged (its flow is over, §4.9 gives the quota back): with
    # Receive Maximum 1 the next message must follow
    y = s.expect(m.PUBLISH, stash=True)
    assert y.payload == b"b", y
    s.ack(y)
    s.ping()
    s.abort()
    s = m5.client(clients, broker)
    assert s.handshake("nack2", clean_start=False, props=props).session_present
    got = []
    s.send(m5.pingreq())
    while True:
        pk = s.recv()
        if pk.type == m.PINGRESP:
            break
        got.append(pk)
    # [MQTT-4.4.0-2] v5: never retransmitted after the reconnect either
    assert not [pk for pk in got if pk.type == m.PUBLISH], got


# ---- shared subscriptions ------------------------------------------------------

def test_v5_mqtt_4_8_2_4_shared_qos2_completed_with_same_member(broker, clients):
    props = {m5.SESSION_EXPIRY_INTERVAL: 300}
    m1 = _c5(clients, broker, "sh4-m1", props=props)
    m1.subscribe([("$share/g4/sh4/t", m5.sub_options(2))])
    p = _c5(clients, broker, "sh4-pub")
    p.publish("sh4/t", b"q2", qos=2)
    x = m1.expect(m.PUBLISH)
    assert (x.qos, x.payload) == (2, b"q2")
    m2 = _c5(clients, broker, "sh4-m2", props=props)
    m2.subscribe([("$share/g4/sh4/t", m5.sub_options(2)), ("sh4/mk", m5.sub_options(1))])
    m1.abort()
    m1 = m5.client(clients, broker)
    assert m1.handshake("sh4-m1", clean_start=False, props=props).session_present
    # [MQTT-4.8.2-4] v5: completed with the same member after it reconnects
    y = m1.expect(m.PUBLISH)
    assert (y.pid, y.payload, y.dup) == (x.pid, b"q2", True), y
    m1.ack(y)
    m1.ping()
    # and not given to the other member
    m2.expect_marker(p, "sh4/mk")


def test_v5_mqtt_4_8_2_5_shared_qos2_not_redispatched_after_session_end(broker, clients):
    m1 = _c5(clients, broker, "sh5-m1")          # Session Expiry 0
    m1.subscribe([("$share/g5/sh5/t", m5.sub_options(2))])
    p = _c5(clients, broker, "sh5-pub")
    p.publish("sh5/t", b"q2", qos=2)
    x = m1.expect(m.PUBLISH)
    assert x.payload == b"q2"
    m2 = _c5(clients, broker, "sh5-m2")
    m2.subscribe([("$share/g5/sh5/t", m5.sub_options(2)), ("sh5/mk", m5.sub_options(1))])
    m1.abort()
    # the session of m1 has ended (it expired with the connection)
    m1 = m5.client(clients, broker)
    assert not m1.handshake("sh5-m1", clean_start=False).session_present
    # [MQTT-4.8.2-5] v5: the in-flight QoS 2 message goes to no other member
    m2.expect_marker(p, "sh5/mk")
    m1.ping()


@pytest.mark.parametrize("qos", [1, 2])
def test_v5_mqtt_4_8_2_6_shared_negative_ack_discards(broker, clients, qos):
    tag = "sh6q%d" % qos
    m1 = _c5(clients, broker, tag + "-m1")
    m1.subscribe([("$share/g6/%s/t" % tag, m5.sub_options(qos))])
    p = _c5(clients, broker, tag + "-pub")
    p.publish(tag + "/t", b"nacked", qos=qos)
    x = m1.expect(m.PUBLISH)
    assert x.payload == b"nacked"
    m2 = _c5(clients, broker, tag + "-m2")
    m2.subscribe([("$share/g6/%s/t" % tag, m5.sub_options(qos)),
                  (tag + "/mk", m5.sub_options(1))])
    m1.send((m5.puback if qos == 1 else m5.pubrec)(x.pid, rc=0x80))
    # the broker has handled the negative ack before the marker goes out;
    # a PUBREL (QoS 2) in between is not the point here
    m1.send(m5.pingreq())
    while m1.recv().type != m.PINGRESP:
        pass
    # [MQTT-4.8.2-6] v5: discarded, not tried on another member
    m2.expect_marker(p, tag + "/mk")


# ---- flow control ----------------------------------------------------------------

def test_v5_mqtt_4_9_0_1_initial_send_quota(broker, clients):
    props = {m5.RECEIVE_MAXIMUM: 3, m5.SESSION_EXPIRY_INTERVAL: 300}
    s = _c5(clients, broker, "quota", props=props)
    s.subscribe([("quota/t", m5.sub_options(1))])
    p = _c5(clients, broker, "quota-pub")
    for i in range(6):
        p.publish("quota/t", b"m%d" % i, qos=1)
    # [MQTT-4.9.0-1] v5: the quota starts non-zero (something is sent) ...
    got = [s.expect(m.PUBLISH) for _ in range(3)]
    # ... and no higher than the client's Receive Maximum (3): PINGRESP
    # comes before any fourth PUBLISH
    s.ping()
    assert [x.payload for x in got] == [b"m0", b"m1", b"m2"]
    # a new connection starts its quota afresh from its own Receive Maximum
    s.abort()
    s = m5.client(clients, broker)
    s.handshake("quota", clean_start=False,
                props={m5.RECEIVE_MAXIMUM: 1, m5.SESSION_EXPIRY_INTERVAL: 300})
    # [MQTT-4.9.0-1] v5 / [MQTT-3.3.4-9] v5: with Receive Maximum 1,
    # exactly one outstanding (resent PUBLISHes count)
    first = s.expect(m.PUBLISH)
    s.ping()
    s.send(m5.puback(first.pid))
    second = s.expect(m.PUBLISH)
    s.ping()
    assert (first.payload, second.payload) == (b"m0", b"m1"), (first, second)
