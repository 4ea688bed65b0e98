"""Real MQTT clients for the integration tests: python3-paho-mqtt 1.6 and
Debian's mosquitto_sub / mosquitto_pub, next to the raw client of mqtt_raw.

Every wait has a deadline; callbacks of paho hand their events to the test
thread through queues and Events.
"""

import queue
import subprocess
import threading
import time

import paho.mqtt.client as mqtt

from mqtt_raw import RawClient

MOSQUITTO_SUB = "mosquitto_sub"
MOSQUITTO_PUB = "mosquitto_pub"
STDBUF = "stdbuf"
DEFAULT_TIMEOUT = 10.0
# mosquitto_sub output format: a marker, retain flag, QoS, topic, payload
SUB_FORMAT = "MSG|%r|%q|%t|%p"


class PahoClient:
    """paho.mqtt.client.Client running its network loop in a thread.

    Reconnection is disabled (a test that expects a disconnect must see it
    once, not a reconnect loop): on an unexpected disconnect the loop thread
    ends."""

    def __init__(self, broker, client_id="", clean_session=True,
                 protocol=mqtt.MQTTv311):
        self.broker = broker
        self.c = mqtt.Client(client_id=client_id, clean_session=clean_session,
                             protocol=protocol)
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.connack = None            # (flags dict, rc)
        self.disconnect_rc = None
        self._cond = threading.Condition()
        self._subacks = {}
        self._published = set()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_publish = self._on_publish
        self._thread = None

    # -- callbacks (paho's thread) ----------------------------------------

    def _on_connect(self, client, userdata, flags, rc):
        self.connack = (dict(flags), rc)
        self.connected.set()

    def _on_disconnect(self, client, userdata, rc):
        self.disconnect_rc = rc
        self.disconnected.set()

    def _on_message(self, client, userdata, msg):
        self.messages.put(msg)

    def _on_subscribe(self, client, userdata, mid, granted):
        with self._cond:
            self._subacks[mid] = list(granted)
            self._cond.notify_all()

    def _on_publish(self, client, userdata, mid):
        with self._cond:
            self._published.add(mid)
            self._cond.notify_all()

    # -- test-side API ---------------------------------------------------

    def will_set(self, topic, payload=None, qos=0, retain=False):
        self.c.will_set(topic, payload, qos, retain)

    def connect(self, keepalive=60, timeout=DEFAULT_TIMEOUT, expect_rc=0):
        """Connect, start the loop thread, wait for CONNACK; returns flags."""
        self.c.connect(self.broker.host, self.broker.port, keepalive)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        assert self.connected.wait(timeout), "paho: no CONNACK within %.0fs" % timeout
        flags, rc = self.connack
        assert rc == expect_rc, "paho: CONNACK rc %d, expected %d" % (rc, expect_rc)
        return flags

    def _loop(self):
        # loop() until disconnected; unlike loop_forever() it never reconnects
        while not self.disconnected.is_set():
            rc = self.c.loop(timeout=0.1)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                if not self.disconnected.is_set():
                    self.disconnect_rc = rc
                    self.disconnected.set()
                break

    def _wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.disconnected.is_set():
                    raise AssertionError("paho: %s (disconnected=%s)"
                                         % (what, self.disconnected.is_set()))
                self._cond.wait(min(remaining, 0.2))

    def subscribe(self, topic, qos=0, timeout=DEFAULT_TIMEOUT):
        """Subscribe (topic may be a list of (filter, qos)); returns the
        granted QoS list from the SUBACK."""
        rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, "paho subscribe rc %d" % rc
        self._wait(lambda: mid in self._subacks, timeout, "no SUBACK for mid %d" % mid)
        return self._subacks[mid]

    def publish(self, topic, payload=None, qos=0, retain=False, timeout=DEFAULT_TIMEOUT):
        """Publish and wait until paho reports it complete (sent for QoS 0,
        PUBACK for 1, PUBCOMP for 2)."""
        info = self.c.publish(topic, payload, qos, retain)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, "paho publish rc %d" % info.rc
        self._wait(lambda: info.mid in self._published, timeout,
                   "publish mid %d not completed" % info.mid)
        return info.mid

    def get_message(self, timeout=DEFAULT_TIMEOUT):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("paho: no message within %.1fs" % timeout) from None

    def expect_no_message(self, duration):
        """Bounded negative wait: no message for `duration` seconds."""
        try:
            msg = self.messages.get(timeout=duration)
        except queue.Empty:
            return
        raise AssertionError("paho: unexpected message %s %r" % (msg.topic, msg.payload))

    def disconnect(self, timeout=DEFAULT_TIMEOUT):
        """Clean MQTT DISCONNECT, then wait for the loop thread to end."""
        if not self.disconnected.is_set():
            self.c.disconnect()
            self.disconnected.wait(timeout)
        self.close()

    def close(self):
        self.disconnected.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        try:
            self.c.socket() and self.c.socket().close()
        except Exception:
            pass


class Paho5Client(PahoClient):
    """PahoClient speaking MQTT 5.0 (paho's v5 callback signatures; Clean
    Start and CONNECT properties on connect(); subscription options and
    properties on subscribe(); PUBLISH properties on publish())."""

    def __init__(self, broker, client_id=""):
        # paho refuses a clean_session argument for 5.0 (Clean Start is a
        # connect() argument there)
        super().__init__(broker, client_id, clean_session=None,
                         protocol=mqtt.MQTTv5)
        self.connack_props = None

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self.connack = (dict(flags), rc.value if hasattr(rc, "value") else rc)
        self.connack_props = properties
        self.connected.set()

    def _on_disconnect(self, client, userdata, rc, properties=None):
        self.disconnect_rc = rc.value if hasattr(rc, "value") else rc
        self.disconnected.set()

    def _on_subscribe(self, client, userdata, mid, granted, properties=None):
        with self._cond:
            self._subacks[mid] = [g.value if hasattr(g, "value") else g for g in granted]
            self._cond.notify_all()

    def connect(self, keepalive=60, timeout=DEFAULT_TIMEOUT, expect_rc=0,
                clean_start=True, properties=None):
        self.c.connect(self.broker.host, self.broker.port, keepalive,
                       clean_start=clean_start, properties=properties)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        assert self.connected.wait(timeout), "paho: no CONNACK within %.0fs" % timeout
        flags, rc = self.connack
        assert rc == expect_rc, "paho: CONNACK rc %d, expected %d" % (rc, expect_rc)
        return flags

    def subscribe(self, topic, qos=0, options=None, properties=None,
                  timeout=DEFAULT_TIMEOUT):
        """Returns the SUBACK reason codes (ints)."""
        if options is not None:
            rc, mid = self.c.subscribe(topic, options=options, properties=properties)
        else:
            rc, mid = self.c.subscribe(topic, qos, properties=properties)
        assert rc == mqtt.MQTT_ERR_SUCCESS, "paho subscribe rc %d" % rc
        self._wait(lambda: mid in self._subacks, timeout, "no SUBACK for mid %d" % mid)
        return self._subacks[mid]

    def publish(self, topic, payload=None, qos=0, retain=False, properties=None,
                timeout=DEFAULT_TIMEOUT):
        info = self.c.publish(topic, payload, qos, retain, properties=properties)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, "paho publish rc %d" % info.rc
        self._wait(lambda: info.mid in self._published, timeout,
                   "publish mid %d not completed" % info.mid)
        return info.mid


class MosquittoSub:
    """A mosquitto_sub process; its output lines are read by a thread.

    Started with -d so that the SUBACK is visible (wait_subscribed) and
    with -F SUB_FORMAT so messages are told apart from debug lines."""

    def __init__(self, broker, args):
        # stdbuf -oL: mosquitto_sub's debug lines go through stdio, which
        # would otherwise hold them in a block buffer on a pipe
        cmd = [STDBUF, "-oL", MOSQUITTO_SUB, "-h", broker.host, "-p", str(broker.port),
               "-d", "-F", SUB_FORMAT] + list(args)
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, errors="replace")
        self.lines = queue.Queue()
        self.all_lines = []
        self.msgs = queue.Queue()
        self._subacked = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.all_lines.append(line)
            if line.startswith("MSG|"):
                _, retain, qos, topic, payload = line.split("|", 4)
                self.msgs.put((topic, payload, int(qos), retain == "1"))
            elif "received SUBACK" in line:
                self._subacked.set()
        self.proc.stdout.close()

    def wait_subscribed(self, timeout=DEFAULT_TIMEOUT):
        if not self._subacked.wait(timeout):
            raise AssertionError("mosquitto_sub: no SUBACK within %.0fs: %r"
                                 % (timeout, self.all_lines))

    def get_message(self, timeout=DEFAULT_TIMEOUT):
        """(topic, payload, qos, retain) of the next message."""
        try:
            return self.msgs.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("mosquitto_sub: no message within %.1fs: %r"
                                 % (timeout, self.all_lines)) from None

    def expect_no_message(self, duration):
        try:
            msg = self.msgs.get(timeout=duration)
        except queue.Empty:
            return
        raise AssertionError("mosquitto_sub: unexpected message %r" % (msg,))

    def wait(self, timeout=DEFAULT_TIMEOUT):
        """Wait for the process to exit (e.g. after -C N); returns status."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("mosquitto_sub still running after %.0fs: %r"
                                 % (timeout, self.all_lines)) from None
        self._reader.join(5)
        return rc

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()       # by PID: a process this test started
        self.proc.wait(10)
        self._reader.join(5)


class Clients:
    """Factory that remembers every client it made and closes them all."""

    def __init__(self):
        self._open = []

    def raw(self, broker, **kw):
        c = RawClient(broker.host, broker.port, **kw)
        self._open.append(c)
        return c

    def paho(self, broker, client_id="", clean_session=True, protocol=mqtt.MQTTv311):
        c = PahoClient(broker, client_id, clean_session, protocol)
        self._open.append(c)
        return c

    def paho5(self, broker, client_id=""):
        """A paho client speaking MQTT 5.0 (Paho5Client)."""
        c = Paho5Client(broker, client_id)
        self._open.append(c)
        return c

    def sub(self, broker, *args):
        """Start mosquitto_sub with extra args (e.g. "-t", "a/#", "-C", "3")."""
        s = MosquittoSub(broker, args)
        self._open.append(s)
        return s

    def pub(self, broker, *args, timeout=DEFAULT_TIMEOUT, check=True):
        """Run mosquitto_pub to completion; returns the CompletedProcess."""
        cmd = [MOSQUITTO_PUB, "-h", broker.host, "-p", str(broker.port)] + list(args)
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=timeout)
        if check:
            assert res.returncode == 0, "%r failed (%d): %s%s" % (
                cmd, res.returncode, res.stdout, res.stderr)
        return res

    def spawn_pub(self, broker, *args):
        """Start a long-running mosquitto_pub (e.g. -l reading stdin); the
        caller owns stdin. Killed at teardown by its PID."""
        cmd = [MOSQUITTO_PUB, "-h", broker.host, "-p", str(broker.port)] + list(args)
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, text=True)
        self._open.append(_Proc(p))
        return p

    def close_all(self):
        for c in reversed(self._open):
            try:
                c.close()
            except Exception:
                pass
        self._open = []


class _Proc:
    def __init__(self, p):
        self.p = p

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(10)
