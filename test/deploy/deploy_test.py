#!/usr/bin/python3
"""The docker-compose deployment, tested with a real Docker engine (#8).

  test/deploy/deploy_test.py [--results FILE]

1. installs docker.io, docker-compose and debootstrap when missing, starts
   its own dockerd (own data root, exec root, pid file and socket under
   WORK, so no other engine on the machine is touched) and makes the base
   image debian:bookworm-slim when it is missing: debootstrap --variant=
   minbase from the mirror apt uses, then docker import;
2. builds the image with docker-compose (deploy/docker-compose.yml), brings
   the three nodes up and waits until all are healthy and see each other
   alive;
3. with clients on the host (127.0.0.1 ports only): a QoS 1 subscriber on
   node1 gets every message a publisher sends to node3; a retained message
   set through node2 is read through node3;
4. docker-compose kill node2: node1 <-> node3 traffic goes on; a persistent
   session made on node2 before the kill gets, once docker-compose start
   node2 has brought node2 back (three alive again), what node1 published
   for it while it was down;
5. tears everything down (down -v), stops its dockerd by PID, unmounts
   what it left mounted under WORK and removes the bridge interfaces and
   firewall rules that dockerd made.

Each step prints "deploy N: ... ok" or "... FAILED: why". With --results
the outcome of every step is written as JSON lines shaped like meson's
testlog.json ({"name": ..., "result": "OK" | "FAIL"}), which tools/test
counts. Exit status 0 when every step passed.

How the engine runs here, and why (found on the 2-core Debian 12 test VM):
- dockerd gets --iptables=false --ip-forward=false --bridge=none: it writes
  no firewall rule, changes no sysctl and makes no docker0. What the test
  needs works without them: containers on the user-defined bridge network
  reach each other at layer 2 (and find each other through the engine's
  DNS, whose redirect lives inside each container's own namespace), and
  the published 127.0.0.1 ports go through docker-proxy, as the host is on
  that bridge. What does not work without NAT: a container reaching the
  outside, so the image's apt-get steps run with the host's network
  (compose "build: network: host", which the shipped compose file has).
- Inside the containers the engine's DNS forwards names it does not know
  (a stopped peer's) to the host's resolver, which it cannot reach without
  NAT: such a lookup takes 20 s there. mqd resolves peers asynchronously,
  so that only delays the dial to the stopped peer.
- The engine's state (images, build cache) lives in WORK/data and is kept
  between runs, so a second run skips debootstrap and reuses the layers;
  a fresh machine does everything.

Environment: MQD_DEPLOY_WORK (default /var/tmp/mqd-deploy-test) is WORK.
"""

import argparse
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "test" / "integration"))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from clients import Paho5Client  # noqa: E402

WORK = Path(os.environ.get("MQD_DEPLOY_WORK", "/var/tmp/mqd-deploy-test"))
SOCK = WORK / "docker.sock"
PIDFILE = WORK / "dockerd.pid"
DOCKER = "/usr/bin/docker"      # not /usr/local/bin/docker: another client
DOCKERD = "/usr/sbin/dockerd"
COMPOSE = "/usr/bin/docker-compose"
COMPOSE_FILE = ROOT / "deploy" / "docker-compose.yml"
PROJECT = "mqd-deploy-test"
BASE_IMAGE = "debian:bookworm-slim"
IMAGE = "mqd:deploy-test"
PACKAGES = ("docker.io", "docker-compose", "debootstrap")
NODES = ("node1", "node2", "node3")

ENGINE_TIMEOUT = 60       # dockerd answering on its socket
BUILD_TIMEOUT = 1200      # first build: apt-get in two stages, compile
HEALTHY_TIMEOUT = 180
ALIVE_TIMEOUT = 60
MSG_TIMEOUT = 30
N_MESSAGES = 200          # step 3
N_WHILE_DOWN = 20         # step 4


class StepFailed(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def run(cmd, timeout=120, check=True, env=None, quiet=False):
    """Runs cmd; returns its CompletedProcess (stdout and stderr as text)."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout, env=env,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise StepFailed("%s: no result within %d s" % (" ".join(cmd), timeout))
    if check and r.returncode != 0:
        tail = (r.stdout + r.stderr).strip().splitlines()[-15:]
        raise StepFailed("%s: exit %d\n    %s" % (" ".join(map(str, cmd)),
                                                r.returncode,
                                                "\n    ".join(tail)))
    if not quiet and r.returncode != 0:
        log("  (%s: exit %d)" % (" ".join(map(str, cmd)), r.returncode))
    return r


def wait_for(what, pred, timeout, interval=0.5):
    """Calls pred until it returns a true value (returned) or timeout s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except StepFailed as e:
            last = e
        if time.monotonic() >= deadline:
            raise StepFailed("%s: not within %d s%s" % (
                what, timeout, "" if last is None else " (last: %s)" % last))
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- 1. packages, engine, base image ------------------------------------

def missing_packages():
    r = run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\n",
             *PACKAGES], check=False, quiet=True)
    have = {ln.split()[0] for ln in r.stdout.splitlines()
            if len(ln.split()) > 1 and ln.split()[1] == "ii"}
    return [p for p in PACKAGES if p not in have]


def install_packages():
    missing = missing_packages()
    if not missing:
        return
    log("  installing %s" % " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # installing docker.io must not start the machine's own engine: deny
    # service starts while it installs (unless a policy is already there)
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = False
    if not policy.exists():
        policy.write_text("#!/bin/sh\n# made by mqd test/deploy while it "
                          "installs docker.io\nexit 101\n")
        policy.chmod(0o755)
        made_policy = True
    try:
        run(["apt-get", "update", "-q"], timeout=600, env=env)
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
             *missing], timeout=1200, env=env)
    finally:
        if made_policy:
            policy.unlink()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def our_dockerd_pid():
    """The PID in our pid file when it is a live dockerd with our data root
    (a run that was interrupted may have left it), else None."""
    try:
        pid = int(PIDFILE.read_text().strip())
        cmdline = Path("/proc/%d/cmdline" % pid).read_bytes()
    except (OSError, ValueError):
        return None
    if b"dockerd" in cmdline and str(WORK / "data").encode() in cmdline:
        return pid
    return None


def stop_pid(pid, timeout=60):
    """SIGTERM to pid, SIGKILL after timeout; waits for it to go."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)   # ours: reap it
        except ChildProcessError:
            pass
        time.sleep(0.2)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def docker_env():
    env = dict(os.environ)
    path = env.get("PATH", "/usr/bin:/bin").split(":")
    # dockerd finds docker-proxy and containerd on PATH
    env["PATH"] = ":".join(path + [p for p in ("/usr/sbin", "/sbin")
                                   if p not in path])
    env.update({
        "DOCKER_HOST": "unix://%s" % SOCK,
        # docker-compose 1.29 builds through its own API client (the
        # classic builder); never through a docker CLI found on PATH
        "COMPOSE_DOCKER_CLI_BUILD": "0",
        "DOCKER_BUILDKIT": "0",
    })
    return env


def snapshot_net():
    """Bridge and veth interfaces, and iptables rules, as they are now."""
    links = set()
    r = run(["ip", "-o", "link", "show"], check=False, quiet=True)
    for ln in r.stdout.splitlines():
        m = re.match(r"\d+: ([^:@]+)", ln)
        if m:
            links.add(m.group(1))
    rules = {}
    if shutil.which("iptables"):
        for table in ("filter", "nat"):
            r = run(["iptables", "-t", table, "-S"], check=False, quiet=True)
            rules[table] = r.stdout.splitlines() if r.returncode == 0 else []
    return links, rules


def start_engine(env):
    pid = our_dockerd_pid()
    if pid is not None:
        log("  stopping the dockerd an earlier run left (pid %d)" % pid)
        stop_pid(pid)
    for p in (SOCK, PIDFILE):
        if p.exists():
            p.unlink()
    (WORK / "daemon.json").write_text("{}\n")
    cmd = [DOCKERD,
           "--data-root", str(WORK / "data"),
           "--exec-root", str(WORK / "run"),
           "--pidfile", str(PIDFILE),
           "-H", "unix://%s" % SOCK,
           "--config-file", str(WORK / "daemon.json"),
           # a containerd of the machine's own, if it runs, keeps our
           # containers apart from its other users'
           "--containerd-namespace", PROJECT,
           "--containerd-plugins-namespace", PROJECT + "-plugins",
           "--iptables=false", "--ip-forward=false", "--bridge=none"]
    logf = open(WORK / "dockerd.log", "ab")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                            stderr=logf, start_new_session=True, env=env)
    logf.close()

    def ready():
        if proc.poll() is not None:
            raise StepFailed("dockerd exited with status %d" % proc.returncode)
        if not SOCK.exists():
            return False
        return run([DOCKER, "version"], env=env, check=False,
                   quiet=True, timeout=20).returncode == 0

    try:
        wait_for("dockerd answering on %s" % SOCK, ready, ENGINE_TIMEOUT)
    except StepFailed as e:
        tail = (WORK / "dockerd.log").read_text(errors="replace")
        tail = "\n    ".join(tail.strip().splitlines()[-12:])
        if proc.poll() is None:
            stop_pid(proc.pid)
        raise StepFailed("the Docker engine did not start: %s\n    %s"
                         % (e, tail))
    return proc


def apt_sources():
    """(uri, suite) pairs of the bookworm entries of the host's apt sources
    (deb822 .sources files and one-line .list files)."""
    pairs = []
    files = [Path("/etc/apt/sources.list")]
    d = Path("/etc/apt/sources.list.d")
    if d.is_dir():
        files += sorted(d.glob("*.list")) + sorted(d.glob("*.sources"))
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        if f.suffix == ".sources":
            for para in re.split(r"\n\s*\n", text):
                fields = {}
                for ln in para.splitlines():
                    m = re.match(r"([A-Za-z-]+):\s*(.*)", ln)
                    if m:
                        fields[m.group(1).lower()] = m.group(2).split()
                if ("deb" in fields.get("types", []) and
                        fields.get("enabled", ["yes"])[0] != "no"):
                    for uri in fields.get("uris", []):
                        for suite in fields.get("suites", []):
                            pairs.append((uri, suite))
        else:
            for ln in text.splitlines():
                m = re.match(r"deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", ln)
                if m:
                    pairs.append((m.group(1), m.group(2)))
    return [(u, s) for u, s in pairs if s.startswith("bookworm")]


def make_base_image(env):
    if run([DOCKER, "image", "inspect", BASE_IMAGE], env=env, check=False,
           quiet=True).returncode == 0:
        log("  base image %s: already made" % BASE_IMAGE)
        return
    sources = apt_sources()
    mirror = next((u for u, s in sources if s == "bookworm"), None)
    if mirror is None:
        raise StepFailed("no bookworm entry in the host's apt sources")
    rootfs = WORK / "rootfs"
    if rootfs.exists():
        shutil.rmtree(rootfs)
    t0 = time.monotonic()
    log("  debootstrap --variant=minbase bookworm from %s" % mirror)
    run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs),
         mirror], timeout=1200)
    log("  debootstrap took %.0f s" % (time.monotonic() - t0))
    # the image's apt-get uses the same mirror(s) as the host
    (rootfs / "etc/apt/sources.list").write_text("".join(
        "deb %s %s main\n" % (u, s) for u, s in sources))
    for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    t0 = time.monotonic()
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."],
                           stdout=subprocess.PIPE)
    imp = subprocess.run([DOCKER, "import", "--change", 'CMD ["bash"]', "-",
                          BASE_IMAGE], stdin=tar.stdout, env=env,
                         capture_output=True, text=True, timeout=600)
    tar.stdout.close()
    tar.wait(60)
    shutil.rmtree(rootfs)
    if imp.returncode != 0 or tar.returncode != 0:
        raise StepFailed("docker import failed: %s" % imp.stderr.strip())
    log("  docker import took %.0f s" % (time.monotonic() - t0))


# ---- 2. the compose cluster ----------------------------------------------

class Compose:
    def __init__(self, env):
        self.env = env
        self.ports = {n: free_port() for n in NODES}
        admin = {n: free_port() for n in NODES}
        env.update({
            "MQD_IMAGE": IMAGE,
            "MQD_PUBLISH_ADDR": "127.0.0.1",   # host clients: loopback only
            "MQD_CLUSTER_SECRET": "deploy-test-secret",
            "MQD_ADMIN_TOKEN": "deploy-test-token",
        })
        for i, n in enumerate(NODES, 1):
            env["MQD_NODE%d_PORT" % i] = str(self.ports[n])
            env["MQD_NODE%d_ADMIN_PORT" % i] = str(admin[n])

    def __call__(self, *args, timeout=120, check=True):
        return run([COMPOSE, "-f", str(COMPOSE_FILE), "-p", PROJECT, *args],
                   env=self.env, timeout=timeout, check=check)

    def container(self, node):
        cid = self("ps", "-q", node).stdout.strip()
        if not cid:
            raise StepFailed("no container for %s" % node)
        return cid

    def health(self, node):
        r = run([DOCKER, "inspect", "-f",
                 "{{.State.Status}} {{if .State.Health}}"
                 "{{.State.Health.Status}}{{end}}", self.container(node)],
                env=self.env, check=False, quiet=True)
        return r.stdout.strip()

    def wait_healthy(self, nodes=NODES):
        for n in nodes:
            wait_for("%s healthy" % n,
                     lambda n=n: self.health(n) == "running healthy",
                     HEALTHY_TIMEOUT, interval=1)

    def cluster_status(self, node):
        """{member: state} as node sees the cluster now, itself included:
        `mqctl --json cluster status` in its container ({} while the
        admin API does not answer)."""
        r = self("exec", "-T", node, "mqctl", "--json", "cluster", "status",
                 check=False, timeout=60)
        if r.returncode != 0:
            return {}
        doc = json.loads(r.stdout)
        return {m["name"]: m["state"] for m in doc["members"]}

    def all_alive(self, views=NODES):
        for v in views:
            st = self.cluster_status(v)
            if any(st.get(n) != "alive" for n in NODES):
                raise StepFailed("%s sees %s" % (v, st))
        return True

    def logs_tail(self, lines=30):
        """The last lines of each node's log, without the health probes."""
        r = self("logs", "--no-color", check=False, timeout=60)
        keep = {}
        for ln in r.stdout.splitlines():
            if "client=mqd-health-" in ln or "|" not in ln:
                continue
            keep.setdefault(ln.split("|", 1)[0].strip(), []).append(ln)
        return "\n".join(ln for k in sorted(keep) for ln in keep[k][-lines:])


# ---- MQTT clients on the host ---------------------------------------------

class Addr:
    host = "127.0.0.1"

    def __init__(self, port):
        self.port = port


class Clients:
    def __init__(self, compose):
        self.compose = compose
        self.open = []

    def connect(self, node, client_id, clean_start=True, expiry=None):
        c = Paho5Client(Addr(self.compose.ports[node]), client_id)
        props = None
        if expiry is not None:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = expiry
        flags = c.connect(clean_start=clean_start, properties=props,
                          timeout=MSG_TIMEOUT)
        self.open.append(c)
        return c, flags

    def close_all(self):
        for c in self.open:
            try:
                c.close()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
        self.open = []


def drain(c):
    got = []
    while True:
        try:
            got.append(c.messages.get_nowait())
        except Exception:  # noqa: BLE001 - queue.Empty
            return got


def wait_route(pub, sub, topic, timeout=MSG_TIMEOUT):
    """Publishes QoS 0 probes on topic until sub gets one (the
    subscription reached the publisher's node), then drains the rest with
    a QoS 1 marker."""
    deadline = time.monotonic() + timeout
    while True:
        pub.publish(topic, b"probe", qos=0)
        try:
            m = sub.messages.get(timeout=0.3)
            if m.payload == b"probe":
                break
        except Exception:  # noqa: BLE001 - queue.Empty
            pass
        if time.monotonic() > deadline:
            raise StepFailed("route for %s never reached the publisher's "
                             "node" % topic)
    marker = topic + "/marker"
    pub.publish(marker, b"marker", qos=1)
    while True:
        m = sub.messages.get(timeout=MSG_TIMEOUT)
        if m.topic == marker:
            return


def expect_all(sub, topic, n, timeout=MSG_TIMEOUT):
    """Waits for payloads b"0".."n-1" on topic; returns the set missing."""
    want = {str(i).encode() for i in range(n)}
    got = set()
    deadline = time.monotonic() + timeout
    while got != want and time.monotonic() < deadline:
        try:
            m = sub.messages.get(timeout=max(0.1, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001 - queue.Empty
            break
        if m.topic == topic:
            got.add(m.payload)
    return want - got


def send_and_check(clients, pub_node, sub_node, topic, n, tag):
    sub, _ = clients.connect(sub_node, "deploy-sub-%s" % tag)
    sub.subscribe(topic + "/#", qos=1)
    pub, _ = clients.connect(pub_node, "deploy-pub-%s" % tag)
    wait_route(pub, sub, topic + "/probe")
    for i in range(n):
        pub.publish(topic + "/m", str(i).encode(), qos=1, timeout=MSG_TIMEOUT)
    missing = expect_all(sub, topic + "/m", n)
    if missing:
        raise StepFailed("%d of %d QoS 1 messages %s -> %s did not arrive"
                         % (len(missing), n, pub_node, sub_node))
    sub.disconnect()
    pub.disconnect()


# ---- the steps --------------------------------------------------------------

class Run:
    def __init__(self, results_path):
        self.results = []
        self.results_path = results_path
        self.failed = False

    def record(self, name, ok, why="", took=None):
        t = "" if took is None else " (%.0f s)" % took
        if ok:
            log("%s: ok%s" % (name, t))
        else:
            log("%s: FAILED%s: %s" % (name, t, why))
            self.failed = True
        self.results.append({"name": name, "result": "OK" if ok else "FAIL",
                             "duration": took, "why": why})
        if self.results_path:
            with open(self.results_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(self.results[-1]) + "\n")

    def step(self, name, fn):
        t0 = time.monotonic()
        log("== %s" % name)
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - any failure fails the step
            why = str(e) if isinstance(e, StepFailed) else "%s: %s" % (
                type(e).__name__, e)
            self.record(name, False, why, time.monotonic() - t0)
            return False
        self.record(name, True, took=time.monotonic() - t0)
        return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", help="append JSON result lines here")
    args = ap.parse_args()
    if args.results and os.path.exists(args.results):
        os.unlink(args.results)
    t_start = time.monotonic()
    r = Run(args.results)
    if os.geteuid() != 0:
        r.record("deploy 1: engine and base image", False,
                 "needs root (apt-get, dockerd)")
        return 1
    WORK.mkdir(parents=True, exist_ok=True)
    # one run at a time on a machine: the engine and WORK are shared
    lock = open(WORK / "lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)

    env = docker_env()
    st = {"engine": None, "net": None, "compose": None}

    def step1():
        install_packages()
        st["net"] = snapshot_net()
        st["engine"] = start_engine(env)
        make_base_image(env)

    def step2():
        c = st["compose"] = Compose(env)
        t0 = time.monotonic()
        c("build", timeout=BUILD_TIMEOUT)
        log("  image build took %.0f s" % (time.monotonic() - t0))
        c("up", "-d", "--no-build", timeout=300)
        c.wait_healthy()
        wait_for("every node sees three alive", c.all_alive, ALIVE_TIMEOUT)

    clients = None

    def step3a():
        send_and_check(clients, "node3", "node1", "deploy/a", N_MESSAGES, "a")

    def step3b():
        p, _ = clients.connect("node2", "deploy-retain-pub")
        p.publish("deploy/retained", b"set-through-node2", qos=1, retain=True)
        p.disconnect()

        def read_on_node3():
            s, _ = clients.connect("node3", "deploy-retain-sub")
            try:
                s.subscribe("deploy/retained", qos=1)
                m = s.messages.get(timeout=2)
                return m.retain and m.payload == b"set-through-node2"
            except Exception:  # noqa: BLE001 - queue.Empty: not yet there
                return False
            finally:
                s.disconnect()
        wait_for("retained message on node3", read_on_node3, MSG_TIMEOUT)

    persist = {"ready": False, "published": False}

    def step4a():
        c = st["compose"]
        # a persistent session on node2, with its subscription known to
        # node1 before node2 goes away
        s, _ = clients.connect("node2", "deploy-persist", clean_start=False,
                               expiry=3600)
        s.subscribe("deploy/persist/#", qos=1)
        p, _ = clients.connect("node1", "deploy-persist-pub")
        wait_route(p, s, "deploy/persist/probe")
        s.disconnect()
        persist["ready"] = True
        c("kill", "node2")

        def node2_dead():
            for v in ("node1", "node3"):
                if c.cluster_status(v).get("node2") != "dead":
                    raise StepFailed("%s sees %s" % (v, c.cluster_status(v)))
            return True
        wait_for("node1 and node3 see node2 dead", node2_dead, ALIVE_TIMEOUT)
        send_and_check(clients, "node3", "node1", "deploy/b", 50, "b")
        send_and_check(clients, "node1", "node3", "deploy/c", 50, "c")
        for i in range(N_WHILE_DOWN):
            p.publish("deploy/persist/m", str(i).encode(), qos=1,
                      timeout=MSG_TIMEOUT)
        persist["published"] = True
        p.disconnect()

    def step4b():
        c = st["compose"]
        c("start", "node2")
        c.wait_healthy(["node2"])
        wait_for("every node sees three alive again", c.all_alive,
                 ALIVE_TIMEOUT)

    def step4c():
        if not (persist["ready"] and persist["published"]):
            raise StepFailed("not run: step 4a did not set it up")
        s, flags = clients.connect("node2", "deploy-persist",
                                   clean_start=False, expiry=3600)
        if not flags.get("session present"):
            raise StepFailed("node2 lost the persistent session "
                             "(session present = 0)")
        missing = expect_all(s, "deploy/persist/m", N_WHILE_DOWN)
        if missing:
            raise StepFailed("the persistent session on node2 got %d of the "
                             "%d QoS 1 messages published on node1 while "
                             "node2 was down" % (N_WHILE_DOWN - len(missing),
                                                 N_WHILE_DOWN))

    def step5():
        errors = []
        if clients is not None:
            clients.close_all()
        if st["compose"] is not None:
            r5 = st["compose"]("down", "-v", "--remove-orphans", "-t", "30",
                               timeout=300, check=False)
            if r5.returncode != 0:
                errors.append("docker-compose down: %s" % r5.stderr.strip())
        if st["engine"] is not None:
            stop_pid(st["engine"].pid)
            if st["engine"].poll() is None:
                errors.append("dockerd %d did not stop" % st["engine"].pid)
        errors += cleanup_mounts()
        if st["net"] is not None:
            errors += cleanup_net(st["net"])
        if errors:
            raise StepFailed("; ".join(errors))

    try:
        ok = r.step("deploy 1: packages, own dockerd, base image", step1)
        if ok:
            ok = r.step("deploy 2: image built, three nodes healthy and "
                        "alive", step2)
        if ok:
            clients = Clients(st["compose"])
            r.step("deploy 3a: QoS 1, publisher on node3 -> subscriber on "
                   "node1, every message", step3a)
            r.step("deploy 3b: retained message set through node2 is read "
                   "through node3", step3b)
            if r.step("deploy 4a: node2 killed, node1 <-> node3 traffic "
                      "goes on", step4a):
                if r.step("deploy 4b: node2 started again, three alive",
                          step4b):
                    r.step("deploy 4c: node2's persistent session gets "
                           "what was published for it while it was down",
                           step4c)
        if r.failed and st["compose"] is not None:
            log("-- last lines of the nodes' logs:")
            log(st["compose"].logs_tail())
    finally:
        r.step("deploy 5: down -v, dockerd stopped, its interfaces and "
               "rules removed", step5)
        lock.close()
    n_ok = sum(1 for x in r.results if x["result"] == "OK")
    log("deploy: %d passed, %d failed, %.0f s in all"
        % (n_ok, len(r.results) - n_ok, time.monotonic() - t_start))
    return 1 if r.failed else 0


def cleanup_mounts():
    """Unmounts what dockerd left mounted under WORK once it stopped (the
    host's network namespace, bound at run/netns/default)."""
    errors = []
    try:
        mounts = [ln.split()[1] for ln in
                  Path("/proc/mounts").read_text().splitlines()]
    except OSError as e:
        return ["/proc/mounts: %s" % e]
    prefix = str(WORK) + "/"
    for mp in sorted((m for m in mounts if m.startswith(prefix)),
                     key=len, reverse=True):
        r = run(["umount", mp], check=False, quiet=True)
        if r.returncode != 0:
            errors.append("umount %s: %s" % (mp, r.stderr.strip()))
    return errors


def cleanup_net(before):
    """Removes the interfaces and iptables rules that appeared since
    before and belong to Docker (docker0, br-*, veth*; DOCKER chains and
    rules that name them). With --iptables=false --bridge=none there should
    be none once "down" has removed the network; this is the safety net
    for an engine that died half way."""
    links_before, rules_before = before
    links_now, rules_now = snapshot_net()
    errors = []
    for name in sorted(links_now - links_before):
        if name == "docker0" or name.startswith(("br-", "veth")):
            r = run(["ip", "link", "delete", name], check=False, quiet=True)
            if r.returncode != 0:
                errors.append("ip link delete %s: %s" % (name, r.stderr.strip()))
            else:
                log("  removed interface %s" % name)
    for table, now in rules_now.items():
        old = set(rules_before.get(table, []))
        new = [ln for ln in now if ln not in old and
               re.search(r"DOCKER|docker0|br-[0-9a-f]", ln)]
        for ln in new:
            if ln.startswith("-A "):
                run(["iptables", "-t", table, "-D"] + ln.split()[1:],
                    check=False, quiet=True)
        for ln in new:
            if ln.startswith("-N "):
                chain = ln.split()[1]
                run(["iptables", "-t", table, "-F", chain], check=False,
                    quiet=True)
                run(["iptables", "-t", table, "-X", chain], check=False,
                    quiet=True)
        if new:
            log("  removed %d iptables lines from table %s" % (len(new), table))
    return errors


if __name__ == "__main__":
    sys.exit(main())
