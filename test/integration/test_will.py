"""Will messages: published on keepalive timeout, network close and protocol
violation; never after DISCONNECT or without the Will Flag; Will Retain and
Will QoS honoured."""

import socket

import pytest

import mqtt_raw as m

# Bounded negative waits ("nothing arrives") last this long.
QUIET = 0.5


def _watcher(broker, clients, flt="will/#", qos=2, cid="will-watch"):
    w = clients.raw(broker)
    w.handshake(cid)
    w.subscribe([(flt, qos), ("wmark/#", 0)])
    return w


def _marker_client(broker, clients):
    c = clients.raw(broker)
    c.handshake("will-marker")
    return c


def test_v311_mqtt_3_1_2_8_will_on_network_close(broker, clients):
    w = _watcher(broker, clients)
    c = clients.raw(broker)
    c.handshake("dies", will={"topic": "will/dies", "payload": b"gone", "qos": 1})
    c.abort()
    # [MQTT-3.1.2-8] 3.1.1: connection closed without DISCONNECT -> Will
    p = w.expect_publish()
    assert (p.topic, p.payload, p.qos, p.retain) == (b"will/dies", b"gone", 1, False)


def test_v311_mqtt_3_1_2_8_will_on_half_close(broker, clients):
    # an orderly TCP close (FIN) without DISCONNECT is still not a normal
    # disconnect
    w = _watcher(broker, clients)
    c = clients.raw(broker)
    c.handshake("fin", will={"topic": "will/fin", "payload": b"fin"})
    c.sock.shutdown(socket.SHUT_WR)
    c.expect_closed()
    # [MQTT-3.1.2-8] 3.1.1
    assert w.expect_publish().payload == b"fin"


def test_v311_mqtt_3_1_2_24_will_on_keepalive_timeout(broker, clients):
    w = _watcher(broker, clients)
    c = clients.raw(broker)
    c.handshake("sleeper", keepalive=1,
                will={"topic": "will/sleeper", "payload": b"timeout", "qos": 1})
    # [MQTT-3.1.2-24] 3.1.1: silent for 1.5 x keepalive -> closed as if the
    # network failed, so [MQTT-3.1.2-8] 3.1.1 the Will is published
    c.expect_closed(timeout=1.5 + broker.keepalive_grace)
    p = w.expect_publish()
    assert (p.topic, p.payload) == (b"will/sleeper", b"timeout")


@pytest.mark.parametrize("bad", [
    m.publish("bad/q3", b"x", flags=0x06, pid=1),     # [MQTT-3.3.1-4] 3.1.1
    m.subscribe(1, [("a", 0)], flags=0),              # [MQTT-3.8.1-1] 3.1.1
    m.connect("again"),                               # [MQTT-3.1.0-2] 3.1.1
    m.disconnect(flags=1),                            # [MQTT-3.14.1-1] 3.1.1
], ids=["publish_qos3", "subscribe_flags", "second_connect", "disconnect_flags"])
def test_v311_mqtt_4_8_0_1_will_on_protocol_violation(broker, clients, bad):
    w = _watcher(broker, clients)
    c = clients.raw(broker)
    c.handshake("violator", will={"topic": "will/violator", "payload": b"bad"})
    c.send(bad)
    # [MQTT-4.8.0-1] 3.1.1: closed; [MQTT-3.1.2-8] 3.1.1: the close was not
    # a DISCONNECT (an invalid DISCONNECT does not count), so the Will goes
    c.expect_closed()
    assert w.expect_publish().payload == b"bad"


def test_v311_mqtt_3_1_2_10_no_will_after_disconnect(broker, clients):
    w = _watcher(broker, clients)
    c = clients.raw(broker)
    c.handshake("polite", will={"topic": "will/polite", "payload": b"no"})
    c.send(m.disconnect())
    c.sock.shutdown(socket.SHUT_WR)
    c.expect_closed()
    # [MQTT-3.1.2-10] 3.1.1 and [MQTT-3.14.4-3] 3.1.1: DISCONNECT deletes the
    # Will unpublished: a marker sent after the close comes first, and
    # nothing follows it (bounded wait)
    w.expect_marker(_marker_client(broker, clients), "wmark/1")
    w.expect_nothing(QUIET)


def test_v311_mqtt_3_1_2_10_will_published_once(broker, clients):
    w = _watcher(broker, clients)
    c = clients.raw(broker)
    c.handshake("once", will={"topic": "will/once", "payload": b"1", "qos": 2})
    c.abort()
    assert w.expect_publish().payload == b"1"
    # [MQTT-3.1.2-10] 3.1.1: removed once published: no second copy when the
    # client id comes back and leaves again politely
    again = clients.raw(broker)
    again.handshake("once")
    again.disconnect()
    w.expect_marker(_marker_client(broker, clients), "wmark/2")


def test_v311_mqtt_3_1_2_12_no_will_flag_nothing_published(broker, clients):
    w = _watcher(broker, clients, flt="#", qos=0)
    c = clients.raw(broker)
    c.handshake("nowill")
    c.abort()
    # [MQTT-3.1.2-12] 3.1.1: no Will Flag -> nothing is published when the
    # connection ends (the next message on "#" is the marker; bounded wait
    # after it)
    w.expect_marker(_marker_client(broker, clients), "wmark/3")
    w.expect_nothing(QUIET)


def test_v311_mqtt_3_1_2_17_will_retain(broker, clients):
    w = _watcher(broker, clients)
    c = clients.raw(broker)
    c.handshake("retainer", will={"topic": "will/ret", "payload": b"kept",
                                  "qos": 1, "retain": True})
    c.abort()
    # an existing subscription gets it with RETAIN=0 ([MQTT-3.3.1-9] 3.1.1)
    p = w.expect_publish()
    assert (p.payload, p.retain) == (b"kept", False)
    # [MQTT-3.1.2-17] 3.1.1: Will Retain=1 -> published as a retained message
    late = clients.raw(broker)
    late.handshake("late")
    late.subscribe([("will/ret", 1)])
    p = late.expect_publish()
    assert (p.payload, p.retain, p.qos) == (b"kept", True, 1)


def test_v311_mqtt_3_1_2_16_will_not_retained(broker, clients):
    w = _watcher(broker, clients)
    c = clients.raw(broker)
    c.handshake("plainwill", will={"topic": "will/plain", "payload": b"p"})
    c.abort()
    assert w.expect_publish().payload == b"p"
    # [MQTT-3.1.2-16] 3.1.1: Will Retain=0 -> not retained
    late = clients.raw(broker)
    late.handshake("late2")
    late.subscribe([("will/plain", 0), ("wmark/#", 0)])
    late.expect_marker(_marker_client(broker, clients), "wmark/4")


@pytest.mark.parametrize("will_qos", [0, 1, 2])
def test_v311_will_qos_honoured(broker, clients, will_qos):
    w = _watcher(broker, clients, qos=2)
    low = _watcher(broker, clients, qos=1, cid="will-watch-q1")
    c = clients.raw(broker)
    c.handshake("wq%d" % will_qos, will={"topic": "will/q", "payload": b"q", "qos": will_qos})
    c.abort()
    # the Will goes out with its Will QoS (downgraded to the subscription's
    # maximum, [MQTT-3.8.4-6] 3.1.1)
    assert w.expect_publish().qos == will_qos
    assert low.expect_publish().qos == min(will_qos, 1)


def test_v31_will_on_network_close(broker, clients):
    w = _watcher(broker, clients)
    c = clients.raw(broker)
    c.handshake("v31dies", version=3,
                will={"topic": "will/v31", "payload": b"v31 gone", "qos": 2, "retain": False})
    c.abort()
    p = w.expect_publish()
    assert (p.topic, p.payload, p.qos) == (b"will/v31", b"v31 gone", 2)


def test_will_mosquitto_pub_killed(broker, clients):
    w = _watcher(broker, clients)
    w.subscribe([("alive/x", 0)])
    # mosquitto_pub -l publishes each stdin line; it stays connected between
    # lines
    p = clients.spawn_pub(broker, "-l", "-t", "alive/x", "-i", "mpkill",
                          "--will-topic", "will/mp", "--will-payload", "killed",
                          "--will-qos", "1")
    p.stdin.write("up\n")
    p.stdin.flush()
    # the line arriving proves the client is connected
    assert w.expect_publish(timeout=10).payload == b"up"
    p.kill()            # SIGKILL by PID: a client process this test started
    p.wait(10)
    # [MQTT-3.1.2-8] 3.1.1: a client that dies gets its Will published
    msg = w.expect_publish()
    assert (msg.topic, msg.payload, msg.qos) == (b"will/mp", b"killed", 1)


def test_will_paho_clean_disconnect_suppresses(broker, clients):
    w = _watcher(broker, clients)
    pc = clients.paho(broker, client_id="paho-will")
    pc.will_set("will/paho", b"paho will", qos=1)
    pc.connect()
    pc.disconnect()
    # [MQTT-3.14.4-3] 3.1.1: a DISCONNECT discards the Will
    w.expect_marker(_marker_client(broker, clients), "wmark/5")
