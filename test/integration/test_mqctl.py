"""mqctl (issue #7): every command against a real mqd, tables and --json,
--help, exit status and the one stderr line on failures (node down, bad
token, unknown client, usage), MQCTL_NODE / MQCTL_TOKEN, and the cluster
commands and cluster-wide lookups against a three-node cluster.
"""

import json
import os
import subprocess
import time

import pytest

import mqtt5_raw as m5
from conftest import free_port
from test_admin import get

pytestmark = pytest.mark.skipif(
    os.environ.get("MQD_TEST_BROKER", "mqd") != "mqd",
    reason="mqd-specific: mqctl")

MQCTL = os.environ.get("MQCTL_BIN", "/work/main/build/tools/mqctl")


def ctl(b, *args, token=None, env=None, node=True):
    """Runs mqctl against b; returns (exit status, stdout, stderr)."""
    cmd = [MQCTL]
    if node:
        cmd += ["--node", "127.0.0.1:%d" % b.admin_port]
    if token:
        cmd += ["--token", token]
    e = {k: v for k, v in os.environ.items() if not k.startswith("MQCTL_")}
    e.update(env or {})
    r = subprocess.run(cmd + list(args), capture_output=True, text=True,
                       timeout=30, env=e, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout, r.stderr


def ok(b, *args, **kw):
    rc, out, err = ctl(b, *args, **kw)
    assert rc == 0 and err == "", (args, rc, out, err)
    return out


def fails(b, *args, code=1, **kw):
    rc, out, err = ctl(b, *args, **kw)
    assert rc == code, (args, rc, out, err)
    assert out == "" and err.count("\n") == 1 and err.startswith("mqctl: "), err
    return err


def table(out):
    """Rows of an aligned table as lists of cells, header first."""
    return [line.split() for line in out.splitlines() if line.strip()]


def test_help(broker):
    out = ok(broker, "--help", node=False)
    for c in ("status", "cluster join SEED", "clients kick ID",
              "sessions drop ID", "subs list", "routes", "retained get TOPIC",
              "metrics [NAME]", "listeners"):
        assert c in out, c
    out = ok(broker, "clients", "kick", "--help", node=False)
    assert out.startswith("usage: mqctl") and "clients kick ID" in out
    fails(broker, "frob", code=2)
    fails(broker, "clients", "show", code=2)         # missing ID
    fails(broker, "status", "--bogus", code=2)


def test_status_listeners_json(broker):
    out = ok(broker, "status")
    assert "node             test" in out
    j = json.loads(ok(broker, "--json", "status"))
    assert j["node"] == "test"
    rows = table(ok(broker, "listeners"))
    assert rows[0] == ["NAME", "ADDRESS"]
    assert ["admin", "127.0.0.1:%d" % broker.admin_port] in rows


def test_errors_one_line(broker, start_broker):
    port = free_port()
    err = fails(broker, "--node", "127.0.0.1:%d" % port, "status", node=False)
    assert "cannot reach" in err
    err = fails(broker, "clients", "show", "ghost")
    assert "no such client" in err
    fails(broker, "sessions", "drop", "ghost")
    fails(broker, "retained", "get", "no/such")
    fails(broker, "metrics", "no.such.metric")
    b = start_broker(admin_token="tok")
    err = fails(b, "status")
    assert "unauthorized" in err
    fails(b, "status", token="nope")
    ok(b, "status", token="tok")
    # environment: MQCTL_NODE and MQCTL_TOKEN
    out = ok(b, "status", node=False,
             env={"MQCTL_NODE": "127.0.0.1:%d" % b.admin_port,
                  "MQCTL_TOKEN": "tok"})
    assert "node" in out


def test_clients_sessions_subs(broker, clients):
    c = m5.client(clients, broker)
    c.handshake("cli-1", clean_start=False,
                props=[(m5.SESSION_EXPIRY_INTERVAL, 600)])
    c.subscribe([("a/+", m5.sub_options(1))])
    rows = table(ok(broker, "clients", "list"))
    assert rows[0][:3] == ["CLIENT_ID", "NODE", "USERNAME"]
    assert rows[1][:2] == ["cli-1", "test"]
    j = json.loads(ok(broker, "--json", "clients", "list", "--prefix", "cli"))
    assert [x["client_id"] for x in j["items"]] == ["cli-1"]
    j = json.loads(ok(broker, "--json", "clients", "list", "--prefix", "zz"))
    assert j["items"] == []
    out = ok(broker, "clients", "show", "cli-1")
    assert "client_id        cli-1" in out and "a/+" in out
    rows = table(ok(broker, "subs", "list", "--topic", "a/b"))
    assert rows[1] == ["cli-1", "test", "a/+", "1"]
    assert len(table(ok(broker, "subs", "list", "--client", "x"))) == 1
    rows = table(ok(broker, "routes"))
    assert rows[1] == ["a/+", "test"]
    out = ok(broker, "clients", "kick", "cli-1")
    assert out == "kicked cli-1 on node test\n"
    c.expect_disconnect(0x98)
    broker.wait_log(r"client disconnected client=cli-1 ", 20)
    assert ctl(broker, "clients", "show", "cli-1")[0] == 1
    rows = table(ok(broker, "sessions", "list"))
    assert rows[1][:3] == ["cli-1", "test", "no"]
    assert "expiry_s         600" in ok(broker, "sessions", "show", "cli-1")
    ok(broker, "sessions", "drop", "cli-1")
    assert len(table(ok(broker, "sessions", "list"))) == 1


def test_retained_and_metrics(broker, clients):
    p = clients.raw(broker)
    p.handshake("rp")
    p.publish("t/one", b"1", qos=1, retain=True)
    p.publish("u/two", b"22", qos=1, retain=True)
    rows = table(ok(broker, "retained", "list"))
    assert [r[0] for r in rows[1:]] == ["t/one", "u/two"]
    rows = table(ok(broker, "retained", "list", "t/#"))
    assert [r[0] for r in rows[1:]] == ["t/one"]
    assert "payload          22" in ok(broker, "retained", "get", "u/two")
    ok(broker, "retained", "delete", "u/two")
    fails(broker, "retained", "get", "u/two")
    out = ok(broker, "metrics", "messages.received")
    lines = dict(line.split() for line in out.splitlines())
    assert lines["messages.received.qos1"] == "2"
    assert set(lines) == {"messages.received.qos0", "messages.received.qos1",
                          "messages.received.qos2"}
    j = json.loads(ok(broker, "--json", "metrics", "retained.count"))
    assert j == {"retained.count": 1}


def _three(start_broker):
    cports = [free_port() for _ in range(3)]
    seeds = "127.0.0.1:%d" % cports[0]
    a = start_broker(node_name="a", cluster_port=cports[0])
    b = start_broker(node_name="b", cluster_port=cports[1],
                     cluster_seeds=seeds)
    c = start_broker(node_name="c", cluster_port=cports[2],
                     cluster_seeds=seeds)
    for x, others in ((a, "bc"), (b, "ac"), (c, "ab")):
        for o in others:
            x.wait_log(r"cluster member node=%s state=alive" % o, 20)
    # the admin addresses come with the Hellos: one link up to each peer
    for x, others in ((a, "bc"), (b, "ac"), (c, "ab")):
        for o in others:
            x.wait_log(r"cluster link up .* node=%s " % o, 20)
    for x in (a, b, c):
        assert all(m["admin_address"] for m in
                   get(x, "/api/v1/cluster")[1]["members"])
    return a, b, c, cports


def _states(node, view=None):
    st, r = get(node, "/api/v1/cluster")
    members = r["views"][view]["members"] if view else r["members"]
    return {m["name"]: m["state"] for m in members}


def test_cluster_commands(start_broker, clients):
    a, b, c, cports = _three(start_broker)
    out = ok(a, "cluster", "status")
    rows = table(out)
    assert rows[1][:3] == ["NODE", "STATE", "LINK"]
    assert {r[0]: r[1] for r in rows[2:5]} == {"a": "alive", "b": "alive",
                                              "c": "alive"}
    for n in "abc":
        assert "  %s sees 3 members, 3 alive" % n in out
    j = json.loads(ok(a, "--json", "cluster", "status"))
    assert set(j["views"]) == {"a", "b", "c"}

    # a client on b is found, shown and kicked through a
    cb = m5.client(clients, b)
    cb.handshake("on-b", clean_start=False,
                 props=[(m5.SESSION_EXPIRY_INTERVAL, 300)])
    cc = m5.client(clients, c)
    cc.handshake("on-c")
    j = json.loads(ok(a, "--json", "clients", "show", "on-b"))
    assert j["node"] == "b" and j["client_id"] == "on-b"
    rows = table(ok(a, "clients", "list"))
    assert sorted((r[0], r[1]) for r in rows[1:]) == [("on-b", "b"),
                                                       ("on-c", "c")]
    assert "kicked on-b on node b" in ok(a, "clients", "kick", "on-b")
    cb.expect_disconnect(0x98)
    j = json.loads(ok(c, "--json", "sessions", "show", "on-b"))
    assert j["node"] == "b" and j["online"] is False
    ok(c, "sessions", "drop", "on-b")
    fails(a, "sessions", "show", "on-b")

    # c leaves: the others see it left; it runs alone; join brings it back
    assert ok(c, "cluster", "leave") == "left the cluster\n"
    a.wait_log(r"cluster member node=c state=left", 20)
    assert _states(c) == {"a": "left", "b": "left", "c": "alive"}
    assert json.loads(ok(c, "--json", "status"))["cluster_left"] is True
    fails(c, "clients", "show", "on-c-nobody")
    marks = [len(x.log_text()) for x in (a, c)]
    out = ok(c, "cluster", "join", "127.0.0.1:%d" % cports[1])
    assert out == "joining the cluster through 127.0.0.1:%d\n" % cports[1]
    a.wait_log(r"cluster member node=c state=alive", 20, after=marks[0])
    for o in "ab":
        c.wait_log(r"cluster member node=%s state=alive" % o, 20,
                   after=marks[1])
    assert _states(a) == {"a": "alive", "b": "alive", "c": "alive"}
    assert _states(c) == {"a": "alive", "b": "alive", "c": "alive"}
    fails(c, "cluster", "join", "127.0.0.1:99999")
