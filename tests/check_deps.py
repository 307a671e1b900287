#!/usr/bin/env python3
"""Fail when a module of the daemon calls a module above it.

usage: check_deps.py OBJECT... | BUILD_DIR   (make check-deps)

The layers below are the architecture (README "Layout"): a module may use
modules of its own layer or of a lower one, and no two modules may use each
other (directly or through others).  Which module uses which is read from
the objects with nm: every undefined symbol of one object that another
object defines.  A module missing from the table is an error too, so a new
file has to be placed in it.  A module is one object, or several that
share a private header (PARTS).
"""
import os
import subprocess
import sys

LAYERS = [
    # 0: pure logic and leaves on libc (and libconfig)
    ["lineproto", "netaddr", "acl", "ratelimit", "dgcheck", "dgbatch",
     "timecache", "config", "config_int", "proxyproto", "dgpeer", "clock",
     "escape", "strbuf", "sockfile", "sdlib", "nofork"],
    # 1: the process's services
    ["log", "notify", "process", "mailbox", "loop"],
    # 2: one socket or one session
    ["listener", "session", "stats"],
    # 3: connections, and the sessions one loop drives
    ["conn", "connloop", "inetd", "stopsig"],
    # 4: concurrency models
    ["model_sequential", "model_fork", "model_thread", "model_event", "model"],
    # 5: the listener set and admission
    ["listenset", "accept", "proxywait"],
    # 6: the server
    ["server"],
    # 7: the program
    ["main"],
]

# Objects that are files of one module (accept_impl.h, config_impl.h):
# admission's stream and datagram halves share its arming and conn
# helpers; config's schema tables name the printer's functions, and the
# printer walks the tables.
PARTS = {
    "accept_dgram": "accept",
    "config_schema": "config",
    "config_error": "config",
    "config_print": "config",
}


def symbols(obj):
    out = subprocess.run(["nm", "-P", obj], check=True, capture_output=True,
                         text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind in "TDBRVW":
            defined.add(name)
    return defined, undefined


def main():
    args = sys.argv[1:] or ["build"]
    layer = {m: i for i, ms in enumerate(LAYERS) for m in ms}
    if len(args) == 1 and os.path.isdir(args[0]):
        args = [os.path.join(args[0], f) for f in os.listdir(args[0])
                if f.endswith(".o")]
    paths = {os.path.basename(a)[:-2]: a for a in args if a.endswith(".o")}
    files = sorted(paths)
    if not files:
        print("check-deps: no objects in %s" % " ".join(sys.argv[1:]))
        return 1
    objs = sorted(set(PARTS.get(f, f) for f in files))
    defs = {m: set() for m in objs}
    uses = {m: set() for m in objs}
    for f in files:
        d, u = symbols(paths[f])
        defs[PARTS.get(f, f)] |= d
        uses[PARTS.get(f, f)] |= u
    owner = {}
    for m, d in defs.items():
        for s in d:
            owner[s] = m
    bad = 0
    for m in objs:
        if m not in layer:
            print("check-deps: %s is in no layer of %s" % (m, sys.argv[0]))
            bad += 1
    graph = {m: {} for m in objs}
    for m in objs:
        for s in uses[m]:
            o = owner.get(s)
            if o and o != m:
                graph[m].setdefault(o, []).append(s)
    for m in objs:
        for o, syms in sorted(graph[m].items()):
            if m in layer and o in layer and layer[o] > layer[m]:
                print("check-deps: %s (layer %d) uses %s (layer %d): %s" %
                      (m, layer[m], o, layer[o], ", ".join(sorted(syms))))
                bad += 1
    # No circles, not even within a layer.
    done, path = set(), []

    def visit(m):
        found = 0
        path.append(m)
        for o in sorted(graph[m]):
            if o in path:
                print("check-deps: circle: %s" %
                      " -> ".join(path[path.index(o):] + [o]))
                found += 1
            elif o not in done:
                found += visit(o)
        path.pop()
        done.add(m)
        return found

    for m in objs:
        if m not in done:
            bad += visit(m)
    if bad:
        print("check-deps: %d problem(s)" % bad)
        return 1
    print("check-deps: %d modules, every call goes down the layers" % len(objs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
