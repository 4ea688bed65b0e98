"""Authentication: users from [auth] password_file checked on CONNECT
(3.1.1 return codes 0x04 / 0x05, MQTT 5 reasons 0x86 / 0x87), anonymous
clients allowed or refused by [auth] allow_anonymous, and MQTT 5 enhanced
authentication with SCRAM-SHA-256 (RFC 5802 / RFC 7677) through AUTH."""

import base64
import hashlib
import hmac
import os
import subprocess

import pytest

import mqtt_raw as m
import mqtt5_raw as m5
from conftest import MQD_BIN

USERS = "# test users\nalice:wonderland\n\nbob:b:colon\n"


@pytest.fixture
def auth_broker(start_broker, tmp_path):
    path = tmp_path / "users"
    path.write_text(USERS)
    return start_broker(auth_password_file=str(path))


def test_v311_mqtt_3_1_3_user_password_checked(auth_broker, clients):
    c = clients.raw(auth_broker)
    c.handshake("a1", username="alice", password="wonderland")
    c = clients.raw(auth_broker)
    # a password may itself contain ':' (only the first one splits)
    c.handshake("b1", username="bob", password="b:colon")
    for user, pw in (("alice", "wrong"), ("nobody", "x"), ("alice", None)):
        c = clients.raw(auth_broker)
        c.send(m.connect("a2", username=user, password=pw))
        got = c.expect_closed()
        # 3.1.1: CONNACK 0x04 (bad user name or password), then close
        assert [(p.type, p.rc) for p in got] == [(m.CONNACK, 0x04)], (user, got)


def test_v311_anonymous_allowed_or_refused(start_broker, clients, tmp_path):
    path = tmp_path / "users"
    path.write_text(USERS)
    b = start_broker(auth_password_file=str(path))
    clients.raw(b).handshake("anon-ok")          # allow_anonymous = true
    b2 = start_broker(auth_password_file=str(path), auth_allow_anonymous="false")
    c = clients.raw(b2)
    c.send(m.connect("anon-no"))
    got = c.expect_closed()
    # 3.1.1: CONNACK 0x05 (not authorized), then close
    assert [(p.type, p.rc) for p in got] == [(m.CONNACK, 0x05)]
    c5 = m5.client(clients, b2)
    c5.send(m5.connect("anon5"))
    got = c5.expect_closed()
    assert [(p.type, p.rc) for p in got] == [(m5.CONNACK, 0x87)]


def test_v5_bad_password_0x86(auth_broker, clients):
    c = m5.client(clients, auth_broker)
    c.handshake("p5", username="alice", password=b"wonderland")
    c = m5.client(clients, auth_broker)
    c.send(m5.connect("p5b", username="alice", password=b"nope"))
    got = c.expect_closed()
    assert [(p.type, p.rc) for p in got] == [(m5.CONNACK, 0x86)]


def test_mosquitto_clients_with_credentials(auth_broker, clients):
    sub = clients.sub(auth_broker, "-t", "au/t", "-C", "1", "-u", "alice",
                      "-P", "wonderland", "-q", "1")
    sub.wait_subscribed()
    clients.pub(auth_broker, "-t", "au/t", "-m", "hi", "-q", "1", "-u", "bob",
                "-P", "b:colon")
    assert sub.get_message()[:2] == ("au/t", "hi")


# ---- SCRAM-SHA-256 -------------------------------------------------------

class Scram:
    """Client side of SCRAM-SHA-256, written from RFC 5802."""

    def __init__(self, user, password):
        self.user, self.password = user, password.encode()
        self.cnonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = "n=%s,r=%s" % (user, self.cnonce)

    def first(self):
        return ("n,," + self.first_bare).encode()

    def final(self, server_first):
        self.server_first = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in self.server_first.split(","))
        assert attrs["r"].startswith(self.cnonce)
        salted = hashlib.pbkdf2_hmac("sha256", self.password,
                                     base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=%s" % attrs["r"]
        self.auth_message = ",".join([self.first_bare, self.server_first,
                                      without_proof]).encode()
        sig = hmac.new(stored, self.auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        self.server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()

    def server_signature_ok(self, server_final):
        want = hmac.new(self.server_key, self.auth_message, hashlib.sha256).digest()
        return server_final.decode() == "v=" + base64.b64encode(want).decode()


def _scram(clients, broker, user, password, cid="scram"):
    c = m5.client(clients, broker)
    s = Scram(user, password)
    c.send(m5.connect(cid, props={m5.AUTHENTICATION_METHOD: "SCRAM-SHA-256",
                                  m5.AUTHENTICATION_DATA: s.first()}))
    return c, s


def test_v5_4_12_scram_sha_256_exchange(auth_broker, clients):
    c, s = _scram(clients, auth_broker, "alice", "wonderland")
    # §4.12 v5: the server continues with AUTH 0x18, same method
    a = c.expect(m5.AUTH)
    assert a.rc == 0x18
    assert a.props.get(m5.AUTHENTICATION_METHOD) in ("SCRAM-SHA-256", b"SCRAM-SHA-256")
    c.send(m5.auth(0x18, props={m5.AUTHENTICATION_METHOD: "SCRAM-SHA-256",
                                m5.AUTHENTICATION_DATA: s.final(
                                    a.props.get(m5.AUTHENTICATION_DATA))}))
    ack = c.expect(m5.CONNACK)
    assert ack.rc == 0
    # the CONNACK proves the server knows the password too
    assert s.server_signature_ok(ack.props.get(m5.AUTHENTICATION_DATA))
    # and the connection works
    c.subscribe([("sc/t", 1)])
    c.publish("sc/t", b"x", qos=1)
    assert c.expect_publish().payload == b"x"


def test_v5_4_12_scram_wrong_password_0x86(auth_broker, clients):
    c, s = _scram(clients, auth_broker, "alice", "not-it")
    a = c.expect(m5.AUTH)
    c.send(m5.auth(0x18, props={m5.AUTHENTICATION_METHOD: "SCRAM-SHA-256",
                                m5.AUTHENTICATION_DATA: s.final(
                                    a.props.get(m5.AUTHENTICATION_DATA))}))
    got = c.expect_closed()
    assert [(p.type, p.rc) for p in got] == [(m5.CONNACK, 0x86)]


def test_v5_4_12_scram_unknown_user_0x86(auth_broker, clients):
    c, _ = _scram(clients, auth_broker, "mallory", "x")
    got = c.expect_closed()
    assert [(p.type, p.rc) for p in got] == [(m5.CONNACK, 0x86)]


def test_v5_4_12_other_packet_during_auth_closes(auth_broker, clients):
    c, _ = _scram(clients, auth_broker, "alice", "wonderland")
    c.expect(m5.AUTH)
    c.send(m5.subscribe(1, [("x", 0)]))
    got = c.expect_closed()
    assert all(p.type != m5.CONNACK or p.rc >= 0x80 for p in got)


def test_v5_mqtt_4_12_0_1_scram_without_password_file_0x8c(broker, clients):
    c, _ = _scram(clients, broker, "alice", "wonderland")
    got = c.expect_closed()
    # [MQTT-4.12.0-1] v5: a method the server does not offer -> 0x8C
    assert [(p.type, p.rc) for p in got] == [(m5.CONNACK, 0x8C)]


def test_bad_password_file_stops_start(tmp_path):
    path = tmp_path / "users"
    path.write_text("alice:ok\nno-colon-here\n")
    r = subprocess.run([MQD_BIN, "--bind", "127.0.0.1", "-p", "1",
                        "--data-dir", str(tmp_path / "d")],
                       env=dict(os.environ, MQD_AUTH_PASSWORD_FILE=str(path)),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "%s:2: expected user:password" % path in r.stderr
