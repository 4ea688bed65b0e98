"""Raw-socket MQTT 5.0 client for exact protocol checks (companion of
mqtt_raw.py, which stays the 3.1 / 3.1.1 client).

Properties are lists of (identifier, value) pairs, in wire order, so that a
test can send a property twice or check the order of User Properties;
a dict {id: value} is accepted where order does not matter. User Property
values are (name, value) pairs.

  * encoders: connect(), publish(), subscribe(), unsubscribe(), the four
    acks with reason codes, disconnect(), auth();
  * decode_one() / Packet5 for what the broker sends back;
  * Client5, the RawClient of mqtt_raw with the 5.0 decoder and helpers
    (handshake() returns the CONNACK with its properties, expect_disconnect()
    checks a server DISCONNECT reason code and the close after it).

Every wait has a deadline; nothing here sleeps to synchronise.
"""

import socket
import struct
import time

import mqtt_raw as m
from mqtt_raw import (CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL,  # noqa: F401
                      PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK,
                      PINGREQ, PINGRESP, DISCONNECT, DEFAULT_TIMEOUT,
                      Closed, ProtocolError, enc_varint, enc_str, packet,
                      pingreq)

AUTH = 15
NAMES = dict(m.NAMES)
NAMES[AUTH] = "AUTH"

# Property identifiers (MQTT 5.0 section 2.2.2.2)
PAYLOAD_FORMAT_INDICATOR = 0x01
MESSAGE_EXPIRY_INTERVAL = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_IDENTIFIER = 0x0B
SESSION_EXPIRY_INTERVAL = 0x11
ASSIGNED_CLIENT_IDENTIFIER = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTHENTICATION_METHOD = 0x15
AUTHENTICATION_DATA = 0x16
REQUEST_PROBLEM_INFORMATION = 0x17
WILL_DELAY_INTERVAL = 0x18
REQUEST_RESPONSE_INFORMATION = 0x19
RESPONSE_INFORMATION = 0x1A
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
SHARED_SUBSCRIPTION_AVAILABLE = 0x2A

_BYTE, _U16, _U32, _VBI, _STR, _BIN, _PAIR = range(7)
PROP_TYPES = {
    PAYLOAD_FORMAT_INDICATOR: _BYTE, MESSAGE_EXPIRY_INTERVAL: _U32,
    CONTENT_TYPE: _STR, RESPONSE_TOPIC: _STR, CORRELATION_DATA: _BIN,
    SUBSCRIPTION_IDENTIFIER: _VBI, SESSION_EXPIRY_INTERVAL: _U32,
    ASSIGNED_CLIENT_IDENTIFIER: _STR, SERVER_KEEP_ALIVE: _U16,
    AUTHENTICATION_METHOD: _STR, AUTHENTICATION_DATA: _BIN,
    REQUEST_PROBLEM_INFORMATION: _BYTE, WILL_DELAY_INTERVAL: _U32,
    REQUEST_RESPONSE_INFORMATION: _BYTE, RESPONSE_INFORMATION: _STR,
    SERVER_REFERENCE: _STR, REASON_STRING: _STR, RECEIVE_MAXIMUM: _U16,
    TOPIC_ALIAS_MAXIMUM: _U16, TOPIC_ALIAS: _U16, MAXIMUM_QOS: _BYTE,
    RETAIN_AVAILABLE: _BYTE, USER_PROPERTY: _PAIR, MAXIMUM_PACKET_SIZE: _U32,
    WILDCARD_SUBSCRIPTION_AVAILABLE: _BYTE,
    SUBSCRIPTION_IDENTIFIER_AVAILABLE: _BYTE,
    SHARED_SUBSCRIPTION_AVAILABLE: _BYTE,
}

# Reason codes used by the tests
SUCCESS = 0x00
GRANTED_QOS1 = 0x01
GRANTED_QOS2 = 0x02
DISCONNECT_WITH_WILL = 0x04
NO_MATCHING_SUBSCRIBERS = 0x10
NO_SUBSCRIPTION_EXISTED = 0x11
MALFORMED = 0x81
PROTOCOL_ERROR = 0x82
BAD_AUTHENTICATION_METHOD = 0x8C
SERVER_SHUTTING_DOWN = 0x8B
KEEP_ALIVE_TIMEOUT = 0x8D
SESSION_TAKEN_OVER = 0x8E
TOPIC_FILTER_INVALID = 0x8F
TOPIC_NAME_INVALID = 0x90
PACKET_ID_NOT_FOUND = 0x92
RECEIVE_MAXIMUM_EXCEEDED = 0x93
TOPIC_ALIAS_INVALID = 0x94
PACKET_TOO_LARGE = 0x95
SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E


# --------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------

_b = m._b


def _items(props):
    if props is None:
        return []
    if isinstance(props, dict):
        return list(props.items())
    return list(props)


def enc_props(props=None):
    """Property Length + properties. props: [(id, value), ...] or a dict."""
    out = bytearray()
    for pid, value in _items(props):
        kind = PROP_TYPES[pid]
        out += enc_varint(pid)
        if kind == _BYTE:
            out.append(value)
        elif kind == _U16:
            out += struct.pack("!H", value)
        elif kind == _U32:
            out += struct.pack("!I", value)
        elif kind == _VBI:
            out += enc_varint(value)
        elif kind in (_STR, _BIN):
            out += enc_str(value)
        else:
            out += enc_str(value[0]) + enc_str(value[1])
    return enc_varint(len(out)) + bytes(out)


def connect(client_id="", clean_start=True, keepalive=60, props=None,
            will=None, username=None, password=None, proto_level=5):
    """CONNECT, protocol level 5.

    will: dict(topic=..., payload=b"", qos=0, retain=False, props=[...])
    """
    f = 0x02 if clean_start else 0
    if will is not None:
        f |= 0x04 | ((will.get("qos", 0) & 3) << 3)
        if will.get("retain"):
            f |= 0x20
    if password is not None:
        f |= 0x40
    if username is not None:
        f |= 0x80
    var = enc_str(b"MQTT") + bytes([proto_level, f]) + struct.pack("!H", keepalive)
    var += enc_props(props)
    payload = enc_str(client_id)
    if will is not None:
        payload += enc_props(will.get("props"))
        payload += enc_str(will["topic"]) + enc_str(will.get("payload", b""))
    if username is not None:
        payload += enc_str(username)
    if password is not None:
        payload += enc_str(password)
    return packet(CONNECT, 0, var + payload)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, pid=None,
            props=None, flags=None):
    f = (0x08 if dup else 0) | ((qos & 3) << 1) | (0x01 if retain else 0)
    if flags is not None:
        f = flags
    body = enc_str(topic)
    if (f >> 1) & 3:
        if pid is None:
            raise ValueError("QoS > 0 PUBLISH needs a packet id")
        body += struct.pack("!H", pid)
    body += enc_props(props) + _b(payload)
    return packet(PUBLISH, f, body)


def _ack(ptype, pid, rc, props, flags):
    body = struct.pack("!H", pid)
    if rc is not None or props:
        body += bytes([rc or 0])
        if props:
            body += enc_props(props)
    return packet(ptype, flags, body)


def puback(pid, rc=None, props=None):
    return _ack(PUBACK, pid, rc, props, 0)


def pubrec(pid, rc=None, props=None):
    return _ack(PUBREC, pid, rc, props, 0)


def pubrel(pid, rc=None, props=None):
    return _ack(PUBREL, pid, rc, props, 2)


def pubcomp(pid, rc=None, props=None):
    return _ack(PUBCOMP, pid, rc, props, 0)


def sub_options(qos=0, no_local=False, retain_as_published=False,
                retain_handling=0):
    return ((qos & 3) | (0x04 if no_local else 0)
            | (0x08 if retain_as_published else 0) | ((retain_handling & 3) << 4))


def subscribe(pid, topics, props=None, flags=2):
    """topics: [(filter, options-byte), ...] (see sub_options())."""
    body = struct.pack("!H", pid) + enc_props(props)
    for flt, opts in topics:
        body += enc_str(flt) + bytes([opts])
    return packet(SUBSCRIBE, flags, body)


def unsubscribe(pid, filters, props=None, flags=2):
    body = struct.pack("!H", pid) + enc_props(props)
    for flt in filters:
        body += enc_str(flt)
    return packet(UNSUBSCRIBE, flags, body)


def disconnect(rc=0, props=None, flags=0):
    """DISCONNECT; rc=None sends the short form (Remaining Length 0)."""
    if rc is None:
        return packet(DISCONNECT, flags)
    return packet(DISCONNECT, flags, bytes([rc]) + enc_props(props))


def auth(rc=0x18, props=None):
    return packet(AUTH, 0, bytes([rc]) + enc_props(props))


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------

class Props(list):
    """Decoded properties: a list of (id, value) in wire order."""

    def get(self, pid, default=None):
        for k, v in self:
            if k == pid:
                return v
        return default

    def all(self, pid):
        return [v for k, v in self if k == pid]

    def has(self, pid):
        return any(k == pid for k, _ in self)


def dec_varint(b, pos):
    mult, n = 1, 0
    for i in range(4):
        if pos >= len(b):
            raise ProtocolError("truncated variable byte integer")
        byte = b[pos]
        pos += 1
        n += (byte & 0x7F) * mult
        if not byte & 0x80:
            return n, pos
        mult *= 128
    raise ProtocolError("variable byte integer over 4 bytes")


def _dec_str(b, pos):
    if pos + 2 > len(b):
        raise ProtocolError("truncated string length")
    (n,) = struct.unpack_from("!H", b, pos)
    if pos + 2 + n > len(b):
        raise ProtocolError("truncated string")
    return bytes(b[pos + 2:pos + 2 + n]), pos + 2 + n


def dec_props(b, pos):
    """(Props, new position) from the Property Length at b[pos]."""
    n, pos = dec_varint(b, pos)
    end = pos + n
    if end > len(b):
        raise ProtocolError("property length %d past the packet end" % n)
    out = Props()
    while pos < end:
        pid, pos = dec_varint(b, pos)
        kind = PROP_TYPES.get(pid)
        if kind is None:
            raise ProtocolError("unknown property 0x%x" % pid)
        if kind == _BYTE:
            v = b[pos]
            pos += 1
        elif kind == _U16:
            (v,) = struct.unpack_from("!H", b, pos)
            pos += 2
        elif kind == _U32:
            (v,) = struct.unpack_from("!I", b, pos)
            pos += 4
        elif kind == _VBI:
            v, pos = dec_varint(b, pos)
        elif kind in (_STR, _BIN):
            v, pos = _dec_str(b, pos)
        else:
            k, pos = _dec_str(b, pos)
            val, pos = _dec_str(b, pos)
            v = (k, val)
        out.append((pid, v))
    if pos != end:
        raise ProtocolError("properties overrun their length")
    return out, end


class Packet5:
    """One decoded 5.0 packet from the broker.

    Always: type, flags, body, raw, props (Props, empty if none), rc (reason
    code, 0 for the short forms), pid (None if the type has none).
    CONNACK: session_present, ack_flags. PUBLISH: topic, qos, dup, retain,
    payload. SUBACK/UNSUBACK: codes.
    """

    def __init__(self, first, body, raw):
        self.type = first >> 4
        self.flags = first & 0x0F
        self.body = body
        self.raw = raw
        self.pid = None
        self.rc = 0
        self.props = Props()
        self.codes = None
        try:
            self._parse()
        except (IndexError, struct.error) as e:
            raise ProtocolError("%s: cannot parse %r (%s)" % (self.name, raw, e))

    @property
    def name(self):
        return NAMES.get(self.type, str(self.type))

    def _parse(self):
        t, b = self.type, self.body
        if t == CONNACK:
            self.ack_flags = b[0]
            self.session_present = b[0] & 1
            self.rc = b[1]
            self.props, end = dec_props(b, 2)
            if end != len(b):
                raise ProtocolError("CONNACK: bytes after the properties")
        elif t == PUBLISH:
            self.dup = bool(self.flags & 0x08)
            self.qos = (self.flags >> 1) & 3
            self.retain = bool(self.flags & 0x01)
            if self.qos == 3:
                raise ProtocolError("PUBLISH with QoS 3 from broker")
            self.topic, pos = _dec_str(b, 0)
            if self.qos:
                (self.pid,) = struct.unpack_from("!H", b, pos)
                pos += 2
            self.props, pos = dec_props(b, pos)
            self.payload = bytes(b[pos:])
        elif t in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            (self.pid,) = struct.unpack_from("!H", b, 0)
            if len(b) > 2:
                self.rc = b[2]
            if len(b) > 3:
                self.props, end = dec_props(b, 3)
                if end != len(b):
                    raise ProtocolError("%s: bytes after the properties" % self.name)
        elif t in (SUBACK, UNSUBACK):
            (self.pid,) = struct.unpack_from("!H", b, 0)
            self.props, pos = dec_props(b, 2)
            self.codes = list(b[pos:])
        elif t in (DISCONNECT, AUTH):
            if len(b) > 0:
                self.rc = b[0]
            if len(b) > 1:
                self.props, end = dec_props(b, 1)
                if end != len(b):
                    raise ProtocolError("%s: bytes after the properties" % self.name)
        elif t == PINGRESP:
            if b:
                raise ProtocolError("PINGRESP with a body")

    def user_properties(self):
        return self.props.all(USER_PROPERTY)

    def __repr__(self):
        extra = ""
        if self.type == CONNACK:
            extra = " sp=%d rc=0x%02x" % (self.session_present, self.rc)
        elif self.type == PUBLISH:
            extra = " topic=%r qos=%d dup=%d retain=%d pid=%r payload=%r" % (
                self.topic, self.qos, self.dup, self.retain, self.pid,
                self.payload[:40])
        elif self.type in (SUBACK, UNSUBACK):
            extra = " pid=%d codes=%r" % (self.pid, self.codes)
        elif self.pid is not None:
            extra = " pid=%d rc=0x%02x" % (self.pid, self.rc)
        elif self.type in (DISCONNECT, AUTH):
            extra = " rc=0x%02x" % self.rc
        if self.props:
            extra += " props=%r" % (list(self.props),)
        return "<%s flags=0x%x%s>" % (self.name, self.flags, extra)


def decode_one(buf):
    """(Packet5, bytes consumed) from the front of buf, or (None, 0)."""
    if len(buf) < 2:
        return None, 0
    mult, rl, pos = 1, 0, 1
    while True:
        if pos >= len(buf):
            return None, 0
        byte = buf[pos]
        rl += (byte & 0x7F) * mult
        pos += 1
        if not byte & 0x80:
            break
        mult *= 128
        if pos > 4:
            raise ProtocolError("remaining length over 4 bytes: %r" % buf[:6])
    if len(buf) < pos + rl:
        return None, 0
    raw = bytes(buf[:pos + rl])
    return Packet5(buf[0], raw[pos:], raw), pos + rl


# --------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------

class Client5(m.RawClient):
    """RawClient speaking MQTT 5.0 (decoder and helpers)."""

    def __init__(self, host, port, **kw):
        super().__init__(host, port, **kw)
        self.connack = None

    def recv(self, timeout=DEFAULT_TIMEOUT):
        if self.backlog:
            return self.backlog.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            pkt, used = decode_one(self.buf)
            if pkt is not None:
                del self.buf[:used]
                return pkt
            try:
                self._fill(deadline)
            except Closed as e:
                if self.buf:
                    raise Closed("%s with %d stray bytes %r"
                                 % (e, len(self.buf), bytes(self.buf[:16])))
                raise

    # -- MQTT helpers ----------------------------------------------------

    def handshake(self, client_id="", expect_rc=0, timeout=DEFAULT_TIMEOUT, **kw):
        """CONNECT (kwargs as for connect()); returns the CONNACK (Packet5)
        after checking its reason code."""
        self.send(connect(client_id, **kw))
        ack = self.expect(CONNACK, timeout)
        assert ack.rc == expect_rc, "CONNACK rc 0x%02x, expected 0x%02x (%r)" % (
            ack.rc, expect_rc, ack)
        self.connack = ack
        return ack

    def subscribe(self, topics, pid=None, props=None, timeout=DEFAULT_TIMEOUT):
        """SUBSCRIBE [(filter, options-byte)] or one filter at QoS 0;
        returns the SUBACK reason codes."""
        return self.subscribe_ack(topics, pid, props, timeout).codes

    def subscribe_ack(self, topics, pid=None, props=None, timeout=DEFAULT_TIMEOUT):
        if isinstance(topics, (str, bytes)):
            topics = [(topics, 0)]
        pid = self.next_pid() if pid is None else pid
        self.send(subscribe(pid, topics, props))
        ack = self.expect(SUBACK, timeout, stash=True)
        assert ack.pid == pid, "SUBACK pid %d for SUBSCRIBE pid %d" % (ack.pid, pid)
        return ack

    def unsubscribe(self, filters, pid=None, props=None, timeout=DEFAULT_TIMEOUT):
        """Returns the UNSUBACK reason codes."""
        if isinstance(filters, (str, bytes)):
            filters = [filters]
        pid = self.next_pid() if pid is None else pid
        self.send(unsubscribe(pid, filters, props))
        ack = self.expect(UNSUBACK, timeout, stash=True)
        assert ack.pid == pid, "UNSUBACK pid %d for UNSUBSCRIBE pid %d" % (ack.pid, pid)
        return ack.codes

    def publish(self, topic, payload=b"", qos=0, retain=False, pid=None,
                props=None, timeout=DEFAULT_TIMEOUT):
        """Publish and complete the sender side of the QoS flow. Returns the
        PUBACK (QoS 1), the PUBREC (QoS 2) or None (QoS 0)."""
        if qos and pid is None:
            pid = self.next_pid()
        self.send(publish(topic, payload, qos=qos, retain=retain, pid=pid, props=props))
        if qos == 1:
            ack = self.expect(PUBACK, timeout, stash=True)
            assert ack.pid == pid, "PUBACK pid %d for PUBLISH pid %d" % (ack.pid, pid)
            return ack
        if qos == 2:
            rec = self.expect(PUBREC, timeout, stash=True)
            assert rec.pid == pid, "PUBREC pid %d for PUBLISH pid %d" % (rec.pid, pid)
            if rec.rc < 0x80:
                self.send(pubrel(pid))
                comp = self.expect(PUBCOMP, timeout, stash=True)
                assert comp.pid == pid, "PUBCOMP pid %d for PUBREL pid %d" % (comp.pid, pid)
                assert comp.rc == 0, "PUBCOMP rc 0x%02x" % comp.rc
            return rec
        return None

    def ack(self, pkt, timeout=DEFAULT_TIMEOUT):
        if pkt.qos == 1:
            self.send(puback(pkt.pid))
        elif pkt.qos == 2:
            self.send(pubrec(pkt.pid))
            rel = self.expect(PUBREL, timeout, stash=True)
            assert rel.flags == 0x02, "PUBREL flags 0x%x" % rel.flags
            assert rel.pid == pkt.pid, "PUBREL pid %d for PUBREC pid %d" % (rel.pid, pkt.pid)
            self.send(pubcomp(pkt.pid))

    def expect_disconnect(self, rc, timeout=DEFAULT_TIMEOUT):
        """The broker must send DISCONNECT with reason rc (or one of a tuple
        of codes) and then close;
        packets that arrived before it are returned (and DISCONNECT is
        checked to be the last packet)."""
        got = self.expect_closed(timeout)
        discs = [p for p in got if p.type == DISCONNECT]
        assert discs, "closed without a DISCONNECT (got %r)" % (got,)
        assert got[-1].type == DISCONNECT, \
            "[MQTT-3.14.4-1] v5: packets after DISCONNECT: %r" % (got,)
        assert len(discs) == 1, "more than one DISCONNECT: %r" % (got,)
        d = discs[0]
        allowed = rc if isinstance(rc, (tuple, list, set)) else (rc,)
        assert d.rc in allowed, "DISCONNECT reason 0x%02x, expected %s (%r)" % (
            d.rc, "/".join("0x%02x" % x for x in allowed), d)
        # [MQTT-3.14.2-2] v5: a server DISCONNECT never carries a Session
        # Expiry Interval
        assert not d.props.has(SESSION_EXPIRY_INTERVAL), d
        return got[:-1]

    def disconnect(self, rc=0, props=None, timeout=DEFAULT_TIMEOUT):
        """DISCONNECT with reason rc (and properties), half-close, and wait
        (bounded) for the broker to close its side."""
        try:
            self.send(disconnect(rc, props))
            self.sock.shutdown(socket.SHUT_WR)
            got = self.expect_closed(timeout)
            assert not [p for p in got if p.type == DISCONNECT], \
                "broker answered a DISCONNECT with %r" % (got,)
        finally:
            self.close()


def client(clients, broker, **kw):
    """A Client5 registered with the `clients` fixture (closed at teardown)."""
    c = Client5(broker.host, broker.port, **kw)
    clients._open.append(c)
    return c
