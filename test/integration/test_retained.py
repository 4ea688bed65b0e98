"""Retained messages: set, replace, clear, RETAIN flag on delivery, and
retained messages outliving sessions; with raw clients, paho and
mosquitto_pub/mosquitto_sub."""



def _client(broker, clients, cid, **kw):
    c = clients.raw(broker)
    c.handshake(cid, **kw)
    return c


def _fresh_subscriber(broker, clients, cid, flt, qos=2):
    """A new client that subscribes and returns (client, SUBACK codes)."""
    c = _client(broker, clients, cid)
    codes = c.subscribe([(flt, qos)])
    return c, codes


def test_v311_mqtt_3_3_1_5_retained_kept_for_new_subscribers(broker, clients):
    pub = _client(broker, clients, "ret-pub")
    pub.publish("ret/a", b"v1", qos=1, retain=True)
    sub, _ = _fresh_subscriber(broker, clients, "ret-sub", "ret/a", 2)
    p = sub.expect_publish()
    # [MQTT-3.3.1-5] 3.1.1: stored and sent to a later subscriber, with its
    # QoS (1 here: min of stored 1 and granted 2);
    # [MQTT-3.3.1-6] 3.1.1: a new subscription gets the retained message;
    # [MQTT-3.3.1-8] 3.1.1: with RETAIN=1
    assert (p.topic, p.payload, p.qos, p.retain) == (b"ret/a", b"v1", 1, True)


def test_v311_mqtt_3_3_1_5_retained_replaced(broker, clients):
    pub = _client(broker, clients, "rep-pub")
    pub.publish("rep/a", b"v1", qos=1, retain=True)
    pub.publish("rep/a", b"v2", qos=1, retain=True)
    sub = _client(broker, clients, "rep-sub")
    sub.subscribe([("rep/#", 1)])
    # [MQTT-3.3.1-5] 3.1.1: the new retained message replaced the old one
    p = sub.expect_publish()
    assert (p.payload, p.retain) == (b"v2", True)
    sub.expect_marker(pub, "rep/mark")   # and v1 is gone


def test_v311_mqtt_3_3_1_10_empty_retained_clears(broker, clients):
    pub = _client(broker, clients, "clr-pub")
    pub.publish("clr/a", b"v1", qos=1, retain=True)
    live = _client(broker, clients, "clr-live")
    live.subscribe([("clr/a", 1)])
    assert live.expect_publish().payload == b"v1"
    pub.publish("clr/a", b"", qos=1, retain=True)
    # [MQTT-3.3.1-10] 3.1.1: a retained PUBLISH with an empty payload is
    # delivered to current subscribers as usual (RETAIN=0 on an established
    # subscription, [MQTT-3.3.1-9] 3.1.1) ...
    p = live.expect_publish()
    assert (p.topic, p.payload, p.retain) == (b"clr/a", b"", False)
    # ... and removes the retained message; [MQTT-3.3.1-11] 3.1.1: the empty
    # message itself is not stored: a new subscriber gets nothing
    late = _client(broker, clients, "clr-late")
    late.subscribe([("clr/#", 1)])
    late.expect_marker(pub, "clr/mark")


def test_v311_mqtt_3_3_1_12_non_retained_publish_keeps_retained(broker, clients):
    pub = _client(broker, clients, "nr-pub")
    pub.publish("nr/a", b"kept", qos=1, retain=True)
    pub.publish("nr/a", b"passing", qos=1, retain=False)
    pub.publish("nr/b", b"never", qos=1, retain=False)
    sub = _client(broker, clients, "nr-sub")
    sub.subscribe([("nr/#", 1)])
    # [MQTT-3.3.1-12] 3.1.1: RETAIN=0 neither stores nor removes
    p = sub.expect_publish()
    assert (p.topic, p.payload, p.retain) == (b"nr/a", b"kept", True)
    sub.expect_marker(pub, "nr/mark")


def test_v311_mqtt_3_3_1_9_live_publish_forwarded_with_retain_0(broker, clients):
    sub = _client(broker, clients, "live-sub")
    sub.subscribe([("live/a", 2)])
    pub = _client(broker, clients, "live-pub")
    pub.publish("live/a", b"r", qos=2, retain=True)
    p = sub.expect_publish()
    # [MQTT-3.3.1-9] 3.1.1: an established subscription gets RETAIN=0
    assert (p.payload, p.retain, p.qos) == (b"r", False, 2)
    # but it was stored: a new subscriber gets it with RETAIN=1
    # ([MQTT-3.3.1-8] 3.1.1)
    late = _client(broker, clients, "live-late")
    late.subscribe([("live/a", 2)])
    p = late.expect_publish()
    assert (p.payload, p.retain, p.qos) == (b"r", True, 2)


def test_v311_mqtt_3_3_1_7_qos0_retained_replaces(broker, clients):
    pub = _client(broker, clients, "q0r-pub")
    pub.publish("q0r/a", b"old-qos1", qos=1, retain=True)
    pub.publish("q0r/a", b"new-qos0", qos=0, retain=True)
    sub = _client(broker, clients, "q0r-sub")
    sub.subscribe([("q0r/#", 2)])
    # [MQTT-3.3.1-7] 3.1.1: a retained QoS 0 message removes the earlier
    # retained message; it SHOULD be kept itself (it may be dropped later):
    # the subscriber never gets the old one, and if it gets one it is the new
    pub.publish("q0r/mark", b"m", qos=1)
    p = sub.expect_publish()
    if p.topic == b"q0r/a":
        assert (p.payload, p.qos, p.retain) == (b"new-qos0", 0, True)
        p = sub.expect_publish()
    assert (p.topic, p.payload) == (b"q0r/mark", b"m")


def test_v311_retained_qos_is_minimum_of_stored_and_granted(broker, clients):
    pub = _client(broker, clients, "rq-pub")
    pub.publish("rq/a", b"q2", qos=2, retain=True)
    for q in (0, 1, 2):
        sub, codes = _fresh_subscriber(broker, clients, "rq-sub%d" % q, "rq/a", q)
        assert codes == [q]
        p = sub.expect_publish()
        # [MQTT-3.8.4-6] 3.1.1 applied to retained delivery
        assert (p.payload, p.qos, p.retain) == (b"q2", q, True)


def test_v311_retained_wildcard_subscription_gets_all(broker, clients):
    pub = _client(broker, clients, "rw-pub")
    topics = ["rw/a", "rw/b/c", "rw/d/e/f"]
    for t in topics:
        pub.publish(t, t.encode(), qos=1, retain=True)
    pub.publish("other/x", b"x", qos=1, retain=True)
    sub = _client(broker, clients, "rw-sub")
    sub.subscribe([("rw/#", 1)])
    got = sorted(sub.expect_publish().topic for _ in topics)
    # [MQTT-3.3.1-6] 3.1.1: every retained message matching the new filter,
    # each with RETAIN=1 ([MQTT-3.3.1-8] 3.1.1)
    assert got == sorted(t.encode() for t in topics)
    sub.expect_marker(pub, "rw/mark")


def test_v311_mqtt_3_8_4_3_resubscribe_resends_retained(broker, clients):
    pub = _client(broker, clients, "rr-pub")
    pub.publish("rr/a", b"again", qos=1, retain=True)
    sub = _client(broker, clients, "rr-sub")
    sub.subscribe([("rr/a", 1)])
    assert sub.expect_publish().payload == b"again"
    sub.subscribe([("rr/a", 1)])
    # [MQTT-3.8.4-3] 3.1.1: re-subscribing to an identical filter re-sends
    # the matching retained messages
    p = sub.expect_publish()
    assert (p.payload, p.retain) == (b"again", True)


def test_v311_mqtt_3_1_2_7_retained_survive_session_end(broker, clients):
    pub = _client(broker, clients, "rs-pub", clean=False)
    pub.publish("rsv/a", b"survivor", qos=1, retain=True)
    pub.disconnect()
    # end the publisher's session: reconnect with CleanSession=1 and leave
    again = _client(broker, clients, "rs-pub", clean=True)
    again.disconnect()
    sub = _client(broker, clients, "rs-sub")
    sub.subscribe([("rsv/a", 0)])
    # [MQTT-3.1.2-7] 3.1.1: retained messages are not session state
    p = sub.expect_publish()
    assert (p.payload, p.retain) == (b"survivor", True)


def test_v311_mqtt_4_7_2_1_dollar_retained_not_sent_to_wildcard(broker, clients):
    pub = _client(broker, clients, "dr-pub")
    pub.publish("$test/ret", b"dollar", qos=1, retain=True)
    pub.publish("dr/ret", b"plain", qos=1, retain=True)
    sub = _client(broker, clients, "dr-sub")
    sub.subscribe([("#", 0)])
    # [MQTT-4.7.2-1] 3.1.1: "#" does not match "$test/ret"
    p = sub.expect_publish()
    assert p.topic == b"dr/ret"
    # and no second retained message arrives before a marker
    sub.expect_marker(pub, "dr/mark")


def test_retained_mosquitto_clients(broker, clients):
    clients.pub(broker, "-t", "mr/a", "-m", "hello", "-q", "1", "-r")
    clients.pub(broker, "-t", "mr/b", "-m", "v31", "-q", "2", "-r", "-V", "mqttv31")
    s = clients.sub(broker, "-t", "mr/#", "-q", "2", "-C", "2", "-W", "10")
    got = sorted([s.get_message(), s.get_message()])
    # (topic, payload, qos, retain): [MQTT-3.3.1-8] 3.1.1: RETAIN=1
    assert got == [("mr/a", "hello", 1, True), ("mr/b", "v31", 2, True)]
    assert s.wait() == 0
    # clear one with an empty retained message (mosquitto_pub -n)
    clients.pub(broker, "-t", "mr/a", "-n", "-r", "-q", "1")
    s2 = clients.sub(broker, "-t", "mr/#", "-C", "1", "-W", "10")
    assert s2.get_message()[:2] == ("mr/b", "v31")
    assert s2.wait() == 0


def test_retained_paho(broker, clients):
    p = clients.paho(broker, client_id="paho-ret-pub")
    p.connect()
    p.publish("pr/a", b"paho retained", qos=2, retain=True)
    s = clients.paho(broker, client_id="paho-ret-sub")
    s.connect()
    assert s.subscribe("pr/a", 1) == [1]
    msg = s.get_message()
    assert (msg.topic, msg.payload, msg.qos, msg.retain) == ("pr/a", b"paho retained", 1, 1)
    # a live publish on the same topic reaches the existing subscription
    # with RETAIN=0 ([MQTT-3.3.1-9] 3.1.1)
    p.publish("pr/a", b"live", qos=1, retain=True)
    msg = s.get_message()
    assert (msg.payload, msg.retain) == (b"live", 0)
