#!/usr/bin/env python3
"""Deterministic gzip'd newc cpio archives for the Linux guest's initramfs.

Measured boot hashes the initramfs, so the same inputs must give the same
bytes: every entry has mtime 0, uid/gid 0, an inode number given by its
position, and entries are written in sorted path order. Parent directories
are added automatically. Nothing is read from the host except the content
and the executable bit of the files named in the manifest.

The manifest follows the kernel's gen_init_cpio list format (one entry per
line, '#' starts a comment):

    dir   <path> <mode>
    file  <path> <source> <mode>
    slink <path> <target> <mode>
    nod   <path> <mode> <c|b> <major> <minor>
    tree  <path> <source-dir>      (septum extension: a whole directory,
                                    '/' for the root; files get 0755 if
                                    executable, else 0644)

Paths may not contain '#' or spaces. Relative sources are resolved against
the directory of the manifest that names them; several manifests add up to
one archive. Usage:

    mkcpio.py MANIFEST... -o OUT.cpio.gz [--no-gzip]
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import stat
import sys
from dataclasses import dataclass

MAGIC = b"070701"  # newc, no checksum
TRAILER = "TRAILER!!!"


class ManifestError(Exception):
    pass


@dataclass(frozen=True)
class Entry:
    path: str  # absolute-free: "bin/busybox", never "/bin/busybox"
    mode: int  # full st_mode (type bits included)
    data: bytes = b""
    rdev_major: int = 0
    rdev_minor: int = 0


def _norm(path: str, where: str) -> str:
    p = path.strip("/")
    parts = p.split("/")
    if not p or any(part in ("", ".", "..") for part in parts):
        raise ManifestError(f"{where}: bad archive path '{path}'")
    return p


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def _mode(text: str, where: str) -> int:
    try:
        m = int(text, 8)
    except ValueError:
        raise ManifestError(f"{where}: bad mode '{text}'") from None
    if m & ~0o7777:
        raise ManifestError(f"{where}: mode '{text}' out of range")
    return m


class Archive:
    """A set of entries keyed by path; adding the same path twice is an error
    unless both are identical directories (trees may overlap on parents)."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def add(self, entry: Entry, where: str) -> None:
        old = self.entries.get(entry.path)
        if old is not None:
            if old == entry and stat.S_ISDIR(entry.mode):
                return
            raise ManifestError(f"{where}: '{entry.path}' is already in the archive")
        self.entries[entry.path] = entry

    def add_dir(self, path: str, perm: int, where: str) -> None:
        self.add(Entry(path, stat.S_IFDIR | perm), where)

    def add_file(self, path: str, source: str, perm: int, where: str) -> None:
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ManifestError(f"{where}: cannot read '{source}': {e.strerror}") from None
        self.add(Entry(path, stat.S_IFREG | perm, data), where)

    def add_tree(self, path: str, source: str, where: str) -> None:
        # path "" is the archive's root, which has no entry of its own.
        if not os.path.isdir(source):
            raise ManifestError(f"{where}: '{source}' is not a directory")
        if path:
            self.add_dir(path, 0o755, where)
        for root, dirs, files in os.walk(source):
            dirs.sort()
            rel = os.path.relpath(root, source)
            base = "/".join(p for p in (path, "" if rel == "." else rel) if p)
            for d in dirs:
                full = os.path.join(root, d)
                if os.path.islink(full):
                    raise ManifestError(f"{where}: symlink '{full}' in tree (use slink)")
                self.add_dir(_join(base, d), 0o755, where)
            for name in sorted(files):
                full = os.path.join(root, name)
                if os.path.islink(full) or not os.path.isfile(full):
                    raise ManifestError(f"{where}: '{full}' is not a regular file (use slink/nod)")
                perm = 0o755 if os.stat(full).st_mode & 0o111 else 0o644
                self.add_file(_join(base, name), full, perm, where)

    def add_parents(self) -> None:
        for path in list(self.entries):
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                parent = "/".join(parts[:i])
                if parent not in self.entries:
                    self.entries[parent] = Entry(parent, stat.S_IFDIR | 0o755)
                elif not stat.S_ISDIR(self.entries[parent].mode):
                    raise ManifestError(f"'{parent}' is used as a directory but is not one")

    def to_cpio(self) -> bytes:
        self.add_parents()
        out = io.BytesIO()
        for ino, path in enumerate(sorted(self.entries), start=1):
            e = self.entries[path]
            nlink = 2 if stat.S_ISDIR(e.mode) else 1
            _write_record(out, path, e.mode, e.data, ino, nlink, e.rdev_major, e.rdev_minor)
        _write_record(out, TRAILER, 0, b"", 0, 1, 0, 0)
        return out.getvalue()


def _pad4(out: io.BytesIO) -> None:
    out.write(b"\0" * (-out.tell() % 4))


def _write_record(out, name, mode, data, ino, nlink, rmaj, rmin) -> None:
    name_b = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmaj, rmin, len(name_b), 0)
    out.write(MAGIC + b"".join(b"%08X" % f for f in fields))
    out.write(name_b)
    _pad4(out)
    out.write(data)
    _pad4(out)


def parse_manifest(
    text: str, base_dir: str, origin: str = "manifest", arc: Archive | None = None
) -> Archive:
    arc = Archive() if arc is None else arc
    for lineno, raw in enumerate(text.splitlines(), start=1):
        where = f"{origin}:{lineno}"
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        f = line.split()
        kind, args = f[0], f[1:]

        def src(p: str) -> str:
            return p if os.path.isabs(p) else os.path.join(base_dir, p)

        if kind == "dir" and len(args) == 2:
            arc.add_dir(_norm(args[0], where), _mode(args[1], where), where)
        elif kind == "file" and len(args) == 3:
            arc.add_file(_norm(args[0], where), src(args[1]), _mode(args[2], where), where)
        elif kind == "slink" and len(args) == 3:
            arc.add(
                Entry(_norm(args[0], where), stat.S_IFLNK | _mode(args[2], where), args[1].encode()),
                where,
            )
        elif kind == "nod" and len(args) == 5:
            if args[2] not in ("c", "b"):
                raise ManifestError(f"{where}: device type must be c or b")
            try:
                major, minor = int(args[3]), int(args[4])
            except ValueError:
                raise ManifestError(f"{where}: bad device numbers") from None
            kind_bits = stat.S_IFCHR if args[2] == "c" else stat.S_IFBLK
            arc.add(
                Entry(_norm(args[0], where), kind_bits | _mode(args[1], where), b"", major, minor),
                where,
            )
        elif kind == "tree" and len(args) == 2:
            root = "" if args[0] == "/" else _norm(args[0], where)
            arc.add_tree(root, src(args[1]), where)
        else:
            raise ManifestError(f"{where}: cannot parse '{line}'")
    return arc


def gzip_bytes(data: bytes) -> bytes:
    # mtime=0 and no file name in the header keep the output reproducible.
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as g:
        g.write(data)
    return out.getvalue()


def build(manifest_paths: list[str], compress: bool = True) -> bytes:
    arc = Archive()
    for mp in manifest_paths:
        try:
            with open(mp, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ManifestError(f"cannot read manifest '{mp}': {e.strerror}") from None
        parse_manifest(text, os.path.dirname(os.path.abspath(mp)), mp, arc)
    data = arc.to_cpio()
    return gzip_bytes(data) if compress else data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifest", nargs="+")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--no-gzip", action="store_true", help="write the plain cpio")
    a = ap.parse_args(argv)
    try:
        data = build(a.manifest, compress=not a.no_gzip)
    except ManifestError as e:
        print(f"mkcpio: {e}", file=sys.stderr)
        return 1
    tmp = a.output + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, a.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
