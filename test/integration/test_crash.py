"""Crash tests of durable delivery: QoS 1/2 messages queued for persistent
sessions, their in-flight state (packet ids, PUBREC received), incoming
QoS 2 packet ids and delayed wills are in LMDB, so a `kill -9` of mqd loses
nothing it acknowledged.

With [storage] durability = sync (the default) a PUBACK / PUBREC reaches
the publisher only after the commit that holds the message for every
matching persistent session; a first QoS 2 PUBLISH to a persistent session
leaves only once its packet id is on disk; PUBCOMP leaves only once the
incoming packet id is forgotten on disk.

Every crash is SIGKILL by PID (broker.kill()); the new broker starts on the
same data dir and port. Waits are on events (an ack, a marker message, a
closed socket); the one exception lets a message expiry run out while no
broker runs.
"""

import os
import random
import re
import signal
import time

import pytest

import mqtt5_raw as m5
import mqtt_raw as raw
from conftest import let_wall_time_pass
from test_persistence import _until as _collect_until

pytestmark = pytest.mark.skipif(
    os.environ.get("MQD_TEST_BROKER", "mqd") != "mqd",
    reason="mqd-specific: LMDB persistence")

SYNC = {"storage_durability": "sync"}


def _crash_restart(start_broker, b, env=SYNC):
    status = b.kill()
    assert status == -signal.SIGKILL, "not killed: %s\n%s" % (status, b.log_tail())
    return start_broker(data_dir=b.data_dir, port=b.port, **env)


def _loaded(b):
    """The numbers of the broker's "storage loaded" log line."""
    m = re.search(r"storage loaded .*", b.log_text())
    assert m, b.log_tail()
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(0))}


def _stream_and_kill(pub, b, topic, qos, n, kill_after, window=16):
    """Publishes n messages "%06d" % i at qos with up to `window` unacked,
    and kills b (SIGKILL) as soon as kill_after acks have arrived, with
    later messages still in flight. Returns the set of acked sequence
    numbers (PUBACK for QoS 1, PUBREC for QoS 2)."""
    acked, pending = set(), {}
    sent = 0
    while True:
        while sent < n and len(pending) < window:
            pid = pub.next_pid()
            pub.send(raw.publish(topic, b"%06d" % sent, qos=qos, pid=pid))
            pending[pid] = sent
            sent += 1
        pkt = pub.recv()
        if pkt.type in (raw.PUBACK, raw.PUBREC) and pkt.pid in pending:
            acked.add(pending.pop(pkt.pid))
            if pkt.type == raw.PUBREC:
                pub.send(raw.pubrel(pkt.pid))
        if len(acked) >= kill_after:
            status = b.kill()
            assert status == -signal.SIGKILL, status
            return acked, sent


@pytest.mark.parametrize("qos", [1, 2])
def test_kill9_mid_stream_offline_subscriber_gets_every_acked_message(
        start_broker, clients, qos):
    """[MQTT-3.1.2-4] 3.1.1, [MQTT-4.3.2-2] / [MQTT-4.3.3-2] both: a
    persistent session's QoS 1/2 messages are session state, and an
    acknowledged message is owned by the server: after a crash the
    subscriber gets every message the publisher got an ack for, in order,
    and (QoS 2) exactly once."""
    b1 = start_broker(**SYNC)
    sub = clients.raw(b1)
    sub.handshake("crash-sub-%d" % qos, clean=False)
    assert sub.subscribe([("crash/#", qos)]) == [qos]
    sub.disconnect()

    pub = clients.raw(b1)
    pub.handshake("crash-pub-%d" % qos)
    n = 400
    kill_after = random.randint(40, n - 100)
    acked, sent = _stream_and_kill(pub, b1, "crash/data", qos, n, kill_after)
    assert sent > len(acked), "nothing was in flight at the kill"

    b2 = start_broker(data_dir=b1.data_dir, port=b1.port, **SYNC)
    sub2 = clients.raw(b2)
    ack = sub2.handshake("crash-sub-%d" % qos, clean=False)
    assert ack.session_present == 1
    marker = clients.raw(b2)
    marker.handshake("crash-marker-%d" % qos)
    marker.publish("crash/zz", b"end", qos=1)
    got = _collect_until(sub2, b"end")

    seqs = [int(p.payload) for p in got]
    firsts = []
    for s in seqs:
        if s not in firsts:
            firsts.append(s)
    missing = sorted(acked - set(seqs))
    assert not missing, "acknowledged but lost after kill -9: %r (kill after %d acks)" % (
        missing, kill_after)
    assert firsts == sorted(firsts), "out of order: %r" % seqs
    dups = len(seqs) - len(firsts)
    if qos == 2:
        assert dups == 0, "QoS 2 delivered twice: %r" % seqs
    for p in got:
        assert p.qos == qos and p.topic == b"crash/data", p


def test_kill9_inflight_resent_with_dup_and_same_ids(start_broker, clients):
    """[MQTT-4.4.0-1] both: after the crash, the resumed session re-sends
    the unacknowledged PUBLISH packets (DUP=1 [MQTT-3.3.1-1], same packet
    ids) and the PUBREL of a QoS 2 message whose PUBREC arrived, in their
    original order [MQTT-4.6.0-1] 3.1.1; then what was still queued."""
    b1 = start_broker(**SYNC, mqtt_max_inflight=3)
    sub = clients.raw(b1)
    sub.handshake("fl-sub", clean=False)
    assert sub.subscribe([("fl/#", 2)]) == [2]
    pub = clients.raw(b1)
    pub.handshake("fl-pub")
    pub.publish("fl/1", b"one", qos=1)
    pub.publish("fl/2", b"two", qos=2)
    pub.publish("fl/3", b"three", qos=2)
    pub.publish("fl/4", b"four", qos=1)   # queued: the window is 3
    p1 = sub.expect_publish(ack=False)
    p2 = sub.expect_publish(ack=False)
    p3 = sub.expect_publish(ack=False)
    assert [p.payload for p in (p1, p2, p3)] == [b"one", b"two", b"three"]
    # QoS 2 "three": PUBREC, the broker answers PUBREL; no PUBCOMP yet
    sub.send(raw.pubrec(p3.pid))
    rel = sub.expect(raw.PUBREL)
    assert rel.pid == p3.pid
    # the broker has the PUBREC on disk once the PUBREL came? Not
    # promised: make sure by a round trip that needs a later commit.
    pub.publish("other", b"sync", qos=1, retain=True)
    b2 = _crash_restart(start_broker, b1, env=dict(SYNC, mqtt_max_inflight=3))

    sub2 = clients.raw(b2)
    assert sub2.handshake("fl-sub", clean=False).session_present == 1
    r1 = sub2.expect(raw.PUBLISH)
    r2 = sub2.expect(raw.PUBLISH)
    r3 = sub2.expect(raw.PUBREL)
    assert (r1.pid, r1.payload, r1.qos, r1.dup) == (p1.pid, b"one", 1, True), r1
    assert (r2.pid, r2.payload, r2.qos, r2.dup) == (p2.pid, b"two", 2, True), r2
    assert r3.pid == p3.pid
    sub2.send(raw.puback(r1.pid))
    r4 = sub2.expect(raw.PUBLISH)          # "four": the window opened
    assert (r4.payload, r4.qos, r4.dup) == (b"four", 1, False), r4
    assert r4.pid not in (p2.pid, p3.pid)  # [MQTT-2.3.1-2] ids in use
    sub2.send(raw.puback(r4.pid))
    sub2.ack(r2)
    sub2.send(raw.pubcomp(r3.pid))
    pub2 = clients.raw(b2)
    pub2.handshake("fl-pub2")
    sub2.expect_marker(pub2, "fl/mark")


def test_kill9_keeps_incoming_qos2_ids(start_broker, clients):
    """[MQTT-4.3.3-2] 3.1.1 / [MQTT-4.3.3-9] v5 (method B): a QoS 2
    PUBLISH the server PUBRECed is not delivered again when the client
    re-sends it (DUP) after a crash; once PUBCOMP went, the id is free
    again and a new message with it is delivered."""
    b1 = start_broker(**SYNC)
    sub = clients.raw(b1)
    sub.handshake("q2-sub", clean=False)
    assert sub.subscribe([("q2/#", 2)]) == [2]
    sub.disconnect()
    pub = clients.raw(b1)
    pub.handshake("q2-pub", clean=False)
    pub.send(raw.publish("q2/a", b"first", qos=2, pid=7))
    assert pub.expect(raw.PUBREC).pid == 7
    b2 = _crash_restart(start_broker, b1)

    pub2 = clients.raw(b2)
    assert pub2.handshake("q2-pub", clean=False).session_present == 1
    pub2.send(raw.publish("q2/a", b"first", qos=2, pid=7, dup=True))
    assert pub2.expect(raw.PUBREC).pid == 7
    pub2.send(raw.pubrel(7))
    assert pub2.expect(raw.PUBCOMP).pid == 7
    b3 = _crash_restart(start_broker, b2)

    pub3 = clients.raw(b3)
    assert pub3.handshake("q2-pub", clean=False).session_present == 1
    pub3.publish("q2/b", b"second", qos=2, pid=7)   # the id is free again
    sub2 = clients.raw(b3)
    assert sub2.handshake("q2-sub", clean=False).session_present == 1
    marker = clients.raw(b3)
    marker.handshake("q2-marker")
    marker.publish("q2/zz", b"end", qos=1)
    got = _collect_until(sub2, b"end")
    assert [(p.topic, p.payload) for p in got] == [
        (b"q2/a", b"first"), (b"q2/b", b"second")], got


def test_kill9_message_ids_not_reused(start_broker, clients):
    """A message queued before the crash and one published after it are
    both delivered with their own payloads: stored message ids are never
    handed out again (a reused id would make the second one share the
    first one's stored payload)."""
    b1 = start_broker(**SYNC)
    sub = clients.raw(b1)
    sub.handshake("id-sub", clean=False)
    assert sub.subscribe([("id/#", 1)]) == [1]
    sub.disconnect()
    pub = clients.raw(b1)
    pub.handshake("id-pub")
    pub.publish("id/a", b"before the crash", qos=1)
    b2 = _crash_restart(start_broker, b1)
    pub2 = clients.raw(b2)
    pub2.handshake("id-pub")
    pub2.publish("id/b", b"after the crash", qos=1)
    pub2.publish("id/zz", b"end", qos=1)
    sub2 = clients.raw(b2)
    assert sub2.handshake("id-sub", clean=False).session_present == 1
    got = _collect_until(sub2, b"end")
    assert [(p.topic, p.payload) for p in got] == [
        (b"id/a", b"before the crash"), (b"id/b", b"after the crash")]


def test_fan_out_to_offline_sessions_stores_one_payload(start_broker, clients):
    """One message queued for 20 offline persistent sessions is stored
    once (the start-up log counts 20 queued deliveries of 1 message) and
    each session gets it after the crash."""
    b1 = start_broker(**SYNC)
    for i in range(20):
        c = clients.raw(b1)
        c.handshake("fan-%02d" % i, clean=False)
        assert c.subscribe([("fan/t", 1)]) == [1]
        c.disconnect()
    pub = clients.raw(b1)
    pub.handshake("fan-pub")
    pub.publish("fan/t", b"x" * 1000, qos=1)
    b2 = _crash_restart(start_broker, b1)
    nums = _loaded(b2)
    assert nums["queued"] == 20 and nums["messages"] == 1, nums
    for i in range(20):
        c = clients.raw(b2)
        assert c.handshake("fan-%02d" % i, clean=False).session_present == 1
        p = c.expect_publish()
        assert (p.topic, p.payload, p.qos) == (b"fan/t", b"x" * 1000, 1)


def test_v5_queued_message_expired_while_down_is_dropped(start_broker, clients):
    """[MQTT-3.3.2-5] v5: a queued message whose Message Expiry Interval
    ran out while the node was down is not delivered after the restart."""
    b1 = start_broker(**SYNC)
    sub = m5.client(clients, b1)
    sub.handshake("exp-sub", clean_start=False,
                  props=[(m5.SESSION_EXPIRY_INTERVAL, 3600)])
    sub.subscribe([("exp/#", m5.sub_options(1))])
    sub.disconnect()
    pub = m5.client(clients, b1)
    pub.handshake("exp-pub")
    pub.publish("exp/short", b"gone", qos=1,
                props=[(m5.MESSAGE_EXPIRY_INTERVAL, 1)])
    pub.publish("exp/long", b"kept", qos=1,
                props=[(m5.MESSAGE_EXPIRY_INTERVAL, 3600)])
    t_pub = time.time()
    status = b1.kill()
    assert status == -signal.SIGKILL
    # the only wait not on an event: the expiry must run out while no
    # broker runs
    let_wall_time_pass(t_pub + 1.5)
    b2 = start_broker(data_dir=b1.data_dir, port=b1.port, **SYNC)
    assert _loaded(b2)["expired"] >= 1
    sub2 = m5.client(clients, b2)
    ack = sub2.handshake("exp-sub", clean_start=False,
                         props=[(m5.SESSION_EXPIRY_INTERVAL, 3600)])
    assert ack.session_present == 1
    p = sub2.expect(m5.PUBLISH)
    assert (p.topic, p.payload) == (b"exp/long", b"kept"), p
    sub2.ack(p)


def test_v5_delayed_will_survives_kill9(start_broker, clients):
    """[MQTT-3.1.3-9] v5: the will of a session that went offline with a
    Will Delay Interval is published after the delay even when the node
    crashed meanwhile (the session and its will are on disk)."""
    b1 = start_broker(**SYNC)
    watcher = m5.client(clients, b1)
    watcher.handshake("will-watch", clean_start=False,
                      props=[(m5.SESSION_EXPIRY_INTERVAL, 3600)])
    watcher.subscribe([("will/#", m5.sub_options(1))])
    w = m5.client(clients, b1)
    w.handshake("will-owner", clean_start=False,
                props=[(m5.SESSION_EXPIRY_INTERVAL, 3600)],
                will=dict(topic="will/gone", payload=b"owner gone", qos=1,
                          props=[(m5.WILL_DELAY_INTERVAL, 2)]))
    w.abort()                       # no DISCONNECT: the will is due
    # the detach is written in the turn it happens; a QoS 1 retained
    # publish acked after it proves that commit is done
    sync = m5.client(clients, b1)
    sync.handshake("will-sync")
    sync.publish("sync/x", b"s", qos=1, retain=True)
    b2 = _crash_restart(start_broker, b1)
    watcher2 = m5.client(clients, b2)
    ack = watcher2.handshake("will-watch", clean_start=False,
                             props=[(m5.SESSION_EXPIRY_INTERVAL, 3600)])
    assert ack.session_present == 1
    p = watcher2.expect(m5.PUBLISH, timeout=15)
    assert (p.topic, p.payload) == (b"will/gone", b"owner gone"), p
    watcher2.ack(p)


def test_v5_storage_full_refuses_with_quota_exceeded(start_broker, clients):
    """At [storage] max_size a publish that needs storage is refused with
    0x97 Quota exceeded (v5); the node keeps serving, logs it, and every
    message it acknowledged before is delivered after a crash."""
    b1 = start_broker(**SYNC, storage_max_size="1M")
    sub = m5.client(clients, b1)
    sub.handshake("full-sub", clean_start=False,
                  props=[(m5.SESSION_EXPIRY_INTERVAL, 3600)])
    sub.subscribe([("full/#", m5.sub_options(1))])
    sub.disconnect()
    pub = m5.client(clients, b1)
    pub.handshake("full-pub")
    acked, refused = [], None
    for i in range(200):
        ack = pub.publish("full/t", b"%06d" % i + b"p" * 30000, qos=1)
        if ack.rc == 0x97:
            refused = i
            break
        assert ack.rc == m5.SUCCESS, ack
        acked.append(i)
    assert refused is not None, "1 MiB of storage never filled"
    assert acked, "refused the first message"
    assert "storage commit failed" in b1.log_text()
    # still serving: a QoS 0 publish and a ping round trip
    pub.publish("nobody/listens", b"q0", qos=0)
    pub.send(raw.pingreq())
    pub.expect(m5.PINGRESP)
    b2 = _crash_restart(start_broker, b1, env=dict(SYNC, storage_max_size="1M"))
    sub2 = m5.client(clients, b2)
    ack = sub2.handshake("full-sub", clean_start=False,
                         props=[(m5.SESSION_EXPIRY_INTERVAL, 3600)])
    assert ack.session_present == 1
    got = []
    for _ in acked:
        p = sub2.expect(m5.PUBLISH)
        sub2.ack(p)
        got.append(int(p.payload[:6]))
    assert got == acked


def test_v311_storage_full_closes_the_publisher(start_broker, clients):
    """[MQTT-4.8.0-2] 3.1.1: an error while handling an inbound packet
    closes that connection (3.1.1 has no refusal code): at [storage]
    max_size the publisher's connection is closed instead of
    acknowledging; the node keeps serving others."""
    b1 = start_broker(**SYNC, storage_max_size="1M")
    sub = clients.raw(b1)
    sub.handshake("full3-sub", clean=False)
    assert sub.subscribe([("full3/#", 1)]) == [1]
    sub.disconnect()
    pub = clients.raw(b1)
    pub.handshake("full3-pub")
    closed = False
    for i in range(200):
        pid = pub.next_pid()
        pub.send(raw.publish("full3/t", b"p" * 30000, qos=1, pid=pid))
        try:
            pkt = pub.recv()
        except raw.Closed:
            closed = True
            break
        assert (pkt.type, pkt.pid) == (raw.PUBACK, pid), pkt
    assert closed, "1 MiB of storage never filled"
    other = clients.raw(b1)
    other.handshake("full3-other")
    other.ping()


def test_v5_mqtt_4_3_3_9_after_pubrec_error_same_id_is_new(start_broker,
                                                            clients):
    """[MQTT-4.3.3-9] v5: once the server has answered a QoS 2 PUBLISH with
    a PUBREC of 0x80 or more (here 0x97: storage full), a PUBLISH with the
    same packet id is a new message: storing it is tried again (and
    refused again while the store is full), where a resend of an accepted
    one would be answered 0x00 without storing."""
    b = start_broker(**SYNC, storage_max_size="1M")
    sub = m5.client(clients, b)
    sub.handshake("full2-sub", clean_start=False,
                  props=[(m5.SESSION_EXPIRY_INTERVAL, 3600)])
    sub.subscribe([("full2/#", m5.sub_options(2))])
    pub = m5.client(clients, b)
    pub.handshake("full2-pub")
    # fill the store with messages the subscriber does not acknowledge
    pid = 7
    for i in range(200):
        pub.send(m5.publish("full2/t", b"%06d" % i + b"p" * 30000, qos=2,
                            pid=pid))
        rec = pub.expect(m5.PUBREC)
        assert rec.pid == pid
        if rec.rc == 0x97:
            break
        assert rec.rc == 0, rec
        pub.send(m5.pubrel(pid))
        comp = pub.expect(m5.PUBCOMP)
        assert comp.pid == pid
    else:
        raise AssertionError("1 MiB of storage never filled")
    # the same id again, not DUP: a new message, so storage is tried again
    # (a resend of an accepted one would get PUBREC 0x00 without storing)
    pub.send(m5.publish("full2/t", b"again" + b"p" * 30000, qos=2, pid=pid))
    rec = pub.expect(m5.PUBREC)
    assert (rec.pid, rec.rc) == (pid, 0x97), rec


def test_v311_qos2_refused_by_full_storage_is_not_a_duplicate(start_broker,
                                                              clients):
    """3.1.1 (closed where MQTT 5 would answer PUBREC 0x97): a QoS 2
    PUBLISH that could not be stored leaves no trace of its packet id in
    the publisher's session, so its resend after reconnecting (DUP) is
    stored as the new message it is, not answered PUBREC as a duplicate
    of one the server never kept ([MQTT-4.3.3-9] v5 is the same rule)."""
    b = start_broker(**SYNC, storage_max_size="1M")
    sub = clients.raw(b)
    sub.handshake("full4-sub", clean=False)
    assert sub.subscribe([("full4/#", 2)]) == [2]
    sub.disconnect()
    pub = clients.raw(b)
    pub.handshake("full4-pub", clean=False)
    pid = 9
    for i in range(200):
        pub.send(raw.publish("full4/t", b"p" * 30000, qos=2, pid=pid))
        try:
            pkt = pub.recv()
        except raw.Closed:
            break
        assert (pkt.type, pkt.pid) == (raw.PUBREC, pid), pkt
        pub.send(raw.pubrel(pid))
        pkt = pub.expect(raw.PUBCOMP)
    else:
        raise AssertionError("1 MiB of storage never filled")
    # the resend of the refused message, as a 3.1.1 client does it: the
    # store is still full, so the server must try it and close again; a
    # PUBREC would mean it took the id for one it had kept
    again = clients.raw(b)
    again.handshake("full4-pub", clean=False)
    again.send(raw.publish("full4/t", b"p" * 30000, qos=2, pid=pid,
                           dup=True))
    with pytest.raises(raw.Closed):
        pkt = again.recv()
        raise AssertionError("answered %r instead of closing" % (pkt,))
