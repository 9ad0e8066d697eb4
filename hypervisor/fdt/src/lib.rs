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
pub fn survey<'a>(tree: &Fdt<'a>, gic_compatible: &[&str], device_at: u64) -> Survey<'a> {
    let mut s = Survey::default();
    let mut stack = [Bus::default(); MAX_DEPTH];
    for node in tree.nodes() {
        // One pass over the node's properties (the hypervisor runs this
        // before the critical partition starts: a lookup per property
        // wanted cost several times as much on QEMU's tree).
        let p = Picked::of(&node);
        let d = node.depth;
        let parent = if d == 0 {
            Bus {
                cells: (2, 1),
                ..Bus::default()
            }
        } else {
            stack[d - 1]
        };
        if let Some(slot) = stack.get_mut(d) {
            *slot = Bus {
                cells: p.child_cells(),
                parent_addr_cells: parent.cells.0,
                ranges: p.ranges,
            };
        }
        let buses = stack.get(1..d).unwrap_or(&[]);
        let regs = || {
            p.reg.into_iter().flat_map(move |v| {
                reg_entries(v, parent.cells.0, parent.cells.1)
                    .filter_map(move |(a, size)| Some((translate(a, buses)?, size)))
            })
        };
        if d == 0 {
            s.model = p.model.and_then(|v| strings(v).next());
            continue;
        }
        let device_type = p.device_type.and_then(|v| strings(v).next());
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
        if s.gic.is_none()
            && p.compatible
                .is_some_and(|v| strings(v).any(|c| gic_compatible.contains(&c)))
        {
            let mut r = regs().map(|(a, _)| a);
            s.gic = Some([r.next(), r.next()]);
        }
        if !s.device_found && regs().next().is_some_and(|(a, _)| a == device_at) {
            s.device_found = true;
        }
        if d == 1 && node.name == b"psci" {
            s.psci_method = p.method.and_then(|v| strings(v).next());
        }
    }
    s
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
    fn of(node: &Node<'a>) -> Self {
        let mut p = Picked::default();
        for (name, value) in node.props() {
            let slot = match name {
                b"#address-cells" => &mut p.address_cells,
                b"#size-cells" => &mut p.size_cells,
                b"ranges" => &mut p.ranges,
                b"reg" => &mut p.reg,
                b"device_type" => &mut p.device_type,
                b"compatible" => &mut p.compatible,
                b"model" => &mut p.model,
                b"method" => &mut p.method,
                _ => continue,
            };
            slot.get_or_insert(value);
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

#[cfg(test)]
mod tests;
