"""SUBSCRIBE / SUBACK, UNSUBSCRIBE / UNSUBACK, topic filter matching, the
$-rule and overlapping subscriptions."""

import mqtt_raw as m

# Bounded negative waits ("nothing arrives") last this long.
QUIET = 0.5


def _client(broker, clients, cid):
    c = clients.raw(broker)
    c.handshake(cid)
    return c


def test_v311_mqtt_3_8_4_1_suback_per_subscribe(broker, clients):
    c = _client(broker, clients, "sa")
    c.send(m.subscribe(0x4242, [("sa/a", 0), ("sa/b", 1), ("sa/c", 2), ("sa/+/d", 1)]))
    ack = c.expect(m.SUBACK)
    # [MQTT-3.8.4-1] 3.1.1: a SUBACK; [MQTT-3.8.4-2] 3.1.1 and
    # [MQTT-2.3.1-7] 3.1.1: with the SUBSCRIBE's Packet Identifier
    assert ack.pid == 0x4242
    # [MQTT-3.8.4-4] 3.1.1: several filters -> one SUBACK;
    # [MQTT-3.8.4-5] 3.1.1: one return code per filter;
    # [MQTT-3.9.3-1] 3.1.1: in the order of the filters;
    # [MQTT-3.9.3-2] 3.1.1: only 0x00, 0x01, 0x02, 0x80
    assert ack.codes == [0, 1, 2, 1]
    # each filter acts as if subscribed on its own ([MQTT-3.8.4-4] 3.1.1)
    pub = _client(broker, clients, "sa-pub")
    for topic, qos in (("sa/a", 0), ("sa/b", 1), ("sa/c", 2), ("sa/x/d", 1)):
        pub.publish(topic, b"v", qos=2)
        p = c.expect_publish()
        assert (p.topic, p.qos) == (topic.encode(), qos)


def test_v311_invalid_filters_get_suback_0x80(broker, clients):
    c = _client(broker, clients, "inv")
    filters = [
        ("ok/1", 1),
        ("a/#/b", 0),    # [MQTT-4.7.1-2] 3.1.1: '#' not last
        ("a/b#", 0),     # [MQTT-4.7.1-2] 3.1.1: '#' not a whole level
        ("#a", 0),       # [MQTT-4.7.1-2] 3.1.1
        ("a+/b", 0),     # [MQTT-4.7.1-3] 3.1.1: '+' not a whole level
        ("a/+b", 0),     # [MQTT-4.7.1-3] 3.1.1
        ("+x", 0),       # [MQTT-4.7.1-3] 3.1.1
        ("ok/2", 2),
    ]
    codes = c.subscribe(filters)
    # mqd policy for invalid filters (§4.7 3.1.1): return code 0x80 for that
    # entry, the others are granted ([MQTT-3.8.4-5] 3.1.1, [MQTT-3.9.3-1] 3.1.1)
    assert codes == [1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 2]
    # the connection stays usable and the valid entries work
    pub = _client(broker, clients, "inv-pub")
    pub.publish("ok/2", b"y", qos=2)
    p = c.expect_publish()
    assert (p.topic, p.qos) == (b"ok/2", 2)


def test_v311_mqtt_4_7_3_1_empty_filter_refused(broker, clients):
    c = _client(broker, clients, "empty-f")
    # [MQTT-4.7.3-1] 3.1.1: a zero-length Topic Filter is invalid; mqd's
    # invalid-filter policy answers 0x80 for that entry
    assert c.subscribe([("", 0), ("ok/e", 0)]) == [0x80, 0]


def test_v311_wildcard_filters_granted(broker, clients):
    # mqd supports wildcards: wildcard filters are granted, not refused
    c = _client(broker, clients, "wcs")
    assert c.subscribe([("w/+", 1), ("w/#", 2), ("#", 0), ("+", 1)]) == [1, 2, 0, 1]


MATCH_CASES = [
    # filter, topic, matches?   (§4.7.1 examples of 3.1.1 and 5.0)
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/#", "sport", True),
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("#", "any/thing/at/all", True),
    ("+/tennis/#", "sport/tennis/x", True),
    ("Sport/#", "sport/x", False),            # case sensitive
    ("with space/+", "with space/ok", True),  # spaces are ordinary characters
    ("a//b", "a//b", True),                   # empty levels
    ("a/+/b", "a//b", True),
]


def test_v311_mqtt_3_3_2_3_topic_matching(broker, clients):
    pub = _client(broker, clients, "mt-pub")
    for i, (flt, topic, should) in enumerate(MATCH_CASES):
        c = _client(broker, clients, "mt%d" % i)
        mark = "mtmark/%d" % i
        c.subscribe([(flt, 0), (mark, 0)])
        pub.publish(topic, b"case%d" % i, qos=1)
        if should:
            p = c.expect_publish()
            # [MQTT-3.3.2-3] 3.1.1: the topic sent matches the filter (and is
            # the publisher's Topic Name)
            assert (p.topic, p.payload) == (topic.encode(), b"case%d" % i), (flt, topic)
        # no (other) copy before the marker
        c.expect_marker(pub, mark)
        c.disconnect()


def test_v311_mqtt_4_7_3_4_byte_for_byte_matching(broker, clients):
    c = _client(broker, clients, "bfb")
    # precomposed U+00E9 in the filter
    c.subscribe([("caf\u00e9/x", 0), ("bfb/mark", 0)])
    pub = _client(broker, clients, "bfb-pub")
    # [MQTT-4.7.3-4] 3.1.1: no normalisation: "e" + U+0301 does not match
    # "\u00e9", and no case folding
    pub.publish("cafe\u0301/x", b"decomposed", qos=1)
    pub.publish("CAF\u00c9/x", b"upper", qos=1)
    pub.publish("caf\u00e9/x", b"exact", qos=1)
    p = c.expect_publish()
    assert (p.topic, p.payload) == ("caf\u00e9/x".encode(), b"exact")
    c.expect_marker(pub, "bfb/mark")


def test_v311_mqtt_1_5_3_3_bom_not_stripped(broker, clients):
    c = _client(broker, clients, "bom")
    c.subscribe([("a/\ufeffb", 1), ("bom/mark", 0)])
    pub = _client(broker, clients, "bom-pub")
    # [MQTT-1.5.3-3] 3.1.1: 0xEF 0xBB 0xBF is U+FEFF, a character like any
    # other: never skipped or stripped
    pub.publish("a/b", b"plain", qos=1)
    pub.publish("a/\ufeffb", b"bom", qos=1)
    p = c.expect_publish()
    assert (p.topic, p.payload) == (b"a/\xef\xbb\xbfb", b"bom")
    c.expect_marker(pub, "bom/mark")


def test_v311_mqtt_4_7_2_1_dollar_topics_not_matched_by_wildcards(broker, clients):
    watcher = _client(broker, clients, "dollar-w")
    watcher.subscribe([("#", 0), ("+/x", 0), ("+/#", 0), ("+", 0)])
    pub = _client(broker, clients, "dollar-p")
    pub.publish("$test/x", b"dollar", qos=1)
    # [MQTT-4.7.2-1] 3.1.1: filters starting with a wildcard do not match
    # topic names starting with '$': the next message is the marker (which
    # matches all four filters but is delivered once, see
    # test_v311_mqtt_3_3_5_1_overlapping_subscriptions_one_copy)
    pub.publish("dm/x", b"marker", qos=1)
    p = watcher.expect_publish()
    assert (p.topic, p.payload) == (b"dm/x", b"marker")


def test_v311_dollar_topic_explicit_filter_matches(broker, clients):
    c = _client(broker, clients, "dollar-e")
    c.subscribe([("$test/#", 1)])
    pub = _client(broker, clients, "dollar-ep")
    pub.publish("$test/y", b"d", qos=1)
    # a filter that starts with '$' matches it (§4.7.2)
    p = c.expect_publish()
    assert p.topic == b"$test/y"


def test_v311_mqtt_3_3_5_1_overlapping_subscriptions_one_copy(broker, clients):
    c = _client(broker, clients, "ovl")
    assert c.subscribe([("ovl/#", 0), ("ovl/+", 1), ("ovl/t", 2)]) == [0, 1, 2]
    pub = _client(broker, clients, "ovl-pub")
    pub.publish("ovl/t", b"once", qos=2)
    # [MQTT-3.3.5-1] 3.1.1: delivered at the highest QoS of the matching
    # subscriptions; mqd sends a single copy
    p = c.expect_publish()
    assert (p.payload, p.qos) == (b"once", 2)
    c.expect_nothing(QUIET)   # bounded: no second copy


def test_v311_mqtt_3_8_4_3_resubscribe_replaces(broker, clients):
    c = _client(broker, clients, "resub")
    assert c.subscribe([("rs/t", 2)]) == [2]
    assert c.subscribe([("rs/t", 0)]) == [0]
    pub = _client(broker, clients, "resub-pub")
    pub.publish("rs/t", b"r", qos=2)
    # [MQTT-3.8.4-3] 3.1.1: the new subscription replaced the old one: one
    # copy, at the new maximum QoS 0
    p = c.expect_publish()
    assert (p.payload, p.qos) == (b"r", 0)
    c.expect_nothing(QUIET)   # bounded: no second copy


def test_v311_mqtt_3_10_4_4_unsuback(broker, clients):
    c = _client(broker, clients, "uns")
    c.subscribe([("u/a", 1)])
    c.send(m.unsubscribe(0x0A0B, ["u/a"]))
    ack = c.expect(m.UNSUBACK)
    # [MQTT-3.10.4-4] 3.1.1 and [MQTT-3.10.4-5] 3.1.1: UNSUBACK with the
    # same Packet Identifier ([MQTT-2.3.1-7] 3.1.1)
    assert ack.pid == 0x0A0B
    # [MQTT-3.10.4-5] 3.1.1: sent even when nothing matched
    c.send(m.unsubscribe(0x0A0C, ["never/subscribed"]))
    assert c.expect(m.UNSUBACK).pid == 0x0A0C


def test_v311_mqtt_3_10_4_2_no_messages_after_unsubscribe(broker, clients):
    c = _client(broker, clients, "unsm")
    c.subscribe([("um/t", 1), ("um/mark", 0)])
    pub = _client(broker, clients, "unsm-pub")
    pub.publish("um/t", b"before", qos=1)
    assert c.expect_publish().payload == b"before"
    c.unsubscribe("um/t")
    pub.publish("um/t", b"after", qos=1)
    # [MQTT-3.10.4-2] 3.1.1: nothing more for the removed filter
    c.expect_marker(pub, "um/mark")


def test_v311_mqtt_3_10_4_1_unsubscribe_exact_filter_only(broker, clients):
    c = _client(broker, clients, "unsx")
    c.subscribe([("ux/+", 1), ("ux/t", 1), ("ux/mark", 0)])
    pub = _client(broker, clients, "unsx-pub")
    # [MQTT-3.10.4-1] 3.1.1: filters are compared byte for byte, wildcards
    # taken literally: "ux/#" and "ux/t/" remove nothing; "ux/+" removes only
    # "ux/+"
    c.unsubscribe(["ux/#", "ux/t/"])
    c.unsubscribe("ux/+")
    pub.publish("ux/t", b"still", qos=1)
    p = c.expect_publish()
    assert (p.topic, p.payload) == (b"ux/t", b"still")
    pub.publish("ux/other", b"gone", qos=1)     # matched only "ux/+"
    c.expect_marker(pub, "ux/mark")


def test_v311_mqtt_3_10_4_6_unsubscribe_several_filters(broker, clients):
    c = _client(broker, clients, "unsmany")
    c.subscribe([("um2/a", 0), ("um2/b", 0), ("um2/c", 0), ("um2/mark", 0)])
    c.send(m.unsubscribe(77, ["um2/a", "um2/c", "um2/none"]))
    # [MQTT-3.10.4-6] 3.1.1: one UNSUBACK for several filters
    assert c.expect(m.UNSUBACK).pid == 77
    pub = _client(broker, clients, "unsmany-pub")
    for t in ("um2/a", "um2/b", "um2/c"):
        pub.publish(t, t.encode(), qos=1)
    # each filter handled as its own UNSUBSCRIBE: only um2/b is left
    assert c.expect_publish().topic == b"um2/b"
    c.expect_marker(pub, "um2/mark")


def test_v311_mqtt_3_10_4_3_inflight_qos2_completes_after_unsubscribe(broker, clients):
    c = _client(broker, clients, "unsq2")
    c.subscribe([("uq/t", 2)])
    pub = _client(broker, clients, "unsq2-pub")
    pub.publish("uq/t", b"in flight", qos=2)
    p = c.expect(m.PUBLISH)
    assert p.qos == 2
    c.unsubscribe("uq/t")
    # [MQTT-3.10.4-3] 3.1.1: a QoS 2 delivery already started is finished
    c.send(m.pubrec(p.pid))
    rel = c.expect(m.PUBREL)
    assert rel.pid == p.pid
    c.send(m.pubcomp(p.pid))
    c.ping()


def test_v311_mqtt_4_5_0_1_every_matching_subscriber_gets_it(broker, clients):
    subs = []
    for i, flt in enumerate(["fan/t", "fan/+", "fan/#", "#"]):
        s = _client(broker, clients, "fan%d" % i)
        s.subscribe([(flt, 1)])
        subs.append(s)
    pub = _client(broker, clients, "fan-pub")
    pub.publish("fan/t", b"all", qos=1)
    # [MQTT-4.5.0-1] 3.1.1: added to the session of every client with a
    # matching subscription
    for s in subs:
        assert s.expect_publish().payload == b"all"
