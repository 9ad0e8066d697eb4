"""Tests for moddeps.py: the module load order puts every module after its
dependencies, skips built-ins and reads compressed modules.

Run: cd guests/linux && python3 -m unittest
"""

from __future__ import annotations

import lzma
import os
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moddeps  # noqa: E402


def fake_module(name: str, depends: str) -> bytes:
    """A minimal 64-bit little-endian ELF with a .modinfo section."""
    modinfo = f"license=GPL\0depends={depends}\0name={name}\0".encode()
    shstrtab = b"\0.modinfo\0.shstrtab\0"
    body_off = 64
    modinfo_off = body_off
    shstr_off = modinfo_off + len(modinfo)
    shoff = (shstr_off + len(shstrtab) + 7) & ~7
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x28, shoff)
    struct.pack_into("<HHH", header, 0x3A, 64, 3, 2)
    sections = [
        struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        struct.pack("<IIQQQQIIQQ", 1, 1, 0, 0, modinfo_off, len(modinfo), 0, 0, 1, 0),
        struct.pack("<IIQQQQIIQQ", 10, 3, 0, 0, shstr_off, len(shstrtab), 0, 0, 1, 0),
    ]
    data = bytes(header) + modinfo + shstrtab
    data += b"\0" * (shoff - len(data))
    return data + b"".join(sections)


class ModdepsTest(unittest.TestCase):
    def setUp(self):
        self._td = tempfile.TemporaryDirectory()
        self.dir = self._td.name

    def tearDown(self):
        self._td.cleanup()

    def add(self, rel: str, name: str, depends: str = "", xz: bool = False) -> None:
        p = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        data = fake_module(name, depends)
        with open(p, "wb") as f:
            f.write(lzma.compress(data) if xz else data)

    def test_dependencies_come_first(self):
        # Mirrors linux-image-cloud-arm64 6.1: virtio core, ring and mmio are modules.
        self.add("kernel/drivers/virtio/virtio_ring.ko", "virtio_ring")
        self.add("kernel/drivers/virtio/virtio.ko", "virtio", "virtio_ring")
        self.add("kernel/drivers/virtio/virtio_mmio.ko", "virtio_mmio", "virtio,virtio_ring")
        self.add("kernel/net/core/failover.ko", "failover")
        self.add("kernel/drivers/net/net_failover.ko", "net_failover", "failover")
        self.add("kernel/drivers/net/virtio_net.ko", "virtio_net", "virtio_ring,virtio,net_failover")
        order = moddeps.load_order(self.dir, ["virtio_mmio", "virtio_net"])
        self.assertEqual(
            order,
            [
                "kernel/drivers/virtio/virtio_ring.ko",
                "kernel/drivers/virtio/virtio.ko",
                "kernel/drivers/virtio/virtio_mmio.ko",
                "kernel/net/core/failover.ko",
                "kernel/drivers/net/net_failover.ko",
                "kernel/drivers/net/virtio_net.ko",
            ],
        )

    def test_builtin_dependencies_are_skipped(self):
        self.add("kernel/drivers/watchdog/sp805_wdt.ko", "sp805_wdt", "watchdog")
        with open(os.path.join(self.dir, "modules.builtin"), "w") as f:
            f.write("kernel/drivers/watchdog/watchdog.ko\n")
        self.assertEqual(
            moddeps.load_order(self.dir, ["sp805_wdt"]),
            ["kernel/drivers/watchdog/sp805_wdt.ko"],
        )

    def test_compressed_modules_and_dash_names(self):
        self.add("kernel/a/virtio-rng.ko.xz", "virtio_rng", "virtio", xz=True)
        self.add("kernel/a/virtio.ko.xz", "virtio", "", xz=True)
        self.assertEqual(
            moddeps.load_order(self.dir, ["virtio_rng"]),
            ["kernel/a/virtio.ko.xz", "kernel/a/virtio-rng.ko.xz"],
        )

    def test_missing_module_and_cycle_are_errors(self):
        self.add("kernel/a.ko", "a", "b")
        with self.assertRaisesRegex(moddeps.ModError, "'b'.*needed by a"):
            moddeps.load_order(self.dir, ["a"])
        self.add("kernel/b.ko", "b", "a")
        with self.assertRaisesRegex(moddeps.ModError, "cycle"):
            moddeps.load_order(self.dir, ["a"])

    def test_not_an_elf(self):
        with self.assertRaises(moddeps.ModError):
            moddeps.modinfo(b"not an elf at all" * 8)


if __name__ == "__main__":
    unittest.main()
