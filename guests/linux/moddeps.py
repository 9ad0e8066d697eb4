#!/usr/bin/env python3
"""Load order for a set of kernel modules, read from the modules themselves.

Debian's kernel packages ship no modules.dep (depmod runs at install time),
and the host may have no kmod, so this reads each module's `.modinfo` ELF
section (`depends=`) directly. Modules may be plain `.ko` or compressed
`.ko.xz` / `.ko.gz`. A dependency listed in `modules.builtin` needs no
loading. Output: one path per line, relative to the modules directory, in an
order where every module comes after what it depends on.

    moddeps.py MODULES_DIR NAME...

Wanted modules that are built in are reported on stderr and skipped.
"""

from __future__ import annotations

import gzip
import lzma
import os
import struct
import sys


class ModError(Exception):
    pass


def read_module(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".gz"):
        return gzip.decompress(data)
    return data


def modinfo(elf: bytes, origin: str = "module") -> dict[str, list[str]]:
    """The key=value strings of a 64-bit little-endian ELF's .modinfo."""
    if len(elf) < 64 or elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise ModError(f"{origin}: not a 64-bit little-endian ELF")
    (shoff,) = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    if shentsize < 64 or shstrndx >= shnum or shoff + shnum * shentsize > len(elf):
        raise ModError(f"{origin}: bad section header table")
    secs = [struct.unpack_from("<IIQQQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    str_off = secs[shstrndx][4]
    for name_off, _type, _flags, _addr, off, size in secs:
        start = str_off + name_off
        name = elf[start : elf.index(b"\0", start)]
        if name == b".modinfo":
            info: dict[str, list[str]] = {}
            for item in elf[off : off + size].split(b"\0"):
                if b"=" in item:
                    k, v = item.decode(errors="replace").split("=", 1)
                    info.setdefault(k, []).append(v)
            return info
    raise ModError(f"{origin}: no .modinfo section")


def canon(name: str) -> str:
    # The kernel treats '-' and '_' in module names as the same.
    return name.replace("-", "_")


def index_modules(moddir: str) -> tuple[dict[str, str], set[str]]:
    """name -> relative path of every module file, and the built-in names."""
    found: dict[str, str] = {}
    for root, dirs, files in os.walk(moddir):
        dirs.sort()
        for f in sorted(files):
            for ext in (".ko", ".ko.xz", ".ko.gz"):
                if f.endswith(ext):
                    rel = os.path.relpath(os.path.join(root, f), moddir)
                    found.setdefault(canon(f[: -len(ext)]), rel)
    builtin: set[str] = set()
    try:
        with open(os.path.join(moddir, "modules.builtin"), encoding="utf-8") as fh:
            for line in fh:
                base = os.path.basename(line.strip())
                if base.endswith(".ko"):
                    builtin.add(canon(base[:-3]))
    except FileNotFoundError:
        pass
    return found, builtin


def load_order(moddir: str, wanted: list[str]) -> list[str]:
    found, builtin = index_modules(moddir)
    order: list[str] = []
    state: dict[str, str] = {}  # name -> "visiting" | "done"

    def visit(name: str, chain: list[str]) -> None:
        name = canon(name)
        if state.get(name) == "done" or name in builtin:
            return
        if state.get(name) == "visiting":
            raise ModError("dependency cycle: " + " -> ".join(chain + [name]))
        if name not in found:
            via = f" (needed by {chain[-1]})" if chain else ""
            raise ModError(f"module '{name}' is neither in {moddir} nor built in{via}")
        state[name] = "visiting"
        rel = found[name]
        info = modinfo(read_module(os.path.join(moddir, rel)), rel)
        for deps in info.get("depends", []):
            for dep in deps.split(","):
                if dep:
                    visit(dep, chain + [name])
        state[name] = "done"
        order.append(rel)

    for w in wanted:
        if canon(w) in builtin:
            print(f"moddeps: {w} is built into the kernel", file=sys.stderr)
        visit(w, [])
    return order


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    moddir, wanted = argv[0], argv[1:]
    try:
        for rel in load_order(moddir, wanted):
            print(rel)
    except (ModError, OSError, lzma.LZMAError) as e:
        print(f"moddeps: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
