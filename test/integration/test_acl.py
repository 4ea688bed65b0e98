"""Topic permissions ([auth] acl_file): a PUBLISH the client may not make
is dropped ([MQTT-3.3.5-2]: MQTT 5 answers PUBACK/PUBREC 0x87, 3.1.1
acknowledges it as usual), a SUBSCRIBE to a filter no rule covers gets
0x87 (3.1.1: 0x80), a will the client may not publish refuses the
CONNECT, and a bad rules file stops the start with its file and line."""

import pytest

import mqtt_raw as m
import mqtt5_raw as m5

pytestmark = pytest.mark.skipif(
    __import__("os").environ.get("MQD_TEST_BROKER", "mqd") != "mqd",
    reason="mqd-specific: the rules file format")

RULES = """# who   access  filter
alice   pub     cmd/alice/#
alice   sub     cmd/#
watcher sub     #
*       pubsub  lobby/+
"""


@pytest.fixture
def acl_broker(start_broker, tmp_path):
    path = tmp_path / "acl"
    path.write_text(RULES)
    return start_broker(auth_acl_file=str(path))


def _watcher(clients, b):
    w = clients.raw(b)
    w.handshake("watcher-1", username="watcher")
    assert w.subscribe([("#", 1)]) == [1]
    return w


def test_v5_mqtt_3_3_5_2_publish_not_permitted_0x87(acl_broker, clients):
    w = _watcher(clients, acl_broker)
    a = m5.client(clients, acl_broker)
    a.handshake("alice-5", username="alice")
    assert a.publish("cmd/alice/on", b"ok", qos=1).rc == 0
    assert a.publish("cmd/bob/on", b"no", qos=1).rc == 0x87
    assert a.publish("cmd/bob/on", b"no", qos=2).rc == 0x87
    a.publish("cmd/bob/on", b"no", qos=0)
    assert a.publish("lobby/x", b"ok", qos=1).rc == 0   # "*" rule
    got = [w.expect_publish().payload for _ in range(2)]
    assert got == [b"ok", b"ok"]
    # nothing of the refused ones reached the watcher
    w.expect_marker(a, "lobby/marker")


def test_v311_mqtt_3_3_5_2_publish_not_permitted_acked_and_dropped(
        acl_broker, clients):
    w = _watcher(clients, acl_broker)
    a = clients.raw(acl_broker)
    a.handshake("alice-3", username="alice")
    # 3.1.1 has no refusal code: acknowledged as usual (QoS 1 and the
    # whole QoS 2 flow), not delivered
    a.publish("cmd/bob/on", b"no", qos=1)
    a.publish("cmd/bob/on", b"no", qos=2)
    a.publish("cmd/alice/on", b"ok", qos=1)
    assert w.expect_publish().payload == b"ok"
    w.expect_marker(a, "lobby/marker")


def test_subscribe_only_within_the_rules(acl_broker, clients):
    a = m5.client(clients, acl_broker)
    a.handshake("alice-s5", username="alice")
    assert a.subscribe([("cmd/+/on", 1), ("#", 1), ("cmd/#", 0),
                        ("$share/g/cmd/x", 1), ("other/x", 0)]) == \
        [1, 0x87, 0, 1, 0x87]
    anon = clients.raw(acl_broker)
    anon.handshake("anon-s3")
    # 3.1.1: 0x80 (failure); "*" rules hold for clients without a name
    assert anon.subscribe([("cmd/#", 1), ("lobby/+", 1), ("lobby/#", 1)]) \
        == [0x80, 1, 0x80]


def test_will_not_permitted_refuses_the_connect(acl_broker, clients):
    c5 = m5.client(clients, acl_broker)
    c5.send(m5.connect("alice-w5", username="alice",
                       will=dict(topic="cmd/bob/gone", payload=b"x")))
    got = c5.expect_closed()
    assert [(p.type, p.rc) for p in got] == [(m5.CONNACK, 0x87)]
    c3 = clients.raw(acl_broker)
    c3.send(m.connect("alice-w3", username="alice",
                      will=dict(topic="cmd/bob/gone", payload=b"x")))
    got = c3.expect_closed()
    assert [(p.type, p.rc) for p in got] == [(m.CONNACK, 0x05)]
    # a will it may publish is fine
    ok = m5.client(clients, acl_broker)
    ok.handshake("alice-w5b", username="alice",
                 will=dict(topic="cmd/alice/gone", payload=b"x"))


def test_bad_rules_file_stops_the_start(start_broker, tmp_path):
    path = tmp_path / "acl"
    path.write_text("alice pub cmd/#\nbob write x\n")
    b = start_broker(auth_acl_file=str(path), expect_exit=True)
    assert b.status != 0
    b.wait_log(r'cannot load topic permissions err=".*/acl:2: access '
               r'"write" is not pub, sub or pubsub"', 10)
