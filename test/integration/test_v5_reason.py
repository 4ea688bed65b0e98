"""Reason Strings: sent where they help (refused acks, server DISCONNECT,
refused CONNACK), never on other packets once the client set Request
Problem Information to 0, and left out when they would push a packet over
the client's Maximum Packet Size. MQTT 5.0 sections 3.1.2.11.7, 3.4.2.2.2."""

import mqtt5_raw as m5


def _c5(clients, broker, cid, **kw):
    c = m5.client(clients, broker)
    c.handshake(cid, **kw)
    return c


def test_v5_reason_string_on_refused_acks(broker, clients):
    c = _c5(clients, broker, "rs-a")
    ack = c.publish("rs/none", b"x", qos=1)
    assert ack.rc == m5.NO_MATCHING_SUBSCRIBERS
    assert ack.props.get(m5.REASON_STRING) == b"no matching subscribers"
    sub = c.subscribe_ack([("rs/a+", 0)])
    assert sub.codes == [m5.TOPIC_FILTER_INVALID]
    assert sub.props.get(m5.REASON_STRING) == b"invalid topic filter"


def test_v5_mqtt_3_1_2_29_no_reason_string_when_problem_info_0(broker, clients):
    c = _c5(clients, broker, "rs-0", props={m5.REQUEST_PROBLEM_INFORMATION: 0})
    ack = c.publish("rs/none", b"x", qos=1)
    # [MQTT-3.1.2-29] v5: no Reason String on a PUBACK then
    assert ack.rc == m5.NO_MATCHING_SUBSCRIBERS
    assert not ack.props.has(m5.REASON_STRING)
    sub = c.subscribe_ack([("rs/a+", 0)])
    assert not sub.props.has(m5.REASON_STRING)
    # ... but a DISCONNECT may still carry one
    c.send(m5.connect("rs-0"))
    got = c.expect_closed()
    assert got and got[-1].type == m5.DISCONNECT and got[-1].rc == 0x82
    assert got[-1].props.get(m5.REASON_STRING) == b"second CONNECT"


def test_v5_mqtt_3_1_2_25_reason_string_dropped_to_fit_max_packet(broker, clients):
    c = _c5(clients, broker, "rs-max", props={m5.MAXIMUM_PACKET_SIZE: 8})
    c.send(m5.connect("rs-max"))
    got = c.expect_closed()
    # [MQTT-3.1.2-25] v5: the DISCONNECT fits in 8 bytes only without its
    # Reason String, so it comes without one
    assert got and got[-1].type == m5.DISCONNECT and got[-1].rc == 0x82
    assert not got[-1].props.has(m5.REASON_STRING)
    assert len(got[-1].raw) <= 8
