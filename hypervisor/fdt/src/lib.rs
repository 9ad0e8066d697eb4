//! A reader for flattened device trees (DTB, Devicetree Specification
//! chapter 5). Two users, one reader: the hypervisor checks the firmware's
//! tree against its configuration at boot and reads the partitions'
//! generated trees, and the critical partition's RTOS finds its interrupt
//! controller in the tree its boot argument points at. One parser to
//! review, test and fuzz (`fdt`, `rtos_fdt`), with no dependencies.
//!
//! Device-tree data is not trusted to be well formed: every read is bounds
//! checked, and a malformed blob gives an error or ends the walk, never a
//! panic. NOP tokens are skipped wherever they occur (QEMU and libfdt NOP
//! out deleted nodes and properties; the `fdt` crate this replaces panicked
//! on NOPs between sibling nodes).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "builder"))]
pub mod builder;

/// The header's magic (Devicetree Specification 5.2).
pub const MAGIC: u32 = 0xd00d_feed;
/// The header's size up to and including `size_dt_struct`.
pub const HEADER_LEN: usize = 40;
/// Deepest node nesting walked; real trees are a few levels deep.
pub const MAX_DEPTH: usize = 16;

/// Structure-block tokens (Devicetree Specification 5.4.1), shared with
/// `septum-config`'s writer.
pub const BEGIN_NODE: u32 = 1;
pub const END_NODE: u32 = 2;
pub const PROP: u32 = 3;
pub const NOP: u32 = 4;
pub const END: u32 = 9;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtError {
    /// No FDT magic at the start.
    BadMagic,
    /// A header field points outside the blob, or the blob is shorter than
    /// its header says.
    Truncated,
    /// Version below 16 (the oldest this reader understands).
    Version(u32),
}

fn be32(b: &[u8], off: usize) -> Option<u32> {
    let bytes = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// The blob's `totalsize` from its header (at least [`HEADER_LEN`]).
pub fn total_size(header: &[u8]) -> Result<usize, FdtError> {
    if be32(header, 0) != Some(MAGIC) {
        return Err(FdtError::BadMagic);
    }
    let total = be32(header, 4).ok_or(FdtError::Truncated)? as usize;
    if total < HEADER_LEN {
        return Err(FdtError::Truncated);
    }
    Ok(total)
}

/// A parsed header: the structure and strings blocks.
#[derive(Clone, Copy, Debug)]
pub struct Fdt<'a> {
    structs: &'a [u8],
    strings: &'a [u8],
    total: usize,
}

impl<'a> Fdt<'a> {
    /// Checks the header of the tree at the start of `blob`.
    pub fn new(blob: &'a [u8]) -> Result<Self, FdtError> {
        let total = total_size(blob)?;
        let blob = blob.get(..total).ok_or(FdtError::Truncated)?;
        let field = |off| {
            be32(blob, off)
                .map(|v| v as usize)
                .ok_or(FdtError::Truncated)
        };
        let version = be32(blob, 20).ok_or(FdtError::Truncated)?;
        if version < 16 {
            return Err(FdtError::Version(version));
        }
        let struct_off = field(8)?;
        let strings_off = field(12)?;
        let strings_len = field(32)?;
        // size_dt_struct exists from version 17 on; before, the blob's end bounds it.
        let struct_end = if version >= 17 {
            struct_off
                .checked_add(field(36)?)
                .ok_or(FdtError::Truncated)?
        } else {
            total
        };
        let structs = blob
            .get(struct_off..struct_end)
            .ok_or(FdtError::Truncated)?;
        let strings_end = strings_off
            .checked_add(strings_len)
            .ok_or(FdtError::Truncated)?;
        let strings = blob
            .get(strings_off..strings_end)
            .ok_or(FdtError::Truncated)?;
        Ok(Fdt {
            structs,
            strings,
            total,
        })
    }

    /// `totalsize` of the blob.
    pub fn total_size(&self) -> usize {
        self.total
    }

    /// Every node in document order (the root first, at depth 0). The walk
    /// stops at the first malformed token or below [`MAX_DEPTH`].
    pub fn nodes(&self) -> Nodes<'a> {
        Nodes {
            fdt: *self,
            pos: 0,
            depth: 0,
            done: false,
        }
    }

    /// The node at `path` ("/", "/chosen", "/soc/serial@7e201000"): each
    /// component matches a node name exactly, or its name before '@'.
    pub fn find(&self, path: &str) -> Option<Node<'a>> {
        let want: &[u8] = path.as_bytes();
        let mut parts = [&b""[..]; MAX_DEPTH];
        let mut n = 0;
        for part in want.split(|&c| c == b'/').filter(|p| !p.is_empty()) {
            *parts.get_mut(n)? = part;
            n += 1;
        }
        // matched[d] = the path component at depth d matched.
        let mut matched = 0;
        for node in self.nodes() {
            if node.depth == 0 {
                if n == 0 {
                    return Some(node);
                }
                continue;
            }
            if node.depth > matched + 1 {
                continue;
            }
            matched = node.depth - 1;
            let Some(&part) = parts.get(node.depth - 1) else {
                continue;
            };
            let name = node.name;
            let base = name.split(|&c| c == b'@').next().unwrap_or(name);
            if name == part || (!part.contains(&b'@') && base == part) {
                matched = node.depth;
                if matched == n {
                    return Some(node);
                }
            }
        }
        None
    }

    fn string(&self, off: usize) -> Option<&'a [u8]> {
        let s = self.strings.get(off..)?;
        let len = s.iter().position(|&c| c == 0)?;
        Some(&s[..len])
    }

    /// The token at `pos` and the position after it.
    fn token(&self, pos: usize) -> Option<(Token<'a>, usize)> {
        self.token_as(pos, true)
    }

    /// As [`Self::token`]; with `names` false a property's name is only
    /// checked, not found (`Prop(b"", ..)`): the node walk needs no names,
    /// and when the strings block ends in a NUL every offset inside it
    /// names a string, so the check is one compare instead of a scan.
    fn token_as(&self, pos: usize, names: bool) -> Option<(Token<'a>, usize)> {
        let b = self.structs;
        if !names && be32(b, pos)? == PROP {
            let len = be32(b, pos + 4)? as usize;
            let off = be32(b, pos + 8)? as usize;
            let named = if self.strings.last() == Some(&0) {
                off < self.strings.len()
            } else {
                self.string(off).is_some()
            };
            if !named {
                return None;
            }
            let at = pos + 12;
            let value = b.get(at..at.checked_add(len)?)?;
            return Some((Token::Prop(b"", value), align4(at + len)?));
        }
        match be32(b, pos)? {
            BEGIN_NODE => {
                let name_at = pos + 4;
                let rest = b.get(name_at..)?;
                let len = rest.iter().position(|&c| c == 0)?;
                Some((Token::Begin(&rest[..len]), align4(name_at + len + 1)?))
            }
            END_NODE => Some((Token::End, pos + 4)),
            PROP => {
                let len = be32(b, pos + 4)? as usize;
                let name = self.string(be32(b, pos + 8)? as usize)?;
                let at = pos + 12;
                let value = b.get(at..at.checked_add(len)?)?;
                Some((Token::Prop(name, value), align4(at + len)?))
            }
            NOP => Some((Token::Nop, pos + 4)),
            END => Some((Token::Finish, pos + 4)),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    Begin(&'a [u8]),
    End,
    Prop(&'a [u8], &'a [u8]),
    Nop,
    Finish,
}

/// One node: its name, depth (root = 0) and properties.
#[derive(Clone, Copy, Debug)]
pub struct Node<'a> {
    pub name: &'a [u8],
    pub depth: usize,
    fdt: Fdt<'a>,
    /// Position of its first property (or child, or end) token.
    props_at: usize,
}

impl<'a> Node<'a> {
    /// Its properties, in order, up to its first child or its end.
    pub fn props(&self) -> Props<'a> {
        Props {
            fdt: self.fdt,
            pos: self.props_at,
        }
    }

    /// The value of property `name`.
    pub fn prop(&self, name: &str) -> Option<&'a [u8]> {
        self.props()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| v)
    }

    /// A one-cell property (`#address-cells`, `phandle`, ...).
    pub fn prop_u32(&self, name: &str) -> Option<u32> {
        let v = self.prop(name)?;
        if v.len() == 4 {
            be32(v, 0)
        } else {
            None
        }
    }

    /// A string property without its NUL; `None` if it is not a string.
    pub fn prop_str(&self, name: &str) -> Option<&'a str> {
        strings(self.prop(name)?).next()
    }

    /// Whether `compatible` lists any of `with`.
    pub fn compatible_with(&self, with: &[&str]) -> bool {
        self.prop("compatible")
            .is_some_and(|v| strings(v).any(|s| with.contains(&s)))
    }

    /// `#address-cells` / `#size-cells` for this node's children (2 and 1
    /// when absent, as the specification says).
    pub fn child_cells(&self) -> (usize, usize) {
        (
            self.prop_u32("#address-cells").map_or(2, |v| v as usize),
            self.prop_u32("#size-cells").map_or(1, |v| v as usize),
        )
    }
}

/// The NUL-terminated UTF-8 strings of a string-list property.
pub fn strings(v: &[u8]) -> impl Iterator<Item = &str> {
    let v = v.strip_suffix(&[0]).unwrap_or(&[]);
    v.split(|&c| c == 0)
        .filter(|s| !s.is_empty())
        .filter_map(|s| core::str::from_utf8(s).ok())
}

/// A big-endian number of `n` cells (more than two keep the low 64 bits)
/// from the front of `v`, and the rest.
pub fn read_cells(v: &[u8], n: usize) -> Option<(u64, &[u8])> {
    let bytes = n.checked_mul(4)?;
    if bytes == 0 || v.len() < bytes {
        return None;
    }
    let (head, rest) = v.split_at(bytes);
    let val = head.chunks_exact(4).fold(0u64, |acc, c| {
        (acc << 32) | u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    });
    Some((val, rest))
}

/// (address, size) pairs of a `reg` property with the given cell counts.
pub fn reg_entries(v: &[u8], addr_cells: usize, size_cells: usize) -> RegEntries<'_> {
    RegEntries {
        v,
        addr_cells,
        size_cells,
    }
}

pub struct RegEntries<'a> {
    v: &'a [u8],
    addr_cells: usize,
    size_cells: usize,
}

impl Iterator for RegEntries<'_> {
    type Item = (u64, u64);
    fn next(&mut self) -> Option<(u64, u64)> {
        let (addr, rest) = read_cells(self.v, self.addr_cells)?;
        let (size, rest) = if self.size_cells == 0 {
            (0, rest)
        } else {
            read_cells(rest, self.size_cells)?
        };
        self.v = rest;
        Some((addr, size))
    }
}

pub struct Props<'a> {
    fdt: Fdt<'a>,
    pos: usize,
}

impl<'a> Iterator for Props<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (tok, next) = self.fdt.token(self.pos)?;
            match tok {
                Token::Nop => self.pos = next,
                Token::Prop(name, value) => {
                    self.pos = next;
                    return Some((name, value));
                }
                _ => return None,
            }
        }
    }
}

pub struct Nodes<'a> {
    fdt: Fdt<'a>,
    pos: usize,
    /// Depth of the next node to begin.
    depth: usize,
    done: bool,
}

impl<'a> Iterator for Nodes<'a> {
    type Item = Node<'a>;
    fn next(&mut self) -> Option<Node<'a>> {
        while !self.done {
            let Some((tok, next)) = self.fdt.token_as(self.pos, false) else {
                self.done = true;
                break;
            };
            self.pos = next;
            match tok {
                Token::Begin(name) => {
                    if self.depth >= MAX_DEPTH {
                        self.done = true;
                        break;
                    }
                    let node = Node {
                        name,
                        depth: self.depth,
                        fdt: self.fdt,
                        props_at: next,
                    };
                    self.depth += 1;
                    return Some(node);
                }
                Token::End => {
                    if self.depth == 0 {
                        self.done = true;
                    } else {
                        self.depth -= 1;
                    }
                }
                Token::Prop(..) | Token::Nop => {}
                Token::Finish => self.done = true,
            }
        }
        None
    }
}

/// Most memory banks [`Survey`] records.
pub const MAX_MEMORY_BANKS: usize = 8;

/// What the hypervisor's boot check needs from the firmware's tree, with
/// every `reg` translated to CPU addresses through the `ranges` of the
/// buses above it (on the Pi the devices sit under /soc, whose `ranges`
/// maps bus address 0x7e20_1000 to CPU address 0xfe20_1000).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Survey<'a> {
    /// The root's `model`.
    pub model: Option<&'a str>,
    /// Nodes of `device_type = "cpu"` (at depth 2, under /cpus).
    pub cpus: usize,
    /// `reg` entries of the root's `device_type = "memory"` nodes.
    pub memory: [(u64, u64); MAX_MEMORY_BANKS],
    pub memory_banks: usize,
    /// The first two `reg` addresses of the first node compatible with the
    /// GIC strings asked for (distributor and redistributor / CPU interface).
    pub gic: Option<[Option<u64>; 2]>,
    /// Whether some node's first `reg` entry starts at the address asked for.
    pub device_found: bool,
    /// /psci's `method`.
    pub psci_method: Option<&'a str>,
}

impl Survey<'_> {
    pub fn memory(&self) -> &[(u64, u64)] {
        &self.memory[..self.memory_banks.min(MAX_MEMORY_BANKS)]
    }
}

/// A node's contribution to the address translation of its children.
#[derive(Clone, Copy, Default)]
struct Bus<'a> {
    /// `#address-cells`, `#size-cells` for its children.
    cells: (usize, usize),
    /// Its own parent's `#address-cells` (the width of `ranges`' parent
    /// addresses).
    parent_addr_cells: usize,
    /// None: no `ranges` (children's addresses do not reach the CPU).
    ranges: Option<&'a [u8]>,
}

/// Translates `addr` through `buses` (outermost first, the root excluded).
fn translate(mut addr: u64, buses: &[Bus<'_>]) -> Option<u64> {
    for bus in buses.iter().rev() {
        let mut r = bus.ranges?;
        if r.is_empty() {
            continue;
        }
        let mut hit = None;
        while !r.is_empty() {
            let (child, rest) = read_cells(r, bus.cells.0)?;
            let (parent, rest) = read_cells(rest, bus.parent_addr_cells)?;
            let (len, rest) = read_cells(rest, bus.cells.1)?;
            r = rest;
            if addr >= child && addr - child < len {
                hit = Some(parent.checked_add(addr - child)?);
                break;
            }
        }
        addr = hit?;
    }
    Some(addr)
}

/// Walks `tree` once and records a [`Survey`]. A `reg` entry that does not
/// translate (no `ranges` on the way) is left out.
///
/// One pass over the structure block, each property decoded once and its
/// name resolved through a small cache of string offsets (the hypervisor
/// runs this before the critical partition starts; walking the nodes and
/// then each node's properties, with a string scan per property, cost
/// twice as much on QEMU's tree). Same answers as walking
/// [`Fdt::nodes`] and [`Node::props`] (host-tested against that).
pub fn survey<'a>(tree: &Fdt<'a>, gic_compatible: &[&str], device_at: u64) -> Survey<'a> {
    let mut w = Surveyor::new(gic_compatible, device_at);
    let mut names = NameCache::new();
    let mut open: Option<OpenNode<'a>> = None;
    let mut depth = 0;
    let mut pos = 0;
    while let Some((tok, next)) = tree.token_as(pos, false) {
        let at = pos;
        pos = next;
        match tok {
            Token::Prop(_, value) => {
                if let Some((_, _, p)) = open.as_mut() {
                    // The token is PROP, len, nameoff, value; token_as
                    // checked that nameoff names a string.
                    let off = be32(tree.structs, at + 8).map_or(usize::MAX, |o| o as usize);
                    if let Some(slot) = names.slot(tree, off) {
                        p.set(slot, value);
                    }
                }
            }
            Token::Begin(name) => {
                w.close(&mut open);
                if depth >= MAX_DEPTH {
                    return w.s;
                }
                open = Some((name, depth, Picked::default()));
                depth += 1;
            }
            Token::End => {
                w.close(&mut open);
                if depth == 0 {
                    return w.s;
                }
                depth -= 1;
            }
            Token::Nop => {}
            Token::Finish => break,
        }
    }
    w.close(&mut open);
    w.s
}

/// The state of a [`survey`]: what was found, and each open node's bus.
struct Surveyor<'a, 'g> {
    s: Survey<'a>,
    stack: [Bus<'a>; MAX_DEPTH],
    gic_compatible: &'g [&'g str],
    device_at: u64,
}

/// A node whose properties are being read: its name, depth (root = 0) and
/// what was picked so far.
type OpenNode<'a> = (&'a [u8], usize, Picked<'a>);

impl<'a, 'g> Surveyor<'a, 'g> {
    fn new(gic_compatible: &'g [&'g str], device_at: u64) -> Self {
        Surveyor {
            s: Survey::default(),
            stack: [Bus::default(); MAX_DEPTH],
            gic_compatible,
            device_at,
        }
    }

    /// Records the open node, if any: it is complete at its first child or
    /// its end.
    fn close(&mut self, open: &mut Option<OpenNode<'a>>) {
        if let Some((n, d, p)) = open.take() {
            self.node(n, d, &p);
        }
    }

    /// One node, with its properties picked, at `d` (root = 0).
    fn node(&mut self, name: &[u8], d: usize, p: &Picked<'a>) {
        let s = &mut self.s;
        let parent = if d == 0 {
            Bus {
                cells: (2, 1),
                ..Bus::default()
            }
        } else {
            self.stack[d - 1]
        };
        if let Some(slot) = self.stack.get_mut(d) {
            *slot = Bus {
                cells: p.child_cells(),
                parent_addr_cells: parent.cells.0,
                ranges: p.ranges,
            };
        }
        let buses = self.stack.get(1..d).unwrap_or(&[]);
        let regs = || {
            p.reg.into_iter().flat_map(move |v| {
                reg_entries(v, parent.cells.0, parent.cells.1)
                    .filter_map(move |(a, size)| Some((translate(a, buses)?, size)))
            })
        };
        if d == 0 {
            s.model = p.model.and_then(|v| strings(v).next());
            return;
        }
        // Only /cpus/* and the root's children have a device_type that
        // counts (decoding it for every node was a tenth of the walk).
        let device_type = if d <= 2 {
            p.device_type.and_then(|v| strings(v).next())
        } else {
            None
        };
        if d == 2 && device_type == Some("cpu") {
            s.cpus += 1;
        }
        if d == 1 && device_type == Some("memory") {
            for bank in regs() {
                if let Some(slot) = s.memory.get_mut(s.memory_banks) {
                    *slot = bank;
                    s.memory_banks += 1;
                }
            }
        }
        // Compared as bytes: a string that is not UTF-8 (which `strings`
        // skips) cannot equal one of the names asked for.
        if s.gic.is_none()
            && p.compatible.is_some_and(|v| {
                v.strip_suffix(&[0])
                    .unwrap_or(&[])
                    .split(|&c| c == 0)
                    .any(|c| !c.is_empty() && self.gic_compatible.iter().any(|g| g.as_bytes() == c))
            })
        {
            let mut r = regs().map(|(a, _)| a);
            s.gic = Some([r.next(), r.next()]);
        }
        // The first entry that translates, as `regs().next()`, without the
        // flattening iterator (every node is asked).
        if !s.device_found
            && p.reg
                .and_then(|v| {
                    reg_entries(v, parent.cells.0, parent.cells.1)
                        .find_map(|(a, _)| translate(a, buses))
                })
                .is_some_and(|a| a == self.device_at)
        {
            s.device_found = true;
        }
        if d == 1 && name == b"psci" {
            s.psci_method = p.method.and_then(|v| strings(v).next());
        }
    }
}

/// Which [`Picked`] slot a property name offset stands for, cached by
/// offset: a tree names its few dozen property names by offset into one
/// strings block, so most lookups are one compare.
struct NameCache {
    /// (offset, slot) of the last name looked up at each `offset % 32`.
    entries: [Option<(usize, Option<u8>)>; 32],
}

impl NameCache {
    fn new() -> Self {
        NameCache {
            entries: [None; 32],
        }
    }

    fn slot(&mut self, tree: &Fdt<'_>, off: usize) -> Option<u8> {
        let e = &mut self.entries[off % 32];
        match *e {
            Some((o, slot)) if o == off => slot,
            _ => {
                let slot = tree.string(off).and_then(Picked::slot_of);
                *e = Some((off, slot));
                slot
            }
        }
    }
}

/// The properties [`survey`] looks at, found in one pass (the first of
/// each name, as [`Node::prop`] would find).
#[derive(Default)]
struct Picked<'a> {
    address_cells: Option<&'a [u8]>,
    size_cells: Option<&'a [u8]>,
    ranges: Option<&'a [u8]>,
    reg: Option<&'a [u8]>,
    device_type: Option<&'a [u8]>,
    compatible: Option<&'a [u8]>,
    model: Option<&'a [u8]>,
    method: Option<&'a [u8]>,
}

impl<'a> Picked<'a> {
    /// The slot for a property `name`, if it is one [`survey`] wants.
    fn slot_of(name: &[u8]) -> Option<u8> {
        Some(match name {
            b"#address-cells" => 0,
            b"#size-cells" => 1,
            b"ranges" => 2,
            b"reg" => 3,
            b"device_type" => 4,
            b"compatible" => 5,
            b"model" => 6,
            b"method" => 7,
            _ => return None,
        })
    }

    /// Records `value` in `slot` unless an earlier property filled it.
    fn set(&mut self, slot: u8, value: &'a [u8]) {
        let field = match slot {
            0 => &mut self.address_cells,
            1 => &mut self.size_cells,
            2 => &mut self.ranges,
            3 => &mut self.reg,
            4 => &mut self.device_type,
            5 => &mut self.compatible,
            6 => &mut self.model,
            _ => &mut self.method,
        };
        field.get_or_insert(value);
    }

    /// As [`survey`] picks them, from a node's properties (the reference
    /// the one-pass walk is tested against).
    #[cfg(test)]
    fn of(node: &Node<'a>) -> Self {
        let mut p = Picked::default();
        for (name, value) in node.props() {
            if let Some(slot) = Self::slot_of(name) {
                p.set(slot, value);
            }
        }
        p
    }

    /// As [`Node::child_cells`].
    fn child_cells(&self) -> (usize, usize) {
        let cell = |v: Option<&[u8]>, default| match v {
            Some(v) if v.len() == 4 => be32(v, 0).map_or(default, |c| c as usize),
            _ => default,
        };
        (cell(self.address_cells, 2), cell(self.size_cells, 1))
    }
}

/// The node-by-node [`survey`] (walk the nodes, then each node's
/// properties): the reference the one-pass walk is tested against.
#[cfg(test)]
pub(crate) fn survey_by_nodes<'a>(
    tree: &Fdt<'a>,
    gic_compatible: &[&str],
    device_at: u64,
) -> Survey<'a> {
    let mut w = Surveyor::new(gic_compatible, device_at);
    for node in tree.nodes() {
        w.node(node.name, node.depth, &Picked::of(&node));
    }
    w.s
}

#[cfg(test)]
mod tests;
