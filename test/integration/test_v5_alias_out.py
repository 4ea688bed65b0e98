"""Topic aliases the server sets towards an MQTT 5 client that allows them
(Topic Alias Maximum in its CONNECT): the first message on a topic carries
the topic and a new alias, later ones an empty topic and that alias, so a
repeated topic costs two bytes on the wire. MQTT 5.0 section 3.3.2.3.4."""

import mqtt5_raw as m5


def _c5(clients, broker, cid, **kw):
    c = m5.client(clients, broker)
    c.handshake(cid, **kw)
    return c


def test_v5_3_3_2_3_4_server_sets_aliases_within_client_maximum(broker, clients):
    s = _c5(clients, broker, "ao-s", props={m5.TOPIC_ALIAS_MAXIMUM: 2})
    s.subscribe([("ao/#", 0)])
    p = _c5(clients, broker, "ao-p")
    for topic in ["ao/a", "ao/a", "ao/b", "ao/c", "ao/b", "ao/c"]:
        p.publish(topic, topic.encode(), qos=1)
    got = [s.expect_publish() for _ in range(6)]
    aliases = [g.props.get(m5.TOPIC_ALIAS) for g in got]
    topics = [g.topic for g in got]
    # ao/a: set alias 1 with its topic, then the alias alone
    assert (topics[0], aliases[0]) == (b"ao/a", 1)
    assert (topics[1], aliases[1]) == (b"", 1)
    # ao/b: alias 2, the client's maximum [MQTT-3.3.2-11] v5: never above it
    assert (topics[2], aliases[2]) == (b"ao/b", 2)
    # ao/c: no alias left, so always the whole topic and no alias
    assert (topics[3], aliases[3]) == (b"ao/c", None)
    assert (topics[4], aliases[4]) == (b"", 2)
    assert (topics[5], aliases[5]) == (b"ao/c", None)
    # the payload tells which topic each message was on
    assert [g.payload for g in got] == [b"ao/a", b"ao/a", b"ao/b", b"ao/c",
                                        b"ao/b", b"ao/c"]


def test_v5_mqtt_3_3_2_11_no_alias_without_client_maximum(broker, clients):
    s = _c5(clients, broker, "ao0-s")       # no Topic Alias Maximum: 0
    s.subscribe([("ao0/t", 0)])
    p = _c5(clients, broker, "ao0-p")
    p.publish("ao0/t", b"1", qos=1)
    p.publish("ao0/t", b"2", qos=1)
    # [MQTT-3.3.2-11] v5: no Topic Alias to a client that allows none
    for want in (b"1", b"2"):
        g = s.expect_publish()
        assert (g.topic, g.payload, g.props.get(m5.TOPIC_ALIAS)) == \
            (b"ao0/t", want, None)


def test_v5_alias_not_spent_on_a_message_dropped_for_size(broker, clients):
    s = _c5(clients, broker, "aos-s",
            props={m5.TOPIC_ALIAS_MAXIMUM: 4, m5.MAXIMUM_PACKET_SIZE: 100})
    s.subscribe([("aos/t", 0)])
    p = _c5(clients, broker, "aos-p")
    p.publish("aos/t", b"x" * 500, qos=1)  # over the client's maximum
    p.publish("aos/t", b"small", qos=1)
    # the dropped message set no alias the client never saw: the next one
    # still carries the topic with the alias it sets
    g = s.expect_publish()
    assert (g.topic, g.payload, g.props.get(m5.TOPIC_ALIAS)) == \
        (b"aos/t", b"small", 1)
