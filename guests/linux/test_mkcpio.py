"""Tests for mkcpio.py: the initramfs must be byte-for-byte reproducible
(measured boot hashes it) and hold the entries the manifest names.

Run: cd guests/linux && python3 -m unittest
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import stat
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mkcpio  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def read_cpio(data: bytes) -> list[dict]:
    """Parses a newc archive into a list of records (trailer excluded)."""
    out, i = [], 0
    while True:
        assert data[i : i + 6] == b"070701", f"bad magic at {i}"
        f = [int(data[i + 6 + 8 * k : i + 14 + 8 * k], 16) for k in range(13)]
        namesize, filesize = f[11], f[6]
        name = data[i + 110 : i + 110 + namesize - 1].decode()
        i = (i + 110 + namesize + 3) & ~3
        body = data[i : i + filesize]
        i = (i + filesize + 3) & ~3
        if name == "TRAILER!!!":
            assert i == len(data), "data after the trailer"
            return out
        out.append(
            dict(name=name, ino=f[0], mode=f[1], uid=f[2], gid=f[3], nlink=f[4],
                 mtime=f[5], data=body, rmajor=f[9], rminor=f[10])
        )


class Tree:
    """A small source tree and manifest in a temporary directory."""

    def __init__(self, tmp: str):
        self.tmp = tmp
        os.makedirs(os.path.join(tmp, "root/etc"))
        os.makedirs(os.path.join(tmp, "root/www/cgi-bin"))
        self.write("root/init", b"#!/bin/sh\necho hi\n", 0o755)
        self.write("root/etc/profile", b"PS1='x# '\n", 0o644)
        self.write("root/www/cgi-bin/status", b"#!/bin/sh\n", 0o700)
        self.write("busybox", b"\x7fELF fake busybox", 0o755)
        self.manifest = os.path.join(tmp, "list")
        self.set_manifest(
            "dir /dev 0755\n"
            "nod /dev/console 0600 c 5 1\n"
            "dir /tmp 1777\n"
            "file /bin/busybox busybox 0755   # trailing comment\n"
            "slink /bin/sh busybox 0777\n"
            "tree / root\n"
        )

    def write(self, rel: str, data: bytes, mode: int) -> None:
        p = os.path.join(self.tmp, rel)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)

    def set_manifest(self, text: str) -> None:
        with open(self.manifest, "w") as f:
            f.write(text)


class MkcpioTest(unittest.TestCase):
    def setUp(self):
        self._td = tempfile.TemporaryDirectory()
        self.t = Tree(self._td.name)

    def tearDown(self):
        self._td.cleanup()

    def test_same_inputs_give_same_bytes(self):
        a = mkcpio.build([self.t.manifest])
        b = mkcpio.build([self.t.manifest])
        self.assertEqual(a, b)

    def test_host_metadata_does_not_leak(self):
        # Timestamps of the sources and manifest line order must not matter.
        a = mkcpio.build([self.t.manifest])
        os.utime(os.path.join(self.t.tmp, "root/init"), (1, 1234567))
        os.utime(os.path.join(self.t.tmp, "busybox"), (1, 7654321))
        with open(self.t.manifest) as f:
            lines = f.read().splitlines()
        self.t.set_manifest("\n".join(reversed(lines)) + "\n")
        self.assertEqual(a, mkcpio.build([self.t.manifest]))

    def test_gzip_header_is_reproducible(self):
        data = mkcpio.build([self.t.manifest])
        self.assertEqual(data[:2], b"\x1f\x8b")
        self.assertEqual(data[4:8], b"\0\0\0\0", "gzip mtime must be 0")
        self.assertEqual(data[3] & 0x08, 0, "no file name in the gzip header")

    def test_content_changes_change_the_archive(self):
        a = mkcpio.build([self.t.manifest])
        self.t.write("root/init", b"#!/bin/sh\necho changed\n", 0o755)
        self.assertNotEqual(a, mkcpio.build([self.t.manifest]))

    def test_archive_lists_expected_entries(self):
        recs = read_cpio(gzip.decompress(mkcpio.build([self.t.manifest])))
        names = [r["name"] for r in recs]
        self.assertEqual(names, sorted(names), "entries are sorted")
        self.assertEqual(
            names,
            ["bin", "bin/busybox", "bin/sh", "dev", "dev/console", "etc", "etc/profile",
             "init", "tmp", "www", "www/cgi-bin", "www/cgi-bin/status"],
        )
        by = {r["name"]: r for r in recs}
        for r in recs:
            self.assertEqual((r["uid"], r["gid"], r["mtime"]), (0, 0, 0), r["name"])
        self.assertEqual([r["ino"] for r in recs], list(range(1, len(recs) + 1)))
        self.assertEqual(by["init"]["mode"], stat.S_IFREG | 0o755)
        self.assertEqual(by["init"]["data"], b"#!/bin/sh\necho hi\n")
        self.assertEqual(by["etc/profile"]["mode"], stat.S_IFREG | 0o644)
        # Any executable bit in the source tree gives 0755.
        self.assertEqual(by["www/cgi-bin/status"]["mode"], stat.S_IFREG | 0o755)
        self.assertEqual(by["bin/sh"]["mode"], stat.S_IFLNK | 0o777)
        self.assertEqual(by["bin/sh"]["data"], b"busybox")
        self.assertEqual(by["dev/console"]["mode"], stat.S_IFCHR | 0o600)
        self.assertEqual((by["dev/console"]["rmajor"], by["dev/console"]["rminor"]), (5, 1))
        self.assertEqual(by["tmp"]["mode"], stat.S_IFDIR | 0o1777)
        self.assertEqual(by["bin"]["mode"], stat.S_IFDIR | 0o755, "implicit parent")

    def test_several_manifests_add_up(self):
        extra = os.path.join(self.t.tmp, "extra.list")
        with open(extra, "w") as f:
            f.write("slink /bin/ls busybox 0777\n")
        names = [r["name"] for r in read_cpio(mkcpio.build([self.t.manifest, extra], False))]
        self.assertIn("bin/ls", names)
        self.assertIn("bin/sh", names)

    def test_bad_manifests_are_rejected(self):
        cases = {
            "duplicate": "slink /a x 0777\nslink /a y 0777\n",
            "dotdot": "dir /a/../b 0755\n",
            "missing source": "file /a nothere 0644\n",
            "bad mode": "dir /a 0999\n",
            "unknown kind": "pipe /a 0644\n",
            "file under file": "slink /a x 0777\nslink /a/b y 0777\n",
            "bad device type": "nod /dev/x 0600 p 1 1\n",
        }
        for what, text in cases.items():
            with self.subTest(what):
                self.t.set_manifest(text)
                with self.assertRaises(mkcpio.ManifestError):
                    mkcpio.build([self.t.manifest])

    def test_cli_writes_output(self):
        out = os.path.join(self.t.tmp, "out.cpio.gz")
        self.assertEqual(mkcpio.main([self.t.manifest, "-o", out]), 0)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), mkcpio.build([self.t.manifest]))
        self.t.set_manifest("dir /a/../b 0755\n")
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            self.assertEqual(mkcpio.main([self.t.manifest, "-o", out]), 1)
        self.assertIn("list:1: bad archive path", err.getvalue())

    def test_real_initramfs_manifest(self):
        # The project's static manifest and tree, with a stand-in for the
        # generated half (busybox and its links).
        gen = os.path.join(self.t.tmp, "gen.list")
        with open(gen, "w") as f:
            f.write(f"file /bin/busybox {self.t.tmp}/busybox 0755\n")
            f.write("slink /bin/sh busybox 0777\n")
        manifests = [os.path.join(HERE, "initramfs.list"), gen]
        a = mkcpio.build(manifests)
        self.assertEqual(a, mkcpio.build(manifests))
        by = {r["name"]: r for r in read_cpio(gzip.decompress(a))}
        for name in ("init", "bin/busybox", "bin/sh", "dev/console", "etc/profile",
                     "etc/udhcpc.script", "etc/passwd", "www/cgi-bin/status",
                     "usr/share/septum/status.sh", "proc", "sys", "tmp", "run"):
            self.assertIn(name, by)
        for exe in ("init", "etc/udhcpc.script", "www/cgi-bin/status", "usr/share/septum/status.sh"):
            self.assertEqual(by[exe]["mode"], stat.S_IFREG | 0o755, exe)
            self.assertTrue(by[exe]["data"].startswith(b"#!/bin/sh\n"), exe)
        self.assertEqual(by["bin/septum-status"]["data"], b"/usr/share/septum/status.sh")


if __name__ == "__main__":
    unittest.main()
