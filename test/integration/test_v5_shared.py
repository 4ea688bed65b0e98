"""Shared subscriptions ($share/{name}/{filter}): one member of a group gets
each message, round robin; invalid share names are refused; no retained
messages on joining; No Local on a shared subscription is a Protocol Error;
a member that leaves stops getting messages and the group goes with its
last member. MQTT 5.0 section 4.8.2 (also offered to 3.1.1 clients)."""

import mqtt_raw as m
import mqtt5_raw as m5


def _c5(clients, broker, cid):
    c = m5.client(clients, broker)
    c.handshake(cid)
    return c


def test_v5_4_8_2_each_message_to_exactly_one_member(broker, clients):
    a = _c5(clients, broker, "sh-a")
    b = _c5(clients, broker, "sh-b")
    assert a.subscribe([("$share/g/sh/t", 1)]) == [1]
    assert b.subscribe([("$share/g/sh/t", 1)]) == [1]
    p = _c5(clients, broker, "sh-p")
    for i in range(10):
        p.publish("sh/t", b"%d" % i, qos=1)
    # §4.8.2 v5: each message to exactly one member; with both members
    # ready, round robin gives each of them five
    got_a = [a.expect_publish().payload for _ in range(5)]
    got_b = [b.expect_publish().payload for _ in range(5)]
    assert sorted(got_a + got_b) == sorted(b"%d" % i for i in range(10))
    # nothing more for either: a marker on a plain subscription proves it
    a.subscribe([("sh/mark-a", 1)])
    b.subscribe([("sh/mark-b", 1)])
    a.expect_marker(p, "sh/mark-a")
    b.expect_marker(p, "sh/mark-b")


def test_v5_mqtt_4_8_2_3_member_gets_its_own_granted_qos(broker, clients):
    a = _c5(clients, broker, "shq-a")
    assert a.subscribe([("$share/q/shq/t", 0)]) == [0]
    p = _c5(clients, broker, "shq-p")
    p.publish("shq/t", b"x", qos=2)
    # [MQTT-4.8.2-3] v5: delivered at the member's granted QoS
    pkt = a.expect_publish()
    assert (pkt.topic, pkt.qos) == (b"shq/t", 0)


def test_v5_mqtt_4_8_2_1_and_2_invalid_share_names_refused(broker, clients):
    c = _c5(clients, broker, "shbad")
    # [MQTT-4.8.2-1] v5: empty ShareName; [MQTT-4.8.2-2] v5: wildcard in
    # the name, or no filter after the name -> 0x8F for that filter alone
    codes = c.subscribe([("$share//a", 0), ("$share/a+b/c", 0),
                         ("$share/a#/c", 0), ("$share/name", 0),
                         ("$share/name/", 0), ("$share/ok/a/#", 1)])
    assert codes == [0x8F, 0x8F, 0x8F, 0x8F, 0x8F, 1]


def test_v5_3_8_4_no_retained_on_joining_a_share(broker, clients):
    p = _c5(clients, broker, "shr-p")
    p.publish("shr/t", b"kept", qos=1, retain=True)
    c = _c5(clients, broker, "shr-c")
    # §3.8.4 / §4.8.2 v5: a shared filter gets no retained messages
    assert c.subscribe([("$share/r/shr/t", 1), ("shr/mark", 1)]) == [1, 1]
    c.expect_marker(p, "shr/mark")


def test_v5_mqtt_3_8_3_4_no_local_on_share_is_protocol_error(broker, clients):
    c = _c5(clients, broker, "shnl")
    c.send(m5.subscribe(1, [("$share/g/x", m5.sub_options(1, no_local=True))]))
    # [MQTT-3.8.3-4] v5: Protocol Error -> DISCONNECT 0x82
    c.expect_disconnect(0x82)


def test_v5_4_8_2_unsubscribe_leaves_group(broker, clients):
    a = _c5(clients, broker, "shu-a")
    b = _c5(clients, broker, "shu-b")
    a.subscribe([("$share/u/shu/t", 1), ("shu/mark", 1)])
    b.subscribe([("$share/u/shu/t", 1)])
    # re-subscribing does not make b a member twice
    b.subscribe([("$share/u/shu/t", 1)])
    # §3.10.4 v5: UNSUBSCRIBE of the $share filter detaches the session
    assert b.unsubscribe(["$share/u/shu/t"]) == [0]
    p = _c5(clients, broker, "shu-p")
    for i in range(4):
        p.publish("shu/t", b"%d" % i, qos=1)
    assert [a.expect_publish().payload for _ in range(4)] == \
        [b"0", b"1", b"2", b"3"]
    # §4.8.2 v5: the group goes away with its last member
    assert a.unsubscribe(["$share/u/shu/t"]) == [0]
    assert p.publish("shu/t", b"gone", qos=1).rc == m5.NO_MATCHING_SUBSCRIBERS
    a.expect_marker(p, "shu/mark")


def test_v5_4_8_2_busy_member_skipped(start_broker, clients):
    broker = start_broker(mqtt_max_inflight=1)
    a = _c5(clients, broker, "shw-a")
    b = _c5(clients, broker, "shw-b")
    a.subscribe([("$share/w/shw/t", 1)])
    b.subscribe([("$share/w/shw/t", 1)])
    p = _c5(clients, broker, "shw-p")
    p.publish("shw/t", b"0", qos=1)
    p.publish("shw/t", b"1", qos=1)
    first_a = a.expect_publish(ack=False)   # a holds its PUBACK: window full
    first_b = b.expect_publish(ack=False)   # so does b
    assert {first_a.payload, first_b.payload} == {b"0", b"1"}
    b.ack(first_b)                          # b is free again, a is not
    b.ping()  # PINGRESP: the broker has handled b's PUBACK (same stream)
    p.publish("shw/t", b"2", qos=1)
    # a member whose window is full is skipped while another can take it
    assert b.expect_publish().payload == b"2"
    a.ack(first_a)


def test_v311_share_offered_to_v3_clients(broker, clients):
    a = clients.raw(broker)
    a.handshake("sh3-a")
    assert a.subscribe([("$share/v3/sh3/t", 1)]) == [1]
    assert a.subscribe([("$share//bad", 1)]) == [0x80]
    p = clients.raw(broker)
    p.handshake("sh3-p")
    p.publish("sh3/t", b"v3", qos=1)
    pkt = a.expect_publish()
    assert (pkt.topic, pkt.payload) == (b"sh3/t", b"v3")
