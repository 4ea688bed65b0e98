"""Real clients against the broker (mosquitto_pub/sub, paho, raw) talking to
each other across MQTT 3.1 and 3.1.1, many clients at once, and a client
that stops reading while others keep being served."""

import os
import socket
import time

import paho.mqtt.client as mqtt
import pytest

import mqtt_raw as m


def test_v311_mqtt_7_0_0_2_mosquitto_pub_to_mosquitto_sub(broker, clients):
    s = clients.sub(broker, "-t", "ms/#", "-q", "2", "-C", "3", "-W", "10")
    s.wait_subscribed()
    for q in (0, 1, 2):
        clients.pub(broker, "-t", "ms/q%d" % q, "-m", "payload %d" % q, "-q", str(q))
    # [MQTT-7.0.0-2] 3.1.1: works with an unmodified conformant client
    got = [s.get_message() for _ in range(3)]
    assert got == [("ms/q0", "payload 0", 0, False), ("ms/q1", "payload 1", 1, False),
                   ("ms/q2", "payload 2", 2, False)]
    assert s.wait() == 0


@pytest.mark.parametrize("pub_v,sub_v", [("mqttv31", "mqttv311"), ("mqttv311", "mqttv31"),
                                         ("mqttv31", "mqttv31")])
def test_mosquitto_clients_across_versions(broker, clients, pub_v, sub_v):
    s = clients.sub(broker, "-V", sub_v, "-t", "xv/t", "-q", "1", "-C", "2", "-W", "10")
    s.wait_subscribed()
    clients.pub(broker, "-V", pub_v, "-t", "xv/t", "-m", "a", "-q", "1")
    clients.pub(broker, "-V", pub_v, "-t", "xv/t", "-m", "b", "-q", "2")
    assert [s.get_message()[:3], s.get_message()[:3]] == [("xv/t", "a", 1), ("xv/t", "b", 1)]
    assert s.wait() == 0


@pytest.mark.parametrize("pub_proto,sub_proto", [(mqtt.MQTTv31, mqtt.MQTTv311),
                                                 (mqtt.MQTTv311, mqtt.MQTTv31)])
def test_paho_qos2_across_versions(broker, clients, pub_proto, sub_proto):
    sub = clients.paho(broker, client_id="ps-%d" % sub_proto, protocol=sub_proto)
    sub.connect()
    assert sub.subscribe("pq/+", 2) == [2]
    pub = clients.paho(broker, client_id="pp-%d" % pub_proto, protocol=pub_proto)
    pub.connect()
    for q in (0, 1, 2):
        pub.publish("pq/%d" % q, b"qos %d" % q, qos=q)
    got = [sub.get_message() for _ in range(3)]
    assert sorted((g.topic, g.payload, g.qos) for g in got) == [
        ("pq/0", b"qos 0", 0), ("pq/1", b"qos 1", 1), ("pq/2", b"qos 2", 2)]
    # exactly once: no second copy of the QoS 2 message (bounded wait)
    sub.expect_no_message(0.5)


def test_v311_mqtt_4_5_0_1_fan_out_to_all_client_kinds(broker, clients):
    raw = clients.raw(broker)
    raw.handshake("fan-raw")
    raw.subscribe([("fo/#", 1)])
    ph = clients.paho(broker, client_id="fan-paho")
    ph.connect()
    ph.subscribe("fo/+", 1)
    ms = clients.sub(broker, "-t", "fo/t", "-q", "1", "-C", "1", "-W", "10")
    ms.wait_subscribed()
    v31 = clients.raw(broker)
    v31.handshake("fan-v31", version=3)
    v31.subscribe([("fo/t", 1)])
    clients.pub(broker, "-t", "fo/t", "-m", "to everyone", "-q", "1")
    # [MQTT-4.5.0-1] 3.1.1: every matching subscription gets the message
    assert raw.expect_publish().payload == b"to everyone"
    assert ph.get_message().payload == b"to everyone"
    assert ms.get_message()[:2] == ("fo/t", "to everyone")
    assert v31.expect_publish().payload == b"to everyone"
    assert ms.wait() == 0


def test_large_payload_roundtrip(start_broker, clients):
    broker = start_broker(MQD_MQTT_MAX_PACKET_SIZE=4 * 1024 * 1024)
    sub = clients.raw(broker)
    sub.handshake("big-sub")
    sub.subscribe([("big/t", 2)])
    pub = clients.paho(broker, client_id="big-pub")
    pub.connect()
    payload = bytes(range(256)) * 1024          # 256 KiB: 3-byte Remaining Length
    pub.publish("big/t", payload, qos=2)
    p = sub.expect_publish(timeout=10)
    assert p.payload == payload


def test_many_clients(broker, clients):
    n = 50
    subs = []
    for i in range(n):
        c = clients.raw(broker)
        c.handshake("many%d" % i)
        c.subscribe([("many/all", 1), ("many/%d" % i, 1)])
        subs.append(c)
    pub = clients.raw(broker)
    pub.handshake("many-pub")
    pub.publish("many/all", b"broadcast", qos=1)
    for i in range(0, n, 7):
        pub.publish("many/%d" % i, b"direct %d" % i, qos=1)
    for i, c in enumerate(subs):
        assert c.expect_publish(timeout=10).payload == b"broadcast"
        if i % 7 == 0:
            assert c.expect_publish().payload == b"direct %d" % i


def test_slow_reader_memory_bounded(start_broker, clients):
    # A subscriber that never reads while 200 MB of QoS 0 are published to
    # it: mqd keeps at most MQD_MQTT_MAX_QUEUED messages per session (QoS 0
    # dropped first), so its VmRSS stays bounded and other clients are
    # served throughout.
    # Under AddressSanitizer freed memory sits in a quarantine (256 MB by
    # default) before reuse, which would count against VmRSS: keep it small
    # for this broker. Other binaries ignore ASAN_OPTIONS.
    asan = os.environ.get("ASAN_OPTIONS", "")
    asan = (asan + ":" if asan else "") + "quarantine_size_mb=8"
    b = start_broker(proc_env={"ASAN_OPTIONS": asan}, MQD_MQTT_MAX_QUEUED=100)
    rss_limit_kb = 200 * 1024
    slow = clients.raw(b, rcvbuf=4096)
    slow.handshake("slow", keepalive=0)
    slow.subscribe([("flood/#", 0)])
    # from here on `slow` never reads its socket

    other_sub = clients.raw(b)
    other_sub.handshake("other-sub", keepalive=0)
    other_sub.subscribe([("other/t", 1)])
    other_pub = clients.raw(b)
    other_pub.handshake("other-pub", keepalive=0)

    flood = clients.raw(b)
    flood.handshake("flooder", keepalive=0)
    chunk = m.publish("flood/t", b"\xab" * (64 * 1024 - 20))   # about 64 KiB
    total = 200 * 1024 * 1024
    count = total // len(chunk)
    flood.sock.settimeout(30)       # a send that stalls 30 s fails the test
    deadline = time.monotonic() + 90
    peak = 0
    for i in range(count):
        flood.sock.sendall(chunk)
        if i % 200 == 0:
            assert time.monotonic() < deadline, "flood too slow (%d of %d sent)" % (i, count)
            b.assert_alive()
            peak = max(peak, b.rss_kb())
            # another client is served meanwhile
            other_pub.publish("other/t", b"%d" % i, qos=1, timeout=10)
            assert other_sub.expect_publish(timeout=10).payload == b"%d" % i
    # the flooder itself is still served (its PINGREQ waits behind its own
    # PUBLISHes in the broker's input)
    flood.ping(timeout=30)
    peak = max(peak, b.rss_kb())
    print("broker VmRSS peak %d kB" % peak)
    assert peak < rss_limit_kb, "broker VmRSS peaked at %d kB" % peak
    other_pub.publish("other/t", b"end", qos=1)
    assert other_sub.expect_publish().payload == b"end"
    slow.close()


def test_client_vanishing_mid_packet_others_served(broker, clients):
    sub = clients.raw(broker)
    sub.handshake("vm-sub")
    sub.subscribe([("vm/t", 1)])
    pub = clients.paho(broker, client_id="vm-pub")
    pub.connect()
    for i in range(5):
        s = socket.create_connection((broker.host, broker.port))
        s.sendall(m.connect("vanish%d" % i) + m.publish("vm/t", b"x" * 5000, qos=1, pid=1)[:2000])
        s.close()
        pub.publish("vm/t", b"still here %d" % i, qos=1)
        assert sub.expect_publish().payload == b"still here %d" % i


def test_sigterm_closes_connections_and_exits_0(broker, clients):
    raw = clients.raw(broker)
    raw.handshake("term-raw")
    ph = clients.paho(broker, client_id="term-paho")
    ph.connect()
    # SIGTERM (by PID): connections are closed and the exit status is 0 (the
    # fixture's teardown checks the status and the sanitizer markers again)
    assert broker.stop() == 0
    raw.expect_closed()
    assert ph.disconnected.wait(10)


def test_logs_go_to_stderr(broker, clients):
    c = clients.raw(broker)
    c.handshake("log-me-7f3a")
    # one line per event on stderr: the connection shows up with its client
    # id (polled with a deadline; the broker writes asynchronously to us)
    deadline = time.monotonic() + 5
    while "log-me-7f3a" not in broker.log_text():
        assert time.monotonic() < deadline, "client id not in the broker's stderr"
        c.ping()        # an event-paced poll: one round trip per check
