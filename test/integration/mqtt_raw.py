"""Raw-socket MQTT 3.1 / 3.1.1 client for exact protocol checks.

Two layers:
  * encoders (connect(), publish(), subscribe(), ...) that return the exact
    bytes of one packet, with knobs to break any field on purpose, and
    decode()/Packet for what the broker sends back;
  * RawClient, a blocking TCP client with a receive buffer, where every
    wait has a deadline: recv(), expect(), expect_nothing(), expect_closed().

Nothing here sleeps to synchronise: waits end on an event (a packet, EOF,
ECONNRESET) or on their deadline.
"""

import errno
import socket
import struct
import time

CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
PUBREC = 5
PUBREL = 6
PUBCOMP = 7
SUBSCRIBE = 8
SUBACK = 9
UNSUBSCRIBE = 10
UNSUBACK = 11
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14

NAMES = {
    0: "RESERVED0", 1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK",
    5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK",
    10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
    14: "DISCONNECT", 15: "RESERVED15",
}

# (protocol name, protocol level)
V31 = (b"MQIsdp", 3)
V311 = (b"MQTT", 4)

DEFAULT_TIMEOUT = 5.0


# --------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------

def _b(s):
    """str -> UTF-8 bytes; bytes pass through untouched (for invalid UTF-8)."""
    if isinstance(s, bytes):
        return s
    return s.encode("utf-8")


def enc_varint(n):
    """Remaining Length encoding (1 to 4 bytes, 7 bits each)."""
    if n < 0 or n > 268435455:
        raise ValueError("remaining length out of range: %d" % n)
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        if n:
            byte |= 0x80
        out.append(byte)
        if not n:
            return bytes(out)


def enc_str(s):
    """MQTT UTF-8 string: two-byte big-endian length, then the bytes."""
    data = _b(s)
    return struct.pack("!H", len(data)) + data


def packet(ptype, flags, body=b"", remaining_length=None):
    """A whole packet. remaining_length overrides the true length (to lie)."""
    rl = len(body) if remaining_length is None else remaining_length
    return bytes([(ptype << 4) | (flags & 0x0F)]) + enc_varint(rl) + body


def connect(client_id="", clean=True, keepalive=60, will=None,
            username=None, password=None, version=4, proto_name=None,
            proto_level=None, flags=None, payload=None, extra=b""):
    """CONNECT. version 4 = MQTT 3.1.1 ("MQTT"), 3 = MQTT 3.1 ("MQIsdp").

    will: dict(topic=..., payload=b"", qos=0, retain=False)
    flags: if not None, the Connect Flags byte exactly as given (the payload
           is still built from the other arguments unless payload is given).
    payload: if not None, the payload bytes exactly as given.
    extra: bytes appended after the payload (inside the packet).
    """
    if proto_name is None:
        proto_name = b"MQIsdp" if version == 3 else b"MQTT"
    level = version if proto_level is None else proto_level
    f = 0
    if clean:
        f |= 0x02
    if will is not None:
        f |= 0x04
        f |= (will.get("qos", 0) & 3) << 3
        if will.get("retain"):
            f |= 0x20
    if password is not None:
        f |= 0x40
    if username is not None:
        f |= 0x80
    if flags is not None:
        f = flags
    var = enc_str(proto_name) + bytes([level, f]) + struct.pack("!H", keepalive)
    if payload is None:
        payload = enc_str(client_id)
        if will is not None:
            payload += enc_str(will["topic"]) + enc_str(will.get("payload", b""))
        if username is not None:
            payload += enc_str(username)
        if password is not None:
            payload += enc_str(password)
    return packet(CONNECT, 0, var + payload + extra)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, pid=None,
            flags=None):
    """PUBLISH. A packet id is written only for QoS 1/2 (pid required)."""
    f = (0x08 if dup else 0) | ((qos & 3) << 1) | (0x01 if retain else 0)
    if flags is not None:
        f = flags
    body = enc_str(topic)
    if (f >> 1) & 3:
        if pid is None:
            raise ValueError("QoS > 0 PUBLISH needs a packet id")
        body += struct.pack("!H", pid)
    body += _b(payload)
    return packet(PUBLISH, f, body)


def _ack(ptype, pid, flags):
    return packet(ptype, flags, struct.pack("!H", pid))


def puback(pid, flags=0):
    return _ack(PUBACK, pid, flags)


def pubrec(pid, flags=0):
    return _ack(PUBREC, pid, flags)


def pubrel(pid, flags=2):
    return _ack(PUBREL, pid, flags)


def pubcomp(pid, flags=0):
    return _ack(PUBCOMP, pid, flags)


def subscribe(pid, topics, flags=2):
    """topics: list of (filter, requested-QoS-byte)."""
    body = struct.pack("!H", pid)
    for flt, qos in topics:
        body += enc_str(flt) + bytes([qos])
    return packet(SUBSCRIBE, flags, body)


def unsubscribe(pid, filters, flags=2):
    body = struct.pack("!H", pid)
    for flt in filters:
        body += enc_str(flt)
    return packet(UNSUBSCRIBE, flags, body)


def pingreq(flags=0):
    return packet(PINGREQ, flags)


def disconnect(flags=0):
    return packet(DISCONNECT, flags)


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------

class ProtocolError(AssertionError):
    """The broker sent bytes that are not a valid MQTT 3.1.1 packet."""


class Packet:
    """One decoded packet from the broker.

    Always: type, flags, body (raw bytes after the fixed header), raw (the
    whole packet). Per type: CONNACK session_present, ack_flags, rc;
    PUBLISH topic (bytes), qos, dup, retain, pid (None for QoS 0), payload;
    PUBACK..PUBCOMP, UNSUBACK pid; SUBACK pid, codes (list of ints).
    """

    def __init__(self, first, body, raw):
        self.type = first >> 4
        self.flags = first & 0x0F
        self.body = body
        self.raw = raw
        self.pid = None
        self._parse()

    @property
    def name(self):
        return NAMES[self.type]

    def _need(self, n):
        if len(self.body) < n:
            raise ProtocolError("%s too short: %r" % (self.name, self.raw))

    def _parse(self):
        t, b = self.type, self.body
        if t == CONNACK:
            if len(b) != 2:
                raise ProtocolError("CONNACK remaining length %d" % len(b))
            self.ack_flags = b[0]
            self.session_present = b[0] & 0x01
            self.rc = b[1]
        elif t == PUBLISH:
            self.dup = bool(self.flags & 0x08)
            self.qos = (self.flags >> 1) & 3
            self.retain = bool(self.flags & 0x01)
            if self.qos == 3:
                raise ProtocolError("PUBLISH with QoS 3 from broker")
            self._need(2)
            (tlen,) = struct.unpack_from("!H", b, 0)
            self._need(2 + tlen)
            self.topic = b[2:2 + tlen]
            pos = 2 + tlen
            if self.qos:
                self._need(pos + 2)
                (self.pid,) = struct.unpack_from("!H", b, pos)
                pos += 2
            self.payload = b[pos:]
        elif t in (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK):
            if len(b) != 2:
                raise ProtocolError("%s remaining length %d" % (self.name, len(b)))
            (self.pid,) = struct.unpack("!H", b)
        elif t == SUBACK:
            self._need(3)
            (self.pid,) = struct.unpack_from("!H", b, 0)
            self.codes = list(b[2:])
        elif t == PINGRESP:
            if b:
                raise ProtocolError("PINGRESP with a body")

    def __repr__(self):
        extra = ""
        if self.type == CONNACK:
            extra = " sp=%d rc=%d" % (self.session_present, self.rc)
        elif self.type == PUBLISH:
            extra = " topic=%r qos=%d dup=%d retain=%d pid=%r payload=%r" % (
                self.topic, self.qos, self.dup, self.retain, self.pid,
                self.payload[:40])
        elif self.type == SUBACK:
            extra = " pid=%d codes=%r" % (self.pid, self.codes)
        elif self.pid is not None:
            extra = " pid=%d" % self.pid
        return "<%s flags=0x%x%s>" % (self.name, self.flags, extra)


def decode_one(buf):
    """(Packet, bytes consumed) from the front of buf, or (None, 0) if buf
    does not yet hold a whole packet."""
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
    return Packet(buf[0], raw[pos:], raw), pos + rl


# --------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------

class Closed(Exception):
    """The broker closed the connection (EOF or reset)."""


class RawClient:
    """Blocking MQTT client over one TCP socket; every wait has a deadline."""

    def __init__(self, host, port, timeout=DEFAULT_TIMEOUT, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.backlog = []          # packets set aside by expect(stash=True)
        self.closed = False
        self._next_pid = 1

    # -- plumbing --------------------------------------------------------

    def next_pid(self):
        pid = self._next_pid
        self._next_pid = pid % 65535 + 1
        return pid

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Drop the connection without DISCONNECT, with a TCP reset (as a
        crashed client or a broken network would)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def _fill(self, deadline):
        """Read more bytes into buf before deadline. Raises Closed on EOF or
        reset, TimeoutError on deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError from None
        except OSError as e:
            if e.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
                self.closed = True
                raise Closed("connection reset") from None
            raise
        if not data:
            self.closed = True
            raise Closed("EOF")
        self.buf += data

    def recv(self, timeout=DEFAULT_TIMEOUT):
        """Next packet. Raises TimeoutError if none before the deadline and
        Closed if the connection ends first (bytes of a partial packet left
        in the buffer at EOF are reported in the Closed message)."""
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

    def expect(self, ptype, timeout=DEFAULT_TIMEOUT, stash=False):
        """Wait for a packet of ptype. Any other packet fails the test unless
        stash=True, where it is kept (in order) for later recv() calls."""
        if stash:
            for i, pkt in enumerate(self.backlog):
                if pkt.type == ptype:
                    return self.backlog.pop(i)
        elif self.backlog:
            pkt = self.backlog.pop(0)
            if pkt.type != ptype:
                raise AssertionError("expected %s, got %r" % (NAMES[ptype], pkt))
            return pkt
        deadline = time.monotonic() + timeout
        saved, self.backlog = self.backlog, []
        try:
            while True:
                try:
                    pkt = self.recv(deadline - time.monotonic())
                except TimeoutError:
                    raise AssertionError("no %s within %.1fs (other packets: %r)"
                                         % (NAMES[ptype], timeout, saved)) from None
                except Closed as e:
                    raise AssertionError("connection closed (%s) while waiting for %s"
                                         " (other packets: %r)"
                                         % (e, NAMES[ptype], saved)) from None
                if pkt.type == ptype:
                    return pkt
                if not stash:
                    raise AssertionError("expected %s, got %r" % (NAMES[ptype], pkt))
                saved.append(pkt)
        finally:
            self.backlog = saved + self.backlog

    def expect_nothing(self, duration):
        """Bounded negative wait: assert that no packet arrives and the
        connection stays open for `duration` seconds."""
        if self.backlog:
            raise AssertionError("unexpected packet %r" % self.backlog[0])
        try:
            pkt = self.recv(duration)
        except TimeoutError:
            return
        except Closed as e:
            raise AssertionError("connection closed (%s), expected it to stay open" % e)
        raise AssertionError("unexpected packet %r" % pkt)

    def expect_closed(self, timeout=DEFAULT_TIMEOUT):
        """Wait until the broker closes the connection (EOF or ECONNRESET).
        Returns the packets that arrived before the close (tests assert on
        them, e.g. "no CONNACK"). Fails if the connection is still open at
        the deadline."""
        got = list(self.backlog)
        self.backlog = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                got.append(self.recv(max(0.0, deadline - time.monotonic())))
            except Closed:
                return got
            except TimeoutError:
                raise AssertionError("connection still open after %.1fs (got %r)"
                                     % (timeout, got)) from None
            except ProtocolError:
                # garbage from the broker: still wait for the close
                self.buf.clear()

    # -- MQTT helpers ----------------------------------------------------

    def handshake(self, client_id="", expect_rc=0, timeout=DEFAULT_TIMEOUT, **kw):
        """Send CONNECT (kwargs as for connect()) and return the CONNACK,
        asserting its return code."""
        self.send(connect(client_id, **kw))
        ack = self.expect(CONNACK, timeout)
        assert ack.rc == expect_rc, "CONNACK rc %d, expected %d" % (ack.rc, expect_rc)
        return ack

    def subscribe(self, topics, pid=None, timeout=DEFAULT_TIMEOUT):
        """SUBSCRIBE [(filter, qos), ...] or a single filter string at QoS 0;
        returns the SUBACK codes. PUBLISHes arriving before the SUBACK (e.g.
        retained ones) are kept for recv()."""
        if isinstance(topics, (str, bytes)):
            topics = [(topics, 0)]
        pid = self.next_pid() if pid is None else pid
        self.send(subscribe(pid, topics))
        ack = self.expect(SUBACK, timeout, stash=True)
        assert ack.pid == pid, "SUBACK pid %d for SUBSCRIBE pid %d" % (ack.pid, pid)
        return ack.codes

    def unsubscribe(self, filters, pid=None, timeout=DEFAULT_TIMEOUT):
        if isinstance(filters, (str, bytes)):
            filters = [filters]
        pid = self.next_pid() if pid is None else pid
        self.send(unsubscribe(pid, filters))
        ack = self.expect(UNSUBACK, timeout, stash=True)
        assert ack.pid == pid, "UNSUBACK pid %d for UNSUBSCRIBE pid %d" % (ack.pid, pid)

    def publish(self, topic, payload=b"", qos=0, retain=False, pid=None,
                timeout=DEFAULT_TIMEOUT):
        """Publish and complete the sender side of the QoS flow (PUBACK, or
        PUBREC/PUBREL/PUBCOMP), checking the packet ids. Returns the pid."""
        if qos and pid is None:
            pid = self.next_pid()
        self.send(publish(topic, payload, qos=qos, retain=retain, pid=pid))
        if qos == 1:
            ack = self.expect(PUBACK, timeout, stash=True)
            assert ack.pid == pid, "PUBACK pid %d for PUBLISH pid %d" % (ack.pid, pid)
        elif qos == 2:
            rec = self.expect(PUBREC, timeout, stash=True)
            assert rec.pid == pid, "PUBREC pid %d for PUBLISH pid %d" % (rec.pid, pid)
            self.send(pubrel(pid))
            comp = self.expect(PUBCOMP, timeout, stash=True)
            assert comp.pid == pid, "PUBCOMP pid %d for PUBREL pid %d" % (comp.pid, pid)
        return pid

    def expect_publish(self, timeout=DEFAULT_TIMEOUT, ack=True):
        """Next packet must be a PUBLISH; with ack=True the receiver side of
        its QoS flow is completed (PUBACK, or PUBREC/PUBREL/PUBCOMP)."""
        pkt = self.expect(PUBLISH, timeout)
        if ack:
            self.ack(pkt, timeout)
        return pkt

    def ack(self, pkt, timeout=DEFAULT_TIMEOUT):
        if pkt.qos == 1:
            self.send(puback(pkt.pid))
        elif pkt.qos == 2:
            self.send(pubrec(pkt.pid))
            rel = self.expect(PUBREL, timeout, stash=True)
            assert rel.flags == 0x02, "PUBREL flags 0x%x" % rel.flags
            assert rel.pid == pkt.pid, "PUBREL pid %d for PUBREC pid %d" % (rel.pid, pkt.pid)
            self.send(pubcomp(pkt.pid))

    def expect_marker(self, marker_client, topic, timeout=DEFAULT_TIMEOUT):
        """Event-based "nothing arrived" check: marker_client publishes a
        QoS 1 marker on `topic` (which this client is subscribed to) and the
        next packet here must be that marker. Anything the broker routed to
        us before the marker (e.g. a message it should have dropped) shows
        up first and fails the check."""
        payload = b"marker-%d" % self.next_pid()
        marker_client.publish(topic, payload, qos=1, timeout=timeout)
        pkt = self.expect_publish(timeout)
        assert (pkt.topic, pkt.payload) == (_b(topic), payload), \
            "expected the marker on %r, got %r" % (topic, pkt)
        return pkt

    def ping(self, timeout=DEFAULT_TIMEOUT):
        self.send(pingreq())
        self.expect(PINGRESP, timeout)

    def disconnect(self, timeout=DEFAULT_TIMEOUT):
        """Send DISCONNECT, half-close, and wait (bounded) until the broker
        has closed its side too, so that whatever the broker does at
        disconnect time has happened before the test goes on."""
        try:
            self.send(disconnect())
            self.sock.shutdown(socket.SHUT_WR)
            self.expect_closed(timeout)
        finally:
            self.close()


def expect_closed(sock, timeout=DEFAULT_TIMEOUT):
    """Wait for EOF or ECONNRESET on a plain socket; returns the bytes read
    before it. Fails if the socket is still open at the deadline."""
    deadline = time.monotonic() + timeout
    got = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("socket still open after %.1fs (read %r)"
                                 % (timeout, bytes(got[:64])))
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError as e:
            if e.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
                return bytes(got)
            raise
        if not data:
            return bytes(got)
        got += data
