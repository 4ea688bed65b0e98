"""Admin HTTP API (issue #7) against a real mqd: every endpoint, the token
rule, paging and filters, kick (MQTT 5 DISCONNECT 0x98) and session drop,
retained messages, metrics as JSON and Prometheus text, $SYS topics, and
bad requests (unknown ids, malformed JSON, bad paths and parameters).

HTTP goes through urllib; every wait is on an event with a deadline.
"""

import json
import os
import re
import time
import urllib.error
import urllib.request

import pytest

import mqtt5_raw as m5

pytestmark = pytest.mark.skipif(
    os.environ.get("MQD_TEST_BROKER", "mqd") != "mqd",
    reason="mqd-specific: the admin API")

DEADLINE = 20.0


def http(b, method, path, body=None, token=None, raw=False):
    """(status, JSON answer or text) of one request to b's admin API."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(
        "http://127.0.0.1:%d%s" % (b.admin_port, path), data=data,
        method=method)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    if raw:
        return status, text
    return status, json.loads(text)


def get(b, path, **kw):
    return http(b, "GET", path, **kw)


def v3(clients, b, cid, **kw):
    c = clients.raw(b)
    c.handshake(cid, **kw)
    return c


def test_status_and_listeners(broker):
    st, s = get(broker, "/api/v1/status")
    assert st == 200
    assert s["node"] == "test" and s["version"]
    assert isinstance(s["uptime_s"], int) and s["uptime_s"] >= 0
    names = {(l["name"], l["address"]) for l in s["listeners"]}
    assert ("mqtt", "127.0.0.1:%d" % broker.port) in names
    assert ("admin", "127.0.0.1:%d" % broker.admin_port) in names
    assert s["counts"]["sessions"] == 0 and s["counts"]["retained"] == 0
    assert s["counts"]["cluster_members"] == 1
    st, l = get(broker, "/api/v1/listeners")
    assert st == 200 and l["listeners"] == s["listeners"]


def test_token_required_off_loopback(start_broker):
    b = start_broker(expect_exit=True, admin_bind="0.0.0.0")
    assert b.status == 2
    assert "[admin] token: required" in b.log_text()


def test_token_checked(start_broker):
    b = start_broker(admin_bind="0.0.0.0", admin_token="s3cret")
    for tok in (None, "wrong", "s3cret0", ""):
        st, body = get(b, "/api/v1/status", token=tok)
        assert st == 401 and body == {"error": "unauthorized"}, (tok, body)
        st, text = get(b, "/metrics", token=tok, raw=True)
        assert st == 401 and "mqd_" not in text
    st, s = get(b, "/api/v1/status", token="s3cret")
    assert st == 200 and s["node"] == "test"
    st, text = get(b, "/metrics", token="s3cret", raw=True)
    assert st == 200 and "mqd_uptime_seconds" in text


def test_clients_paging_and_filters(broker, clients):
    ids = ["dev-%02d" % i for i in range(7)] + ["other"]
    for cid in ids:
        v3(clients, broker, cid,
           username="alice" if cid.endswith("3") else None)
    st, r = get(broker, "/api/v1/clients?limit=3&offset=2")
    assert st == 200 and r["total"] == 8 and r["limit"] == 3
    assert [c["client_id"] for c in r["items"]] == ids[2:5]
    st, r = get(broker, "/api/v1/clients?prefix=dev-")
    assert r["total"] == 7
    st, r = get(broker, "/api/v1/clients?username=alice")
    assert [c["client_id"] for c in r["items"]] == ["dev-03"]
    c = r["items"][0]
    assert c["username"] == "alice" and c["protocol"] == 4
    assert c["node"] == "test" and c["address"].startswith("127.0.0.1:")
    assert abs(c["connected_at"] - time.time()) < 60
    st, r = get(broker, "/api/v1/clients?offset=100")
    assert st == 200 and r["items"] == [] and r["total"] == 8


def test_client_show_unknown_and_escaped_id(broker, clients):
    v3(clients, broker, "a/b c")
    st, c = get(broker, "/api/v1/clients/a%2Fb%20c")
    assert st == 200 and c["client_id"] == "a/b c"
    st, e = get(broker, "/api/v1/clients/nobody")
    assert st == 404 and e == {"error": "no such client"}
    st, e = http(broker, "DELETE", "/api/v1/clients/nobody")
    assert st == 404 and "error" in e
    st, e = get(broker, "/api/v1/sessions/nobody")
    assert st == 404 and e == {"error": "no such session"}


def test_kick_v5_gets_0x98_and_session_stays(broker, clients):
    c5 = m5.client(clients, broker)
    c5.handshake("k5", clean_start=False,
                 props=[(m5.SESSION_EXPIRY_INTERVAL, 300)])
    c5.subscribe([("k/#", m5.sub_options(1))])
    st, r = http(broker, "DELETE", "/api/v1/clients/k5")
    assert st == 200 and r["kicked"] is True and r["node"] == "test"
    c5.expect_disconnect(0x98)        # Administrative action
    # the session stays, offline, with its subscription (once the broker
    # has let go of the connection: its log line)
    broker.wait_log(r"client disconnected client=k5 ", DEADLINE)
    st, s = get(broker, "/api/v1/sessions/k5")
    assert st == 200 and not s["online"], s
    assert s["subscriptions"] == 1
    assert [x["filter"] for x in s["subscription_list"]] == ["k/#"]
    st, _ = get(broker, "/api/v1/clients/k5")
    assert st == 404


def test_kick_v311_is_closed(broker, clients):
    c = v3(clients, broker, "k3")
    st, _ = http(broker, "DELETE", "/api/v1/clients/k3")
    assert st == 200
    assert c.expect_closed() == []      # 3.1.1: no DISCONNECT, just closed


def test_sessions_list_and_drop(start_broker, clients):
    b = start_broker()
    c = v3(clients, b, "persist-1", clean=False)
    c.subscribe([("p/#", 1)])
    c.disconnect()
    v3(clients, b, "online-1")
    st, r = get(b, "/api/v1/sessions")
    items = {s["client_id"]: s for s in r["items"]}
    assert set(items) == {"persist-1", "online-1"}
    assert items["persist-1"]["online"] is False
    assert items["persist-1"]["persistent"] is True
    assert items["persist-1"]["expiry_s"] is None      # 3.1.1: never expires
    assert items["online-1"]["online"] is True
    st, r = http(b, "DELETE", "/api/v1/sessions/persist-1")
    assert st == 200 and r["dropped"] is True
    st, _ = get(b, "/api/v1/sessions/persist-1")
    assert st == 404
    # its stored state is gone too: after a restart it is not back
    data = b.data_dir
    assert b.stop() == 0
    b2 = start_broker(data_dir=data)
    c2 = clients.raw(b2)
    ack = c2.handshake("persist-1", clean=False)
    assert ack.session_present == 0
    st, s = get(b2, "/api/v1/sessions/persist-1")
    assert st == 200 and s["subscriptions"] == 0


def test_drop_online_session_disconnects_it(broker, clients):
    c5 = m5.client(clients, broker)
    c5.handshake("d5", clean_start=False,
                 props=[(m5.SESSION_EXPIRY_INTERVAL, 300)])
    st, _ = http(broker, "DELETE", "/api/v1/sessions/d5")
    assert st == 200
    c5.expect_disconnect(0x98)
    st, _ = get(broker, "/api/v1/sessions/d5")
    assert st == 404


def test_subscriptions_and_routes(broker, clients):
    a = v3(clients, broker, "sa")
    a.subscribe([("s/+/temp", 1), ("other/#", 0)])
    b = v3(clients, broker, "sb")
    b.subscribe([("s/room1/temp", 2)])
    st, r = get(broker, "/api/v1/subscriptions")
    got = sorted((s["client_id"], s["filter"], s["qos"]) for s in r["items"])
    assert got == [("sa", "other/#", 0), ("sa", "s/+/temp", 1),
                   ("sb", "s/room1/temp", 2)]
    st, r = get(broker, "/api/v1/subscriptions?client=sb")
    assert [s["filter"] for s in r["items"]] == ["s/room1/temp"]
    st, r = get(broker, "/api/v1/subscriptions?topic=s/room1/temp")
    assert sorted(s["client_id"] for s in r["items"]) == ["sa", "sb"]
    st, r = get(broker, "/api/v1/subscriptions?topic=other/%23")
    assert [s["filter"] for s in r["items"]] == ["other/#"]
    st, r = get(broker, "/api/v1/routes")
    assert st == 200
    assert sorted((x["filter"], x["node"]) for x in r["items"]) == [
        ("other/#", "test"), ("s/+/temp", "test"), ("s/room1/temp", "test")]


def test_retained_list_get_delete(broker, clients):
    p = v3(clients, broker, "rp")
    p.publish("r/a", b"text", qos=1, retain=True)
    p.publish("r/b/c", b"\x00\xff\x10", qos=1, retain=True)
    p.publish("q/z", b"zz", qos=0, retain=True)
    p.ping()
    st, r = get(broker, "/api/v1/retained")
    assert [x["topic"] for x in r["items"]] == ["q/z", "r/a", "r/b/c"]
    st, r = get(broker, "/api/v1/retained?pattern=r/%23")
    assert [x["topic"] for x in r["items"]] == ["r/a", "r/b/c"]
    st, m = get(broker, "/api/v1/retained/r/a")
    assert st == 200 and m["payload"] == "text" and m["qos"] == 1
    st, m = get(broker, "/api/v1/retained/r%2Fb%2Fc")
    assert m["payload_base64"] == "AP8Q" and "payload" not in m
    st, r = http(broker, "DELETE", "/api/v1/retained/r/a")
    assert st == 200 and r["deleted"] is True
    st, _ = get(broker, "/api/v1/retained/r/a")
    assert st == 404
    st, _ = http(broker, "DELETE", "/api/v1/retained/r/a")
    assert st == 404
    # a new subscriber gets only what is left
    s = v3(clients, broker, "rs")
    s.subscribe([("r/#", 0)])
    pk = s.expect_publish()
    assert pk.topic == b"r/b/c"
    s.expect_nothing(0.3)
    st, e = get(broker, "/api/v1/retained?pattern=a/%23/b")
    assert st == 400 and "pattern" in e["error"]
    st, e = get(broker, "/api/v1/retained/bad%2B")
    assert st == 400


def _prom(text):
    """{name{labels}: value} of a Prometheus text page, checking its
    shape: each family has HELP and TYPE once, before its samples."""
    vals, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
            assert name not in typed, "TYPE twice for " + name
            typed.add(name)
        elif line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            fam = re.sub(r"(_bucket|_sum|_count)?(\{.*\})?$", "", key)
            assert fam in typed or key.split("{")[0] in typed, line
            vals[key] = float(value)
    return vals


def test_metrics_json_and_prometheus(broker, clients):
    st, m0 = get(broker, "/api/v1/metrics")
    s = v3(clients, broker, "ms")
    s.subscribe([("m/#", 1)])
    p = v3(clients, broker, "mp")
    for i in range(5):
        p.publish("m/x", b"12345", qos=1)
    for i in range(5):
        s.expect_publish()
    p.publish("m/y", b"1", qos=0)
    s.expect_publish()
    st, m1 = get(broker, "/api/v1/metrics")
    a, b = m0["metrics"], m1["metrics"]
    assert b["messages.received.qos1"] - a["messages.received.qos1"] == 5
    assert b["messages.received.qos0"] - a["messages.received.qos0"] == 1
    assert b["payload.received.qos1"] - a["payload.received.qos1"] == 25
    assert b["messages.sent.qos1"] - a["messages.sent.qos1"] == 5
    assert b["connections.current"] == 2
    assert b["sessions.online"] == 2 and b["subscriptions.count"] == 1
    lat = m1["storage_commit_latency"]
    assert lat["buckets_le_us"]["+Inf"] == lat["count"]
    st, text = get(broker, "/metrics", raw=True)
    v = _prom(text)
    assert v['mqd_messages_received_total{qos="1"}'] == \
        b["messages.received.qos1"]
    assert v["mqd_connections"] == 2
    buckets = [(k, x) for k, x in v.items()
               if k.startswith("mqd_storage_commit_seconds_bucket")]
    counts = [x for _, x in buckets]
    assert counts == sorted(counts) and len(counts) >= 2
    assert buckets[-1][0].endswith('{le="+Inf"}')
    assert v["mqd_storage_commit_seconds_count"] == counts[-1]


def test_refused_connections_counted(start_broker, clients, tmp_path):
    pw = tmp_path / "users"
    pw.write_text("u:p\n")
    b = start_broker(auth_password_file=str(pw))
    c = clients.raw(b)
    c.handshake("bad", username="u", password="nope", expect_rc=4)
    st, m = get(b, "/api/v1/metrics")
    assert m["metrics"]["connections.refused.bad_credentials"] == 1
    assert m["metrics"]["connections.refused.protocol"] == 0


def test_sys_topics(start_broker, clients):
    b = start_broker(sys_interval=1)
    allsub = v3(clients, b, "all")
    allsub.subscribe([("#", 0)])
    s = v3(clients, b, "sys")
    s.subscribe([("$SYS/broker/uptime", 0), ("$SYS/broker/version", 0)])
    got = {}
    while len(got) < 2:
        pk = s.expect_publish()
        got[pk.topic] = pk
    assert all(pk.retain for pk in got.values())     # retained: at once
    assert got[b"$SYS/broker/version"].payload.startswith(b"mqd ")
    first = int(got[b"$SYS/broker/uptime"].payload)
    # then again every interval, as live (not retained) messages
    pk = s.expect_publish(timeout=5)
    while pk.topic != b"$SYS/broker/uptime":
        assert not pk.retain, pk
        pk = s.expect_publish(timeout=5)
    assert not pk.retain, pk
    assert int(pk.payload) >= first
    # [MQTT-4.7.2-1] '#' at the root does not match $SYS topics
    allsub.expect_nothing(0.3)
    st, r = get(b, "/api/v1/retained")
    assert r["total"] == 0          # $SYS is not in a '#' listing
    st, r = get(b, "/api/v1/retained?pattern=$SYS/broker/%23")
    assert r["total"] > 10


def test_sys_off(start_broker, clients):
    b = start_broker(sys_interval=0)
    s = v3(clients, b, "sys")
    s.subscribe([("$SYS/#", 0)])
    s.expect_nothing(0.5)


def test_bad_requests(broker):
    st, e = get(broker, "/api/v1/nothing")
    assert st == 404 and e["error"] == "no such endpoint"
    st, e = get(broker, "/nope")
    assert st == 404
    st, e = http(broker, "POST", "/api/v1/clients", body="{}")
    assert st == 405 and "error" in e
    st, e = get(broker, "/api/v1/clients?limit=0")
    assert st == 400 and "limit" in e["error"]
    st, e = get(broker, "/api/v1/clients?limit=abc")
    assert st == 400
    st, e = get(broker, "/api/v1/clients/%zz")
    assert st == 400 and "error" in e
    st, e = get(broker, "/api/v1/clients/a%00b")
    assert st == 400
    for body in ("{not json", "[1,2]", "", '{"seed": 5}', '{"seed": ""}'):
        st, e = http(broker, "POST", "/api/v1/cluster/join", body=body)
        assert st == 400 and e["error"], (body, e)
    st, e = http(broker, "POST", "/api/v1/cluster/join",
                 body='{"seed": "no-port:xx"}')
    assert st == 400 and "seed" in e["error"]
    st, e = http(broker, "POST", "/api/v1/cluster/frob", body="{}")
    assert st == 404
    broker.assert_alive()
