#!/usr/bin/python3
"""Persistence benchmark (a script, not a test): prints numbers, asserts
nothing about speed.

1. QoS 1 publish rate into persistent sessions with [storage] durability
   sync, relaxed and none: mqbench subscribers with persistent sessions
   (-C false -x 3600) consume while mqbench publishers send QoS 1 with an
   in-flight window; the rate is acknowledged publishes per second.
2. Start-up time with many queued messages and retained messages: a fill
   phase queues N_QUEUED messages for offline persistent sessions and sets
   N_RETAINED retained messages, mqd is stopped (SIGTERM) and started
   again, and the time from exec to the listening port (and the "storage
   loaded" log line's own ms) is reported with the resident memory.

Usage: test/bench/persist.py [--mqd PATH] [--mqbench PATH] [--quick]
(--quick: 100,000 queued and 10,000 retained instead of 1,000,000 and
100,000, and shorter rate runs). Without --mqd/--mqbench it uses build/,
building it first when needed.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("mqd exited at start (status %s)" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.01)
    raise SystemExit("mqd did not listen within %ds" % timeout)


class Node:
    def __init__(self, mqd, data_dir, durability, extra=None):
        self.port = free_port()
        self.data_dir = data_dir
        self.log = open(os.path.join(data_dir, "..", "mqd-%d.log" % self.port), "w+")
        env = dict(os.environ, MQD_MQTT_PORT=str(self.port),
                   MQD_MQTT_BIND="127.0.0.1",
                   MQD_NODE_DATA_DIR=data_dir,
                   MQD_STORAGE_DURABILITY=durability,
                   MQD_STORAGE_MAX_SIZE="16G",
                   MQD_MQTT_MAX_QUEUED="100000",
                   MQD_MQTT_MAX_CONNECTIONS="20000",
                   MQD_NODE_LOG_LEVEL="info")
        env.update(extra or {})
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([mqd], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc)
        self.ready_s = time.monotonic() - self.t0

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def loaded_line(self):
        self.log.flush()
        with open(self.log.name) as f:
            m = re.search(r"storage loaded .*", f.read())
        return m.group(0) if m else ""

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(600)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- a minimal pipelined MQTT 3.1.1 client for the fill phase -------------

def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _pkt(t, flags, body):
    return bytes([t << 4 | flags]) + _varint(len(body)) + body


def _str(s):
    s = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(s)) + s


def connect(port, cid, clean=True):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body = _str("MQTT") + bytes([4, 0x02 if clean else 0]) + struct.pack("!H", 600) + _str(cid)
    s.sendall(_pkt(1, 0, body))
    read_packets(s, 1)
    return s


def read_packets(s, n, buf=bytearray()):
    """Reads n whole packets (their types), keeping leftovers in buf."""
    types = []
    while len(types) < n:
        while True:
            if len(buf) >= 2:
                mult, ln, i = 1, 0, 1
                while i < len(buf):
                    ln += (buf[i] & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not buf[i - 1] & 0x80:
                        break
                else:
                    i = None
                if i is not None and len(buf) >= i + ln:
                    types.append(buf[0] >> 4)
                    del buf[:i + ln]
                    break
            data = s.recv(1 << 20)
            if not data:
                raise SystemExit("connection closed during fill")
            buf += data
    return types


def fill(port, n_sessions, n_msgs, n_retained, payload=64):
    """n_sessions offline persistent sessions on fill/#, n_msgs QoS 1
    messages to them (n_sessions * n_msgs queued deliveries), n_retained
    retained QoS 1 messages on distinct topics nobody subscribes to."""
    for i in range(n_sessions):
        s = connect(port, "fill-%05d" % i, clean=False)
        s.sendall(_pkt(8, 2, struct.pack("!H", 1) + _str("fill/#") + b"\x01"))
        read_packets(s, 1, bytearray())
        s.sendall(_pkt(14, 0, b""))
        s.close()
    pub = connect(port, "fill-pub")
    body = b"q" * payload

    def burst(topics, retain):
        window, sent, acked, pid = 500, 0, 0, 0
        total = len(topics)
        buf = bytearray()
        while acked < total:
            out = bytearray()
            while sent < total and sent - acked < window:
                pid = pid % 65535 + 1
                out += _pkt(3, 0x02 | (1 if retain else 0),
                            _str(topics[sent]) + struct.pack("!H", pid) + body)
                sent += 1
            if out:
                pub.sendall(out)
            acked += len(read_packets(pub, 1, buf))
    burst(["fill/m"] * n_msgs, False)
    step = 10000
    for start in range(0, n_retained, step):
        burst(["ret/%d/%d" % (i // 1000, i) for i in range(start, min(start + step, n_retained))], True)
    pub.close()


# --- rate runs ---------------------------------------------------------------

def rate_run(mqd, mqbench, work, durability, n_msgs, clients):
    d = tempfile.mkdtemp(dir=work)
    node = Node(mqd, d, durability)
    try:
        sub = subprocess.Popen(
            [mqbench, "sub", "-p", str(node.port), "-c", str(clients), "-i", "1",
             "-C", "false", "-x", "3600", "-q", "1", "-t", "pr/%i",
             "-L", str(n_msgs), "--duration", "300", "--json", "--prefix", "prs",
             "--payload-hdrs", "cnt64,ts"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        # the subscribers are up once the broker counts their sessions:
        # mqbench prints nothing until the end, so wait for the log
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with open(node.log.name) as f:
                if f.read().count("client connected") >= clients:
                    break
            time.sleep(0.05)
        t0 = time.monotonic()
        pub = subprocess.run(
            [mqbench, "pub", "-p", str(node.port), "-c", str(clients), "-i", "1",
             "-q", "1", "-I", "0", "-F", "64", "-s", "256", "-t", "pr/%i",
             "-L", str(n_msgs), "--duration", "300", "--json", "--prefix", "prp",
             "--payload-hdrs", "cnt64,ts"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
        elapsed = time.monotonic() - t0
        sub_out, _ = sub.communicate(timeout=300)
        cpu = node_cpu(node)
    finally:
        node.stop()
        shutil.rmtree(d, ignore_errors=True)
    ps = json.loads(pub.stdout.decode() or "{}")
    ss = json.loads(sub_out.decode() or "{}")
    return ps, ss, elapsed, cpu


def node_cpu(node):
    with open("/proc/%d/stat" % node.proc.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mqd", default=os.path.join(ROOT, "build", "broker", "mqd"))
    ap.add_argument("--mqbench", default=os.path.join(ROOT, "build", "tools", "mqbench"))
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if not (os.path.exists(a.mqd) and os.path.exists(a.mqbench)):
        # build the default way (tools/deps installs meson and the libraries)
        build = os.path.join(ROOT, "build")
        if not os.path.exists(os.path.join(build, "build.ninja")):
            subprocess.run(["meson", "setup", build, ROOT], check=True)
        subprocess.run(["ninja", "-C", build], check=True)
    work = tempfile.mkdtemp(prefix="mqd-bench-")
    n_rate = 20000 if a.quick else 200000
    n_sessions, n_msgs = (100, 1000) if a.quick else (1000, 1000)
    n_retained = 10000 if a.quick else 100000
    try:
        print("machine: %s, %d cores, %s" % (
            os.uname().machine, os.cpu_count(), _mem()))
        print("\n1. QoS 1 publish rate into persistent sessions "
              "(10 publishers -> 10 persistent subscribers, 256 B, window 64)")
        print("%-10s %12s %12s %6s %6s %10s %10s" % (
            "durability", "acked/s", "received", "lost", "dup", "p99 ms", "mqd CPU s"))
        for dur in ("sync", "relaxed", "none"):
            ps, ss, elapsed, cpu = rate_run(a.mqd, a.mqbench, work, dur, n_rate, 10)
            acked = ps.get("pub_succ", 0)
            lat = ss.get("latency_us") or {}
            print("%-10s %12.0f %12d %6s %6s %10.1f %10.2f" % (
                dur, acked / elapsed if elapsed else 0, ss.get("recv", 0),
                ss.get("lost"), ss.get("dup"), lat.get("p99", 0) / 1000, cpu))
        print("\n2. start-up with %d queued messages (%d offline sessions x %d) "
              "and %d retained" % (n_sessions * n_msgs, n_sessions, n_msgs, n_retained))
        d = os.path.join(work, "startup")
        os.mkdir(d)
        node = Node(a.mqd, d, "relaxed")
        t0 = time.monotonic()
        fill(node.port, n_sessions, n_msgs, n_retained)
        print("fill: %.1f s" % (time.monotonic() - t0))
        node.stop()
        du = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        node = Node(a.mqd, d, "sync")
        print("data dir: %.1f MiB" % (du / 1048576))
        print("start-up to listening: %.2f s; RSS after load: %.0f MiB" % (
            node.ready_s, node.rss_kb() / 1024))
        print(node.loaded_line())
        node.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _mem():
    with open("/proc/meminfo") as f:
        kb = int(f.readline().split()[1])
    return "%.0f GiB RAM" % (kb / 1048576)


if __name__ == "__main__":
    sys.exit(main())
