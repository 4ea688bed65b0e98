#!/usr/bin/env python3
"""Writes the checked-in seed corpus of the MQTT decode fuzz target
(test/fuzz/corpus/decode/): valid packets of every type in MQTT 3.1, 3.1.1
and 5.0, and a few edge and malformed forms. Run it from anywhere; it
rewrites the files it owns and leaves others alone."""

import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus",
                   "decode")


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def s(x):
    if isinstance(x, str):
        x = x.encode()
    return struct.pack(">H", len(x)) + x


def u16(n):
    return struct.pack(">H", n)


def u32(n):
    return struct.pack(">I", n)


def props(*items):
    body = b"".join(items)
    return varint(len(body)) + body


def pkt(b0, *parts):
    body = b"".join(parts)
    return bytes([b0]) + varint(len(body)) + body


def user(k, v):
    return b"\x26" + s(k) + s(v)


SEEDS = {
    # CONNECT
    "connect_v31": pkt(0x10, s("MQIsdp"), b"\x03\x02", u16(60), s("old")),
    "connect_v311_spec": pkt(0x10, s("MQTT"), b"\x04\xce", u16(10), s("cid"),
                             s("w/t"), s("by"), s("bob"), s("pwd")),
    "connect_v311_empty_id": pkt(0x10, s("MQTT"), b"\x04\x02", u16(0), s("")),
    "connect_v5_full": pkt(
        0x10, s("MQTT"), b"\x05\xee", u16(60),
        props(b"\x11" + u32(120), b"\x21" + u16(10), b"\x22" + u16(5),
              b"\x27" + u32(4096), b"\x17\x01", b"\x19\x01", user("k", "v"),
              b"\x15" + s("m"), b"\x16" + s(b"\x00\xff")),
        s("id"),
        props(b"\x18" + u32(10), b"\x01\x01", b"\x02" + u32(60),
              b"\x03" + s("text"), b"\x08" + s("r/t"), b"\x09" + s("ab"),
              user("a", "b")),
        s("w/t"), s(b"\x00xx"), s("u"), s(b"pw")),
    "connect_v5_password_only": pkt(0x10, s("MQTT"), b"\x05\x42", u16(0),
                                    props(), s("c"), s("secret")),
    # CONNACK
    "connack_v311": pkt(0x20, b"\x01\x00"),
    "connack_v5_props": pkt(
        0x20, b"\x00\x00",
        props(b"\x11" + u32(0), b"\x12" + s("auto-1"), b"\x13" + u16(30),
              b"\x21" + u16(100), b"\x22" + u16(10), b"\x24\x01",
              b"\x25\x00", b"\x27" + u32(1 << 20), b"\x28\x01", b"\x29\x01",
              b"\x2a\x00", b"\x1a" + s("resp/"), b"\x1c" + s("srv"),
              b"\x1f" + s("ok"), user("x", "y"))),
    # PUBLISH
    "publish_qos0": pkt(0x30, s("a/b"), b"hello"),
    "publish_qos1_retain_v311": pkt(0x33, s("sensors/t"), u16(1), b"21.5"),
    "publish_qos2_dup_v5": pkt(
        0x3C, s("t"), u16(0xFFFF),
        props(b"\x01\x01", b"\x02" + u32(3600), b"\x03" + s("json"),
              b"\x08" + s("reply"), b"\x09" + s(b"\x01\x02"),
              b"\x0b" + varint(1), b"\x0b" + varint(268435455),
              user("k", "1"), b"\x23" + u16(3), user("k", "2")),
        b"{}"),
    "publish_v5_alias_empty_topic": pkt(0x30, s(""), props(b"\x23" + u16(1)),
                                        b"x"),
    "publish_2byte_length": pkt(0x30, s("big"), b"z" * 300),
    # acks
    "puback_v311": pkt(0x40, u16(1)),
    "pubrec_v5_rc": pkt(0x50, u16(2), b"\x10"),
    "pubrel_v5_props": pkt(0x62, u16(3), b"\x92",
                           props(b"\x1f" + s("gone"), user("a", "b"))),
    "pubcomp_v5": pkt(0x70, u16(4), b"\x00", props()),
    # SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK
    "subscribe_v311": pkt(0x82, u16(10), s("a/+/c"), b"\x01", s("#"),
                          b"\x02"),
    "subscribe_v5_opts": pkt(0x82, u16(11),
                             props(b"\x0b" + varint(42), user("s", "u")),
                             s("$SYS/#"), b"\x2d", s("x/y"), b"\x18"),
    "suback_v311": pkt(0x90, u16(10), b"\x00\x01\x02\x80"),
    "suback_v5": pkt(0x90, u16(11), props(b"\x1f" + s("no")),
                     b"\x00\x8f\xa2"),
    "unsubscribe_v311": pkt(0xA2, u16(12), s("a/#"), s("+")),
    "unsubscribe_v5": pkt(0xA2, u16(13), props(user("u", "v")), s("a")),
    "unsuback_v311": pkt(0xB0, u16(12)),
    "unsuback_v5": pkt(0xB0, u16(13), props(), b"\x00\x11"),
    # the rest
    "pingreq": pkt(0xC0),
    "pingresp": pkt(0xD0),
    "disconnect_v311": pkt(0xE0),
    "disconnect_v5_props": pkt(0xE0, b"\x04",
                               props(b"\x11" + u32(0), b"\x1f" + s("bye"),
                                     b"\x1c" + s("other"))),
    "auth_v5": pkt(0xF0, b"\x18",
                   props(b"\x15" + s("SCRAM"), b"\x16" + s(b"\x00\x01"))),
    # edge and malformed forms
    "edge_two_packets": pkt(0x40, u16(1)) + pkt(0xC0),
    "edge_partial": pkt(0x30, s("partial"), b"payload")[:6],
    "bad_five_byte_length": b"\x30\xff\xff\xff\xff\x7f",
    "bad_reserved_flags": pkt(0x81, u16(1), s("a"), b"\x00"),
    "bad_publish_qos3": pkt(0x36, s("a"), u16(1)),
    "bad_utf8_surrogate": pkt(0x30, s(b"a\xed\xa0\x80")),
    "bad_dup_property": pkt(0x30, s("a"),
                            props(b"\x01\x01", b"\x01\x00")),
    "bad_props_past_end": pkt(0x40, u16(1), b"\x00\x09\x1f"),
    "bad_subscribe_empty": pkt(0x82, u16(1)),
    "bad_connect_version": pkt(0x10, s("MQTT"), b"\x07\x02", u16(60),
                               s("c")),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(SEEDS), OUT))


if __name__ == "__main__":
    main()
