#!/usr/bin/python3
"""Cluster benchmark (a script, not a test): what crossing a node costs.
Two mqd nodes on loopback form a cluster; the same mqbench workloads run
with publishers and subscribers on the same node, then with publishers on
node b and subscribers on node a (every message crosses the cluster link),
and the script prints delivery rate and latency for both, and the ratio.

Usage: test/bench/cluster.py [--mqd PATH] [--mqbench PATH] [--duration S]
           [--pairs N] [--qos 0|1] [--durability none|relaxed|sync]
           [--rate MSG_PER_S] [--json FILE]
(without --mqd/--mqbench it uses build/, building it when a binary is
missing). Defaults: 10 s runs, 50 publisher/subscriber pairs (one topic
each), QoS 1, durability none (the link, not the disk), latency at 50
pairs x 20 msg/s.

Rows:
  rate      saturation (-I 0, 32 in flight per publisher): messages
            received per second, and each node's CPU share
  latency   a fixed moderate load (--rate msg/s over all pairs): p50 / p99
            / p99.9 end to end, from mqbench's send timestamps
Every run also checks that nothing was lost, duplicated or reordered.
"""

import argparse
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare as cp  # noqa: E402  the brokers and mqbench runners


def cluster(paths, work, durability):
    """Node a, then node b seeded with a; waits until each sees the
    other alive."""
    pa, pb = cp.free_port(), cp.free_port()
    aa, ab = cp.free_port(), cp.free_port()
    a = cp.Broker("mqd", paths, work, durability, extra={
        "MQD_NODE_NAME": "a", "MQD_CLUSTER_BIND": "127.0.0.1",
        "MQD_CLUSTER_PORT": str(pa), "MQD_ADMIN_PORT": str(aa),
        "MQD_NODE_LOG_LEVEL": "info"})
    b = cp.Broker("mqd", paths, work, durability, extra={
        "MQD_NODE_NAME": "b", "MQD_CLUSTER_BIND": "127.0.0.1",
        "MQD_CLUSTER_PORT": str(pb), "MQD_CLUSTER_SEEDS": "127.0.0.1:%d" % pa,
        "MQD_ADMIN_PORT": str(ab), "MQD_NODE_LOG_LEVEL": "info"})
    a.admin_port, b.admin_port = aa, ab

    def joined():
        return all("cluster member node=%s state=alive" % o in x.log_tail(200)
                   for x, o in ((a, "b"), (b, "a")))
    cp.wait_for(joined, 30, "the two nodes to see each other")
    return a, b


def run(paths, sub_node, pub_node, nodes, pairs, qos, pub_args, duration):
    """pairs subscribers on sub_node (topic c/%i), pairs publishers on
    pub_node; returns rate, latency and the nodes' CPU shares."""
    sub = cp.Bench(paths, ["sub"] + cp.common(sub_node, "s", pairs) +
                   ["-t", "c/%i", "-q", str(qos), "--payload-hdrs",
                    "cnt64,ts", "--duration", str(duration + 60)])
    pub = None
    try:
        cp.subscribed(sub, sub_node, pairs)
        if pub_node is not sub_node:
            # the routes reach the publishing node asynchronously: wait
            # until it lists all of them
            cp.wait_for(lambda: routes_known(pub_node, "a", pairs), 30,
                        "routes on the publishing node")
        pub = cp.Bench(paths, ["pub"] + cp.common(pub_node, "p", pairs) +
                       ["-t", "c/%i", "-q", str(qos), "--payload-hdrs",
                        "cnt64,ts", "--duration", str(duration)] + pub_args)
        time.sleep(1.0)  # warm-up, not measured
        tw = time.monotonic()
        cpu0 = [x.cpu_s() for x in nodes]
        while pub.running() and time.monotonic() < tw + duration - 1:
            time.sleep(0.02)
        t1 = time.monotonic()
        cpu1 = [x.cpu_s() for x in nodes]
        pres = pub.finish(60)
        cp.wait_quiet(sub, "recv", limit=10,
                      expect=pres.get("pub_succ" if qos else "pub", 0))
        sres = sub.finish()
    finally:
        for x in (sub, pub):
            if x is not None and x.running():
                x.proc.kill()
                x.proc.wait()
    return {
        "rate": sub.rate("recv", tw, t1 + 0.05),
        "recv": sres.get("recv"),
        "lost": sres.get("lost"), "dup": sres.get("dup"),
        "ooo": sres.get("out_of_order"),
        "latency_us": sres.get("latency_us"),
        "cpu_share": [cp.share(c0, c1, t1 - tw) for c0, c1 in zip(cpu0, cpu1)],
    }


def routes_known(node, peer, pairs):
    """node's admin API counts at least pairs routes announced by peer."""
    url = "http://127.0.0.1:%d/api/v1/metrics" % node.admin_port
    with urllib.request.urlopen(url, timeout=5) as r:
        m = json.load(r)
    return m["cluster_peers"].get(peer, {}).get("routes", 0) >= pairs


def main():
    ap = argparse.ArgumentParser(description="mqd cluster benchmark")
    ap.add_argument("--mqd", default=os.path.join(cp.ROOT, "build", "broker",
                                                  "mqd"))
    ap.add_argument("--mqbench", default=os.path.join(cp.ROOT, "build",
                                                      "tools", "mqbench"))
    ap.add_argument("--mosquitto", default=cp.MOSQUITTO)  # not used
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--pairs", type=int, default=50)
    ap.add_argument("--qos", type=int, default=1, choices=(0, 1))
    ap.add_argument("--durability", default="none",
                    choices=("none", "relaxed", "sync"))
    ap.add_argument("--rate", type=int, default=1000,
                    help="latency row: messages per second over all pairs")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args()
    a.mosquitto = "/bin/true"  # cp.ensure_binaries checks it
    cp.ensure_binaries(a)
    paths = a
    work = cp.tempfile.mkdtemp(prefix="mqd-cluster-bench-")
    ival = max(1, a.pairs * 1000 // a.rate)
    loads = [("rate", ["-I", "0", "-F", "32"]),
             ("latency", ["-I", str(ival), "-F", "8"])]
    results = {}
    for place in ("same node", "across nodes"):
        for name, args in loads:
            na, nb = cluster(paths, work, a.durability)
            try:
                pub_node = na if place == "same node" else nb
                r = run(paths, na, pub_node, [na, nb], a.pairs, a.qos, args,
                        a.duration)
            finally:
                nb.stop()
                na.stop()
            results[(place, name)] = r
            print("%-12s %-8s done: recv %s lost %s dup %s ooo %s" % (
                place, name, r["recv"], r["lost"], r["dup"], r["ooo"]),
                file=sys.stderr)
    print("\nmqd cluster, 2 nodes on loopback, %d pairs, QoS %d, "
          "durability %s, %d s runs" % (a.pairs, a.qos, a.durability,
                                        a.duration))
    print("| metric | same node | across nodes | across / same |")
    print("| --- | --- | --- | --- |")

    def row(label, key, get, fmt):
        s = get(results[("same node", key)])
        x = get(results[("across nodes", key)])
        ratio = "%.2f" % (x / s) if s and x and s >= 0.01 else "-"
        print("| %s | %s | %s | %s |" % (label, cp.fmt(s, fmt),
                                         cp.fmt(x, fmt), ratio))
    row("saturation, msg/s received", "rate", lambda r: r["rate"], "%.0f")
    for p in ("p50", "p99", "p99.9"):
        row("latency %s, ms (%d msg/s)" % (p, a.rate), "latency",
            lambda r, p=p: (r["latency_us"] or {}).get(p) and
            r["latency_us"][p] / 1000.0, "%.2f")
    row("node a CPU share at saturation", "rate",
        lambda r: r["cpu_share"][0], "%.2f")
    row("node b CPU share at saturation", "rate",
        lambda r: r["cpu_share"][1], "%.2f")
    bad = [(k, r) for k, r in results.items()
           if r["lost"] or r["dup"] or r["ooo"]]
    for k, r in bad:
        print("WARNING %s %s: lost %s dup %s out of order %s" % (
            k[0], k[1], r["lost"], r["dup"], r["ooo"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"%s/%s" % k: v for k, v in results.items()}, f,
                      indent=1)
    cp.shutil.rmtree(work, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
