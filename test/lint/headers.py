#!/usr/bin/python3
"""Header self-containment lint (STYLE.md section 7).

Every .h under proto/ storage/ cluster/ broker/ must compile on its own: a
wrapper that includes it twice, by its module path, is compiled with

  cc -std=c11 -D_POSIX_C_SOURCE=200809L -fsyntax-only -I<root> \\
     $(pkg-config --cflags libevent) -x c wrapper.c

so a header that leans on an earlier include, or whose include guard is
missing or broken, fails. The guard is also checked by name: the first two
directives are #ifndef MOD_FILE_H / #define MOD_FILE_H (proto/buf.h ->
PROTO_BUF_H). CC overrides the compiler.

Usage: headers.py [ROOT]   Exits 1 if any header fails.
"""

import concurrent.futures
import os
import re
import shlex
import subprocess
import sys
import tempfile

MODULES = ["proto", "storage", "cluster", "broker"]
# pkg-config packages whose headers a module header may include; libevent
# is required, the others are added when pkg-config knows them.
PKGS_REQUIRED = ["libevent"]
PKGS_OPTIONAL = ["lmdb", "libprotobuf-c", "openssl", "inih"]

DIRECTIVE_RE = re.compile(r"^[ \t]*#[ \t]*(\w+)[ \t]*(\S*)")


def pkg_cflags(pkgs, required):
    flags = []
    for pkg in pkgs:
        try:
            r = subprocess.run(["pkg-config", "--cflags", pkg],
                               capture_output=True, text=True)
        except FileNotFoundError:
            if required:
                raise SystemExit("headers.py: pkg-config not found")
            continue
        if r.returncode != 0:
            if required:
                raise SystemExit("headers.py: pkg-config --cflags %s: %s"
                                 % (pkg, r.stderr.strip()))
            continue
        flags += shlex.split(r.stdout)
    return flags


def headers(root):
    for mod in MODULES:
        for dirpath, dirnames, files in os.walk(os.path.join(root, mod)):
            dirnames.sort()
            for name in sorted(files):
                if name.endswith(".h") and ".pb-c." not in name:
                    rel = os.path.relpath(os.path.join(dirpath, name), root)
                    yield rel.replace(os.sep, "/")


def guard_name(rel):
    return re.sub(r"[^A-Za-z0-9]", "_", rel).upper()


def check_guard(root, rel):
    """The first two directives must be #ifndef G / #define G."""
    want = guard_name(rel)
    found = []
    with open(os.path.join(root, rel), encoding="utf-8",
              errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            m = DIRECTIVE_RE.match(line)
            if m:
                found.append((lineno, m.group(1), m.group(2)))
                if len(found) == 2:
                    break
    if (len(found) == 2 and found[0][1:] == ("ifndef", want)
            and found[1][1:] == ("define", want)):
        return None
    lineno = found[0][0] if found else 1
    return ("%s:%d: include guard must open the header as "
            "#ifndef %s / #define %s" % (rel, lineno, want, want))


def compile_twice(cc, cflags, root, tmpdir, rel):
    wrapper = os.path.join(tmpdir, guard_name(rel).lower() + ".c")
    with open(wrapper, "w") as f:
        f.write('#include "%s"\n#include "%s"\n' % (rel, rel))
    cmd = cc + ["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-fsyntax-only",
                "-I" + root] + cflags + ["-x", "c", wrapper]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode == 0:
        return None
    return ("%s: does not compile alone (included twice)\n  $ %s\n%s"
            % (rel, " ".join(shlex.quote(a) for a in cmd),
               r.stdout + r.stderr))


def main(argv):
    if len(argv) > 2:
        sys.stderr.write("usage: headers.py [ROOT]\n")
        return 2
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.abspath(argv[1] if len(argv) > 1
                           else os.path.join(here, "..", ".."))
    if not os.path.isdir(os.path.join(root, "proto")):
        sys.stderr.write("headers.py: %s is not the mqd root\n" % root)
        return 2
    cc = shlex.split(os.environ.get("CC") or "cc")
    cflags = (pkg_cflags(PKGS_REQUIRED, True)
              + pkg_cflags(PKGS_OPTIONAL, False))
    hdrs = list(headers(root))
    failures = []
    with tempfile.TemporaryDirectory(prefix="mqd-lint-") as tmp:
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) \
                as pool:
            results = pool.map(
                lambda h: (check_guard(root, h),
                           compile_twice(cc, cflags, root, tmp, h)), hdrs)
            for guard, comp in results:
                failures += [x for x in (guard, comp) if x]
    for msg in failures:
        print(msg)
    print("headers: %d headers checked, %d failure%s"
          % (len(hdrs), len(failures), "" if len(failures) == 1 else "s"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
