"""MQTT 5.0 SUBSCRIBE / UNSUBSCRIBE: SUBACK and UNSUBACK reason codes,
subscription options (No Local, Retain As Published, Retain Handling) and
Subscription Identifiers."""

import pytest
from paho.mqtt.subscribeoptions import SubscribeOptions

import mqtt5_raw as m5

opts = m5.sub_options


def _c5(clients, broker, cid, **kw):
    c = m5.client(clients, broker)
    c.handshake(cid, **kw)
    return c


def _until_marker(c, marker_topic):
    """PUBLISHes received up to and including the one on marker_topic."""
    got = []
    while True:
        pk = c.expect_publish()
        got.append(pk)
        if pk.topic == marker_topic.encode():
            return got


# --------------------------------------------------------------------------
# SUBACK / UNSUBACK reason codes
# --------------------------------------------------------------------------

def test_v5_mqtt_3_8_4_7_suback_granted_qos(broker, clients):
    c = _c5(clients, broker, "suback")
    codes = c.subscribe([("g/0", opts(0)), ("g/1", opts(1)), ("g/2", opts(2))])
    # [MQTT-3.8.4-6] v5 one code per filter, [MQTT-3.9.3-1] v5 in order,
    # [MQTT-3.8.4-7] v5 the granted QoS
    assert codes == [m5.SUCCESS, m5.GRANTED_QOS1, m5.GRANTED_QOS2]


@pytest.mark.parametrize("flt", ["a/#/b", "a+", "a/b#", "+x/y", "#/"])
def test_v5_4_7_invalid_filter_suback_0x8f(broker, clients, flt):
    broker.require_mqd("mosquitto closes the connection for an invalid filter")
    c = _c5(clients, broker, "bad-filter")
    # §4.7 v5 ([MQTT-4.7.1-1] v5, [MQTT-4.7.1-2] v5): mqd refuses an invalid
    # filter with SUBACK 0x8F, keeps the connection, and handles the other
    # filters of the packet ([MQTT-3.8.4-5] v5)
    codes = c.subscribe([("ok/1", opts(1)), (flt, opts(1)), ("ok/2", opts(2))])
    assert codes == [1, m5.TOPIC_FILTER_INVALID, 2]
    c.ping()


def test_v5_3_2_2_3_13_shared_subscription_matches_connack(broker, clients):
    c = _c5(clients, broker, "share")
    available = c.connack.props.get(m5.SHARED_SUBSCRIPTION_AVAILABLE, 1)
    codes = c.subscribe([("$share/grp/s/t", opts(1)), ("s/t", opts(1))])
    if available == 0:
        # §3.2.2.3.13 v5: CONNACK said Shared Subscription Available = 0:
        # mqd refuses a $share filter with SUBACK 0x9E ([MQTT-3.9.3-2] v5
        # lists 0x9E) and keeps the connection
        assert codes == [m5.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED, 1]
    else:
        # available: [MQTT-4.8.2-3] v5 the member's own granted QoS
        assert codes == [1, 1]
    c.ping()


def test_v5_mqtt_3_11_3_2_unsuback_codes(broker, clients):
    c = _c5(clients, broker, "unsuback")
    c.subscribe([("u/a", opts(1)), ("u/#", opts(0))])
    codes = c.unsubscribe(["u/a", "u/none", "u/#", "u/a"])
    # [MQTT-3.11.3-1] v5 in order; [MQTT-3.11.3-2] v5 0x00 removed, 0x11 no
    # subscription existed; [MQTT-3.10.4-1] v5 exact match only
    assert codes == [m5.SUCCESS, m5.NO_SUBSCRIPTION_EXISTED, m5.SUCCESS,
                     m5.NO_SUBSCRIPTION_EXISTED]


# --------------------------------------------------------------------------
# No Local
# --------------------------------------------------------------------------

def test_v5_mqtt_3_8_3_3_no_local(broker, clients):
    c = _c5(clients, broker, "nolocal")
    c.subscribe([("nl/t", opts(1, no_local=True)), ("nl/mark", opts(1))])
    other = _c5(clients, broker, "nolocal-other")
    other.subscribe([("nl/t", opts(1))])
    c.publish("nl/t", b"mine", qos=1)
    # the other subscriber gets it
    assert other.expect_publish().payload == b"mine"
    # [MQTT-3.8.3-3] v5: not sent back to the publisher's own connection;
    # a marker through another subscription shows nothing came before it
    c.publish("nl/mark", b"mark", qos=1)
    got = c.expect_publish()
    assert got.topic == b"nl/mark", got
    # a message from someone else does arrive on the No Local subscription
    other.publish("nl/t", b"theirs", qos=1)
    assert c.expect_publish().payload == b"theirs"


def test_v5_mqtt_3_8_3_3_no_local_paho(broker, clients):
    c = clients.paho5(broker, "nolocal-paho")
    c.connect()
    assert c.subscribe("nlp/t", options=SubscribeOptions(qos=1, noLocal=True)) == [1]
    assert c.subscribe("nlp/mark", 1) == [1]
    c.publish("nlp/t", b"mine", qos=1)
    c.publish("nlp/mark", b"mark", qos=1)
    # [MQTT-3.8.3-3] v5
    assert c.get_message().topic == "nlp/mark"


# --------------------------------------------------------------------------
# Retain As Published / Retain Handling
# --------------------------------------------------------------------------

def test_v5_mqtt_3_3_1_13_retain_as_published(broker, clients):
    rap = _c5(clients, broker, "rap-1")
    rap.subscribe([("rap/t", opts(1, retain_as_published=True))])
    norap = _c5(clients, broker, "rap-0")
    norap.subscribe([("rap/t", opts(1))])
    p = _c5(clients, broker, "rap-pub")
    p.publish("rap/t", b"kept", qos=1, retain=True)
    p.publish("rap/t", b"plain", qos=1, retain=False)
    # [MQTT-3.3.1-13] v5: RAP 1 keeps the publisher's RETAIN flag
    a = [rap.expect_publish() for _ in range(2)]
    assert [(x.payload, x.retain) for x in a] == [(b"kept", True), (b"plain", False)]
    # [MQTT-3.3.1-12] v5: RAP 0 -> RETAIN 0 on live delivery
    b = [norap.expect_publish() for _ in range(2)]
    assert [(x.payload, x.retain) for x in b] == [(b"kept", False), (b"plain", False)]
    p.publish("rap/t", b"", qos=1, retain=True)       # clean up


def _retained(clients, broker, topic, payload=b"retained"):
    p = _c5(clients, broker, "rh-pub-" + topic.replace("/", "-"))
    p.publish(topic, payload, qos=1, retain=True)
    return p


def test_v5_mqtt_3_3_1_9_retain_handling_0_every_subscribe(broker, clients):
    p = _retained(clients, broker, "rh0/t")
    c = _c5(clients, broker, "rh0")
    c.subscribe([("rhm0/mark", opts(1))])
    for _ in range(2):
        c.subscribe([("rh0/#", opts(1, retain_handling=0))])
        pk = c.expect_publish()
        # [MQTT-3.3.1-9] v5: retained message sent at every SUBSCRIBE, also
        # when the subscription existed ([MQTT-3.8.4-4] v5); §3.3.1.3 v5:
        # with RETAIN=1
        assert (pk.topic, pk.payload, pk.retain) == (b"rh0/t", b"retained", True)
    p.publish("rhm0/mark", b"m", qos=1)
    assert c.expect_publish().topic == b"rhm0/mark"


def test_v5_mqtt_3_3_1_10_retain_handling_1_only_new_subscription(broker, clients):
    p = _retained(clients, broker, "rh1/t")
    c = _c5(clients, broker, "rh1")
    c.subscribe([("rhm1/mark", opts(1))])
    c.subscribe([("rh1/#", opts(1, retain_handling=1))])
    pk = c.expect_publish()
    # [MQTT-3.3.1-10] v5: new subscription -> retained message sent
    assert (pk.topic, pk.retain) == (b"rh1/t", True)
    c.subscribe([("rh1/#", opts(1, retain_handling=1))])
    # [MQTT-3.3.1-10] v5: the subscription existed -> nothing
    p.publish("rhm1/mark", b"m", qos=1)
    got = c.expect_publish()
    assert got.topic == b"rhm1/mark", got


def test_v5_mqtt_3_3_1_11_retain_handling_2_never(broker, clients):
    p = _retained(clients, broker, "rh2/t")
    c = _c5(clients, broker, "rh2")
    c.subscribe([("rhm2/mark", opts(1))])
    c.subscribe([("rh2/#", opts(1, retain_handling=2))])
    # [MQTT-3.3.1-11] v5: no retained messages at SUBSCRIBE time
    p.publish("rhm2/mark", b"m", qos=1)
    got = c.expect_publish()
    assert got.topic == b"rhm2/mark", got
    # live messages still flow on that subscription
    p.publish("rh2/t", b"live", qos=1)
    assert c.expect_publish().payload == b"live"


# --------------------------------------------------------------------------
# Subscription Identifiers
# --------------------------------------------------------------------------

SID = m5.SUBSCRIPTION_IDENTIFIER


def test_v5_mqtt_3_3_4_3_subscription_identifier_delivered(broker, clients):
    c = _c5(clients, broker, "sid")
    c.subscribe([("sid/a", opts(1))], props={SID: 7})
    c.subscribe([("sid/b", opts(1))], props={SID: 268435455})
    c.subscribe([("sid/c", opts(1))])
    p = _c5(clients, broker, "sid-pub")
    for t in ("sid/a", "sid/b", "sid/c"):
        p.publish(t, b"x", qos=1)
    got = [c.expect_publish() for _ in range(3)]
    # [MQTT-3.3.4-3] v5: the identifier of the matching subscription
    assert [g.props.all(SID) for g in got] == [[7], [268435455], []], got


def test_v5_mqtt_3_3_4_4_overlapping_subscriptions_one_copy_all_ids(broker, clients):
    c = _c5(clients, broker, "sid2")
    c.subscribe([("ov/#", opts(1))], props={SID: 1})
    c.subscribe([("ov/+/x", opts(2))], props={SID: 2})
    c.subscribe([("ov/mark", opts(1))])
    p = _c5(clients, broker, "sid2-pub")
    p.publish("ov/a/x", b"both", qos=2)
    p.publish("ov/mark", b"m", qos=1)
    got = [g for g in _until_marker(c, "ov/mark") if g.topic == b"ov/a/x"]
    if len(got) == 1:
        # [MQTT-3.3.4-4] v5: one copy carries the ids of all matching
        # subscriptions; [MQTT-3.3.4-2] v5 at the highest granted QoS
        assert sorted(got[0].props.all(SID)) == [1, 2], got
        assert got[0].qos == 2
    else:
        # [MQTT-3.3.4-5] v5: one copy per subscription, each with its own id
        assert sorted(tuple(g.props.all(SID)) for g in got) == [(1,), (2,)], got
    # mqd's contract: one delivery per client
    if broker.is_mqd:
        assert len(got) == 1, got


def test_v5_3_8_2_1_2_subscription_identifier_replaced_and_removed(broker, clients):
    c = _c5(clients, broker, "sid3")
    c.subscribe([("sr/t", opts(1))], props={SID: 5})
    c.subscribe([("sr/t", opts(1))], props={SID: 6})
    p = _c5(clients, broker, "sid3-pub")
    p.publish("sr/t", b"1", qos=1)
    # §3.8.2.1.2 v5 / [MQTT-3.8.4-3] v5: re-subscribing replaces the
    # subscription and its identifier
    assert c.expect_publish().props.all(SID) == [6]
    c.subscribe([("sr/t", opts(1))])
    p.publish("sr/t", b"2", qos=1)
    # §3.8.2.1.2 v5: re-subscribed without an identifier -> none
    assert c.expect_publish().props.all(SID) == []


def test_v5_subscription_identifier_kept_in_session(broker, clients):
    c = _c5(clients, broker, "sid4", props={m5.SESSION_EXPIRY_INTERVAL: 60})
    c.subscribe([("sk4/t", opts(1))], props={SID: 42})
    c.disconnect()
    p = _c5(clients, broker, "sid4-pub")
    p.publish("sk4/t", b"queued", qos=1)
    c2 = _c5(clients, broker, "sid4", clean_start=False,
             props={m5.SESSION_EXPIRY_INTERVAL: 0})
    # §4.1 v5: subscriptions are kept with their Subscription Identifiers
    pk = c2.expect_publish()
    assert (pk.payload, pk.props.all(SID)) == (b"queued", [42]), pk
