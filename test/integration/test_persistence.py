"""Persistence: retained messages and persistent sessions (with
their subscriptions) kept in LMDB in the data dir survive a restart of mqd,
by SIGTERM and by SIGKILL; [storage] durability (MQD_STORAGE_DURABILITY)
sync / relaxed / none; a broken data.mdb stops the start.

Every restart stops the first broker (SIGTERM by PID, or broker.kill() =
SIGKILL by PID) and starts a second one on the same data dir (same port if
it is still free). With durability = sync a retained QoS 1 PUBLISH is
durable once PUBACKed and a subscription once SUBACKed, so a SIGKILL right
after the ack must not lose it.

QoS 1/2 messages queued or in flight, incoming QoS 2 ids, delayed wills and
the storage.max_size refusal are in test_crash.py.

The only waits that are not on an event are the ones that let an expiry
interval run out while no broker is running (time has to pass there).
"""

import os
import random
import signal
import time

import pytest

import mqtt5_raw as m5
from conftest import SANITIZER_MARKERS, let_wall_time_pass

pytestmark = pytest.mark.skipif(
    os.environ.get("MQD_TEST_BROKER", "mqd") != "mqd",
    reason="mqd-specific: LMDB persistence ([storage] durability)")

opts = m5.sub_options
SYNC = {"storage_durability": "sync"}
HOW = ["kill", "term"]          # how the first broker is stopped


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def _raw(clients, broker, cid, **kw):
    c = clients.raw(broker)
    ack = c.handshake(cid, **kw)
    return c, ack


def _v5(clients, broker, cid, **kw):
    c = m5.client(clients, broker)
    ack = c.handshake(cid, **kw)
    return c, ack


def _stop(broker, how):
    """Stops broker by SIGKILL (how="kill") or SIGTERM ("term")."""
    if how == "kill":
        status = broker.kill()
        assert status == -signal.SIGKILL, \
            "broker was not killed by SIGKILL (status %s)\n%s" % (status, broker.log_tail())
    else:
        status = broker.stop()
        assert status == 0, "exit status %s after SIGTERM, expected 0\n%s" % (
            status, broker.log_tail())


def _restart(start_broker, old, how, env=SYNC):
    """Stops old (see _stop) and starts a broker on its data dir (with the
    MQD_* settings env), on its port if that is free."""
    _stop(old, how)
    return start_broker(data_dir=old.data_dir, port=old.port, **env)


def _until(c, last_payload):
    """PUBLISHes received by c (acked) up to, not including, the first one
    with payload last_payload."""
    got = []
    while True:
        p = c.expect_publish()
        if p.payload == last_payload:
            return got
        got.append(p)


def _by_topic(pkts):
    out = {}
    for p in pkts:
        assert p.topic not in out, "%r delivered twice: %r" % (p.topic, pkts)
        out[p.topic] = p
    return out


def _retained_after_subscribe(sub, pub, flt, qos, marker="mark", v5=False):
    """sub subscribes to flt (and a marker topic); the retained messages the
    broker sends for the new subscription are collected up to a marker
    published by pub after the SUBACK. Returns {topic: packet}."""
    if v5:
        codes = sub.subscribe([(flt, opts(qos)), (marker, opts(0))])
    else:
        codes = sub.subscribe([(flt, qos), (marker, 0)])
    assert codes == [qos, 0], codes
    pub.publish(marker, b"end-of-retained", qos=1)
    return _by_topic(_until(sub, b"end-of-retained"))


def _puback_ok(ack):
    # v5 PUBACK: Success, or No matching subscribers (nobody subscribed yet)
    assert ack.rc in (m5.SUCCESS, m5.NO_MATCHING_SUBSCRIBERS), ack


# --------------------------------------------------------------------------
# 1. retained messages
# --------------------------------------------------------------------------

@pytest.mark.parametrize("how", HOW)
def test_v311_mqtt_3_3_1_5_retained_survives_restart(start_broker, clients, how):
    b1 = start_broker(**SYNC)
    pub, _ = _raw(clients, b1, "ret-pub")
    pub.publish("r/q1", b"retained qos1", qos=1, retain=True)
    pub.publish("r/deep/x", b"\x00\xff binary \x00", qos=1, retain=True)
    pub.publish("r/replaced", b"old", qos=1, retain=True)
    pub.publish("r/replaced", b"new", qos=1, retain=True)
    pub.publish("r/cleared", b"soon gone", qos=1, retain=True)
    pub.publish("r/cleared", b"", qos=1, retain=True)
    pub.publish("r/live", b"not retained", qos=1, retain=False)
    expected = {
        b"r/q1": (b"retained qos1", 1),
        b"r/deep/x": (b"\x00\xff binary \x00", 1),
        b"r/replaced": (b"new", 1),
    }
    if how == "term":
        # a QoS 0 retained message, then a QoS 1 PUBLISH on the same
        # connection: its PUBACK shows the QoS 0 one was handled too (a
        # clean stop keeps it; a crash need not, QoS 0 has no ack)
        pub.publish("r/q0", b"retained qos0", qos=0, retain=True)
        pub.publish("sync/x", b"", qos=1)
        expected[b"r/q0"] = (b"retained qos0", 0)
    b2 = _restart(start_broker, b1, how)

    sub, _ = _raw(clients, b2, "ret-sub")
    pub2, _ = _raw(clients, b2, "ret-pub2")
    got = _retained_after_subscribe(sub, pub2, "r/#", 2)
    # [MQTT-3.3.1-5] both: the retained messages (with their QoS) are kept
    # for future subscribers, here across a restart; [MQTT-3.1.2-7] 3.1.1:
    # they are not session state (their publisher's clean session ended with
    # the broker); [MQTT-3.3.1-10]/[MQTT-3.3.1-11] 3.1.1: the one cleared
    # with an empty payload stays cleared; [MQTT-3.3.1-12] 3.1.1: RETAIN=0
    # messages are not stored
    assert {t: (p.payload, p.qos) for t, p in got.items()} == expected, got
    for p in got.values():
        # [MQTT-3.3.1-8] 3.1.1: sent because of a new subscription: RETAIN=1
        assert p.retain, p

    # the retained QoS 1 message goes to a QoS 0 subscriber at QoS 0
    # ([MQTT-3.8.4-6] 3.1.1: the lower of stored and granted QoS)
    sub0, _ = _raw(clients, b2, "ret-sub0")
    got0 = _retained_after_subscribe(sub0, pub2, "r/q1", 0, marker="mark0")
    assert [(p.topic, p.payload, p.qos, p.retain) for p in got0.values()] == [
        (b"r/q1", b"retained qos1", 0, True)]


def test_default_durability_keeps_retained_across_kill(start_broker, clients):
    """[storage] durability defaults to sync: no setting needed."""
    b1 = start_broker()
    pub, _ = _raw(clients, b1, "def-pub")
    pub.publish("d/t", b"default durability", qos=1, retain=True)
    b2 = _restart(start_broker, b1, "kill", env={})
    sub, _ = _raw(clients, b2, "def-sub")
    pub2, _ = _raw(clients, b2, "def-pub2")
    got = _retained_after_subscribe(sub, pub2, "d/#", 1)
    # [MQTT-3.3.1-5] both
    assert [(t, p.payload, p.qos) for t, p in got.items()] == [
        (b"d/t", b"default durability", 1)]


@pytest.mark.parametrize("how", HOW)
def test_v5_mqtt_3_3_1_5_retained_properties_and_expiry_across_restart(
        start_broker, clients, how):
    b1 = start_broker(**SYNC)
    pub, _ = _v5(clients, b1, "r5-pub")
    props = [
        (m5.PAYLOAD_FORMAT_INDICATOR, 1),
        (m5.CONTENT_TYPE, "text/plain; charset=utf-8"),
        (m5.RESPONSE_TOPIC, "reply/here"),
        (m5.CORRELATION_DATA, b"\x01\x02corr"),
        (m5.USER_PROPERTY, ("k1", "v1")),
        (m5.USER_PROPERTY, ("k2", "v2")),
        (m5.USER_PROPERTY, ("k1", "again")),
    ]
    _puback_ok(pub.publish("r5/props", b"with props", qos=1, retain=True, props=props))
    _puback_ok(pub.publish("r5/long", b"long expiry", qos=1, retain=True,
                           props=[(m5.MESSAGE_EXPIRY_INTERVAL, 3600)]))
    _puback_ok(pub.publish("r5/short", b"short expiry", qos=1, retain=True,
                           props=[(m5.MESSAGE_EXPIRY_INTERVAL, 2)]))
    short_published = time.time()
    _puback_ok(pub.publish("r5/cleared", b"x", qos=1, retain=True,
                           props=[(m5.CONTENT_TYPE, "gone")]))
    _puback_ok(pub.publish("r5/cleared", b"", qos=1, retain=True))
    _stop(b1, how)
    # r5/short's 2 s run out while no broker is running (wall clock)
    let_wall_time_pass(short_published + 2 + 1.5)
    b2 = start_broker(data_dir=b1.data_dir, port=b1.port, **SYNC)

    sub, _ = _v5(clients, b2, "r5-sub")
    pub2, _ = _v5(clients, b2, "r5-pub2")
    got = _retained_after_subscribe(sub, pub2, "r5/#", 2, v5=True)
    # [MQTT-3.3.2-5] v5: the expiry of r5/short passed while the node was
    # down: gone; [MQTT-3.3.1-6]/[MQTT-3.3.1-7] v5: r5/cleared stays cleared
    assert sorted(got) == [b"r5/long", b"r5/props"], got
    p = got[b"r5/props"]
    # [MQTT-3.3.1-5] v5: the retained message is kept with its QoS and its
    # properties (User Property order preserved, §2.2.2.2)
    assert (p.payload, p.qos, p.retain) == (b"with props", 1, True), p
    assert p.props.get(m5.PAYLOAD_FORMAT_INDICATOR) == 1, p
    assert p.props.get(m5.CONTENT_TYPE) == b"text/plain; charset=utf-8", p
    assert p.props.get(m5.RESPONSE_TOPIC) == b"reply/here", p
    assert p.props.get(m5.CORRELATION_DATA) == b"\x01\x02corr", p
    assert p.user_properties() == [(b"k1", b"v1"), (b"k2", b"v2"),
                                   (b"k1", b"again")], p
    assert not p.props.has(m5.MESSAGE_EXPIRY_INTERVAL), p
    assert not p.props.has(m5.SUBSCRIPTION_IDENTIFIER), p
    lp = got[b"r5/long"]
    assert (lp.payload, lp.qos, lp.retain) == (b"long expiry", 1, True), lp
    # [MQTT-3.3.2-6] v5: the expiry interval sent on is the received one
    # minus the time the message waited, the downtime (>= 3.5 s) included
    mei = lp.props.get(m5.MESSAGE_EXPIRY_INTERVAL)
    assert mei is not None and 3000 <= mei <= 3598, lp


# --------------------------------------------------------------------------
# 2. persistent sessions
# --------------------------------------------------------------------------

@pytest.mark.parametrize("how", HOW)
def test_v311_mqtt_3_1_2_4_session_survives_restart(start_broker, clients, how):
    b1 = start_broker(**SYNC)
    # connected when the broker stops
    c, ack = _raw(clients, b1, "ps-online", clean=False)
    assert ack.session_present == 0
    codes = c.subscribe([("ps/q0", 0), ("ps/q1", 1), ("ps/q2/#", 2),
                         ("ps/+/wild", 1), ("ps/gone", 1)])
    assert codes == [0, 1, 2, 1, 1]
    c.unsubscribe("ps/gone")
    # disconnected before the broker stops
    d, _ = _raw(clients, b1, "ps-offline", clean=False)
    assert d.subscribe([("ps/q1", 2), ("ps/only-d", 1)]) == [2, 1]
    d.disconnect()
    b2 = _restart(start_broker, b1, how)

    c2, ack = _raw(clients, b2, "ps-online", clean=False)
    # [MQTT-3.2.2-2] 3.1.1: the stored session was found: Session Present 1
    assert (ack.rc, ack.session_present) == (0, 1)
    d2, ack = _raw(clients, b2, "ps-offline", clean=False)
    assert (ack.rc, ack.session_present) == (0, 1)

    pub, _ = _raw(clients, b2, "ps-pub")
    pub.publish("ps/gone", b"unsubscribed", qos=1)
    pub.publish("ps/q0", b"to q0", qos=2)
    pub.publish("ps/q1", b"to q1", qos=2)
    pub.publish("ps/q2/a/b", b"to q2", qos=2)
    pub.publish("ps/x/wild", b"to wild", qos=2)
    pub.publish("ps/only-d", b"to d", qos=1)
    pub.publish("ps/q2/end", b"end", qos=1)      # c's last one
    pub.publish("ps/q1", b"end", qos=1)          # d's last one

    # [MQTT-3.1.2-4] 3.1.1: the session (its subscriptions) is resumed
    # without a new SUBSCRIBE; [MQTT-3.8.4-6] 3.1.1: delivered at the lower
    # of published and granted QoS; the UNSUBSCRIBE before the restart is
    # remembered (ps/gone not delivered)
    got = sorted((p.topic, p.payload, p.qos) for p in _until(c2, b"end"))
    assert got == [(b"ps/q0", b"to q0", 0), (b"ps/q1", b"to q1", 1),
                   (b"ps/q2/a/b", b"to q2", 2), (b"ps/x/wild", b"to wild", 1)]
    got = sorted((p.topic, p.payload, p.qos) for p in _until(d2, b"end"))
    assert got == [(b"ps/only-d", b"to d", 1), (b"ps/q1", b"to q1", 2)]


@pytest.mark.parametrize("how", HOW)
def test_v5_mqtt_3_1_2_5_session_survives_restart(start_broker, clients, how):
    b1 = start_broker(**SYNC)
    pub, _ = _v5(clients, b1, "v5-pub")
    _puback_ok(pub.publish("v5/rh1", b"retained rh1", qos=1, retain=True))
    c, ack = _v5(clients, b1, "ps-v5", clean_start=True,
                 props=[(m5.SESSION_EXPIRY_INTERVAL, 3600)])
    assert ack.session_present == 0
    assert c.subscribe([("v5/nl", opts(1, no_local=True))]) == [1]
    assert c.subscribe([("v5/rap", opts(2, retain_as_published=True))]) == [2]
    assert c.subscribe([("v5/sid/#", opts(1))],
                       props=[(m5.SUBSCRIPTION_IDENTIFIER, 4242)]) == [1]
    assert c.subscribe([("v5/plain", opts(0))]) == [0]
    assert c.subscribe([("v5/rh1", opts(1, retain_handling=1))]) == [1]
    first = c.expect_publish()     # RH 1, new subscription: retained sent
    assert (first.topic, first.payload) == (b"v5/rh1", b"retained rh1"), first
    assert c.subscribe([("v5/gone", opts(1))]) == [1]
    assert c.unsubscribe("v5/gone") == [m5.SUCCESS]
    b2 = _restart(start_broker, b1, how)

    c2, ack = _v5(clients, b2, "ps-v5", clean_start=False,
                  props=[(m5.SESSION_EXPIRY_INTERVAL, 3600)])
    # [MQTT-3.2.2-3] v5: Session Present 1 for the stored session
    assert (ack.rc, ack.session_present) == (m5.SUCCESS, 1)
    # [MQTT-3.3.1-10] v5: Retain Handling 1 and the subscription exists
    # (it survived the restart): no retained message for this SUBSCRIBE
    assert c2.subscribe([("v5/rh1", opts(1, retain_handling=1))]) == [1]
    # [MQTT-3.8.3-3] v5: No Local kept: c2's own message does not come back
    _puback_ok(c2.publish("v5/nl", b"own", qos=1))

    pub2, _ = _v5(clients, b2, "v5-pub2")
    pub2.publish("v5/gone", b"unsubscribed", qos=1)
    pub2.publish("v5/nl", b"from other", qos=2)
    pub2.publish("v5/rap", b"rap", qos=2, retain=True)
    pub2.publish("v5/sid/x", b"sid", qos=2)
    pub2.publish("v5/plain", b"plain", qos=2)
    pub2.publish("v5/plain", b"end", qos=1)

    got = _by_topic(_until(c2, b"end"))
    # [MQTT-3.1.2-5] v5: the session is resumed with its subscriptions and
    # their options; §3.8.2.1.2 v5: with their Subscription Identifiers;
    # the UNSUBSCRIBE before the restart is remembered; [MQTT-3.8.4-8] v5:
    # delivered at the lower of published and granted QoS
    assert sorted(got) == [b"v5/nl", b"v5/plain", b"v5/rap", b"v5/sid/x"], got
    assert (got[b"v5/nl"].payload, got[b"v5/nl"].qos) == (b"from other", 1)
    # [MQTT-3.3.1-13] v5: Retain As Published kept: RETAIN=1 as published
    assert (got[b"v5/rap"].qos, got[b"v5/rap"].retain) == (2, True), got[b"v5/rap"]
    # [MQTT-3.3.4-3] v5: the stored Subscription Identifier is sent
    assert got[b"v5/sid/x"].qos == 1
    assert got[b"v5/sid/x"].props.all(m5.SUBSCRIPTION_IDENTIFIER) == [4242], got[b"v5/sid/x"]
    assert got[b"v5/plain"].qos == 0
    assert not got[b"v5/plain"].props.has(m5.SUBSCRIPTION_IDENTIFIER)
    assert not got[b"v5/rap"].props.has(m5.SUBSCRIPTION_IDENTIFIER)


@pytest.mark.parametrize("how", HOW)
def test_v5_mqtt_4_1_0_2_session_expired_while_down(start_broker, clients, how):
    b1 = start_broker(**SYNC)
    short, _ = _v5(clients, b1, "exp-short",
                   props=[(m5.SESSION_EXPIRY_INTERVAL, 2)])
    assert short.subscribe([("exp/t", opts(1))]) == [1]
    short.disconnect()
    short_gone = time.time()      # its 2 s started at this disconnect
    keep, _ = _v5(clients, b1, "exp-long",
                  props=[(m5.SESSION_EXPIRY_INTERVAL, 3600)])
    assert keep.subscribe([("exp/t", opts(1))]) == [1]
    keep.disconnect()
    _stop(b1, how)
    # exp-short's expiry runs out while no broker is running (wall clock)
    let_wall_time_pass(short_gone + 2 + 1.5)
    b2 = start_broker(data_dir=b1.data_dir, port=b1.port, **SYNC)

    s2, ack = _v5(clients, b2, "exp-short", clean_start=False,
                  props=[(m5.SESSION_EXPIRY_INTERVAL, 60)])
    # [MQTT-4.1.0-2] v5: the session was deleted once its expiry interval
    # passed (the downtime counts); [MQTT-3.2.2-3] v5: no session, SP 0
    assert (ack.rc, ack.session_present) == (m5.SUCCESS, 0)
    k2, ack = _v5(clients, b2, "exp-long", clean_start=False,
                  props=[(m5.SESSION_EXPIRY_INTERVAL, 3600)])
    # [MQTT-3.1.2-23] v5: the other one is kept until its interval runs out
    assert (ack.rc, ack.session_present) == (m5.SUCCESS, 1)

    assert s2.subscribe([("exp/mark", opts(1))]) == [1]
    pub, _ = _v5(clients, b2, "exp-pub")
    pub.publish("exp/t", b"after restart", qos=1)
    p = k2.expect_publish()
    assert (p.topic, p.payload, p.qos) == (b"exp/t", b"after restart", 1)
    # the expired session's subscription went with it
    s2.expect_marker(pub, "exp/mark")


@pytest.mark.parametrize("how", HOW)
def test_mqtt_3_1_2_6_clean_sessions_not_kept(start_broker, clients, how):
    """3.1.1 CleanSession=1 and 5.0 Session Expiry Interval 0 sessions end
    with their connection: none is found after a restart, whether the
    connection was still open when the broker stopped or not."""
    b1 = start_broker(**SYNC)
    online311, _ = _raw(clients, b1, "cs-311-online", clean=True)
    online311.subscribe([("cs/t", 1)])
    off311, _ = _raw(clients, b1, "cs-311-offline", clean=True)
    off311.subscribe([("cs/t", 1)])
    off311.disconnect()
    # Clean Start 0 but no Session Expiry Interval: expiry 0
    online5, _ = _v5(clients, b1, "cs-v5-online", clean_start=False)
    online5.subscribe([("cs/t", opts(1))])
    off5, _ = _v5(clients, b1, "cs-v5-offline", clean_start=False,
                  props=[(m5.SESSION_EXPIRY_INTERVAL, 0)])
    off5.subscribe([("cs/t", opts(1))])
    off5.disconnect()
    # a persistent session that a CleanSession=1 connection then discarded
    was, _ = _raw(clients, b1, "cs-311-was-persistent", clean=False)
    was.subscribe([("cs/t", 1)])
    was.disconnect()
    was, ack = _raw(clients, b1, "cs-311-was-persistent", clean=True)
    assert ack.session_present == 0
    was.disconnect()
    b2 = _restart(start_broker, b1, how)

    pub, _ = _raw(clients, b2, "cs-pub")
    for cid in ("cs-311-online", "cs-311-offline", "cs-311-was-persistent"):
        c, ack = _raw(clients, b2, cid, clean=False)
        # [MQTT-3.1.2-6] 3.1.1: a CleanSession=1 session is not reused;
        # [MQTT-3.2.2-3] 3.1.1: no stored session -> Session Present 0
        assert (ack.rc, ack.session_present) == (0, 0), cid
        c.subscribe([("cs/mark/" + cid, 1)])
        pub.publish("cs/t", b"no subscription left", qos=1)
        c.expect_marker(pub, "cs/mark/" + cid)
    for cid in ("cs-v5-online", "cs-v5-offline"):
        c, ack = _v5(clients, b2, cid, clean_start=False,
                     props=[(m5.SESSION_EXPIRY_INTERVAL, 60)])
        # §3.1.2.11.2 v5: expiry 0 ends the session with the connection;
        # [MQTT-3.2.2-3] v5: Session Present 0
        assert (ack.rc, ack.session_present) == (m5.SUCCESS, 0), cid
        c.subscribe([("cs/mark/" + cid, opts(1))])
        pub.publish("cs/t", b"no subscription left", qos=1)
        c.expect_marker(pub, "cs/mark/" + cid)


# --------------------------------------------------------------------------
# 3. durability
# --------------------------------------------------------------------------

def _fill_state(clients, broker, prefix):
    """A retained message, a 3.1.1 persistent session and a v5 session with
    Session Expiry Interval 3600, each subscribed to <prefix>/t (the
    clients stay connected)."""
    pub, _ = _raw(clients, broker, prefix + "-pub")
    pub.publish(prefix + "/ret", b"retained", qos=1, retain=True)
    c311, _ = _raw(clients, broker, prefix + "-311", clean=False)
    assert c311.subscribe([(prefix + "/t", 1)]) == [1]
    c5, _ = _v5(clients, broker, prefix + "-v5",
                props=[(m5.SESSION_EXPIRY_INTERVAL, 3600)])
    assert c5.subscribe([(prefix + "/t", opts(1))]) == [1]


def _check_state(clients, broker, prefix, kept):
    """The state of _fill_state is all there (kept) or all gone."""
    c311, ack = _raw(clients, broker, prefix + "-311", clean=False)
    assert ack.session_present == (1 if kept else 0), "3.1.1 session"
    c5, ack = _v5(clients, broker, prefix + "-v5", clean_start=False,
                  props=[(m5.SESSION_EXPIRY_INTERVAL, 3600)])
    assert ack.session_present == (1 if kept else 0), "v5 session"
    pub, _ = _raw(clients, broker, prefix + "-pub2")
    sub, _ = _raw(clients, broker, prefix + "-sub")
    got = _retained_after_subscribe(sub, pub, prefix + "/#", 1)
    if kept:
        assert [(t, p.payload) for t, p in got.items()] == [
            ((prefix + "/ret").encode(), b"retained")], got
    else:
        assert got == {}, "retained message survived: %r" % got
    if kept:
        pub.publish(prefix + "/t", b"live", qos=1)
        assert c311.expect_publish().payload == b"live"
        assert c5.expect_publish().payload == b"live"
    else:
        c311.subscribe([(prefix + "/mark311", 1)])
        c5.subscribe([(prefix + "/mark5", opts(1))])
        pub.publish(prefix + "/t", b"no subscription left", qos=1)
        c311.expect_marker(pub, prefix + "/mark311")
        c5.expect_marker(pub, prefix + "/mark5")


@pytest.mark.parametrize("how", HOW)
def test_durability_none_keeps_nothing(start_broker, clients, how):
    """durability = none: retained messages and sessions live in memory
    only; nothing survives a restart (SIGTERM included)."""
    none = {"storage_durability": "none"}
    b1 = start_broker(**none)
    _fill_state(clients, b1, "dn")
    b2 = _restart(start_broker, b1, how, env=none)
    _check_state(clients, b2, "dn", kept=False)


def test_durability_relaxed_keeps_state_across_sigterm(start_broker, clients):
    """durability = relaxed syncs on an interval, but a clean stop (SIGTERM)
    commits what is pending: everything survives it."""
    relaxed = {"storage_durability": "relaxed"}
    b1 = start_broker(**relaxed)
    _fill_state(clients, b1, "dr")
    b2 = _restart(start_broker, b1, "term", env=relaxed)
    _check_state(clients, b2, "dr", kept=True)


def test_durability_sync_keeps_state_across_two_restarts(start_broker, clients):
    """The loaded state is still stored: a second restart finds it again
    (loading must not drop or consume it)."""
    b1 = start_broker(**SYNC)
    _fill_state(clients, b1, "ds")
    b2 = _restart(start_broker, b1, "kill")
    _check_state(clients, b2, "ds", kept=True)
    b3 = _restart(start_broker, b2, "kill")
    _check_state(clients, b3, "ds", kept=True)


# --------------------------------------------------------------------------
# 4. start-up errors
# --------------------------------------------------------------------------

@pytest.mark.parametrize("garbage", ["text", "random"])
def test_garbage_data_mdb_stops_start(start_broker, tmp_path, garbage):
    data_dir = tmp_path / "broken-data"
    data_dir.mkdir()
    if garbage == "text":
        content = b"this is not an LMDB file\n" * 400
    else:
        content = random.Random(4242).randbytes(64 * 1024)
    mdb = data_dir / "data.mdb"
    mdb.write_bytes(content)
    t0 = time.monotonic()
    b = start_broker(data_dir=str(data_dir), expect_exit=True, **SYNC)
    elapsed = time.monotonic() - t0
    text = b.log_text()
    # exit with an error status, not by a signal (a crash)
    assert isinstance(b.status, int) and b.status > 0, \
        "exit status %s, expected > 0\n%s" % (b.status, text)
    assert elapsed < 10.0, "took %.1fs to give up" % elapsed
    # one error line naming the data dir
    assert str(data_dir) in text, text
    for marker in SANITIZER_MARKERS:
        assert marker not in text, text
    # the broken file is left as it was (not overwritten or truncated)
    assert mdb.read_bytes() == content


def test_bad_durability_value_refused(start_broker):
    b = start_broker(expect_exit=True, storage_durability="sometimes")
    text = b.log_text()
    # a configuration error: exit 2 with a line naming the key
    assert b.status == 2, "exit status %s\n%s" % (b.status, text)
    assert "durability" in text.lower(), text
    for marker in SANITIZER_MARKERS:
        assert marker not in text, text
