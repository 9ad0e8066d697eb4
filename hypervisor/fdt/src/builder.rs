//! A small tree writer for host tests (feature `builder`): the structure
//! block token by token, so that tests can also place NOPs and build trees
//! a real writer would not. Not for production trees: those come from
//! `septum-config`'s writer.

extern crate alloc;

use alloc::vec::Vec;

use super::{BEGIN_NODE, END, END_NODE, HEADER_LEN, MAGIC, NOP, PROP};

#[derive(Debug, Default)]
pub struct Builder {
    structs: Vec<u8>,
    strings: Vec<u8>,
}

impl Builder {
    /// A raw big-endian word in the structure block.
    pub fn word(&mut self, v: u32) -> &mut Self {
        self.structs.extend_from_slice(&v.to_be_bytes());
        self
    }

    fn pad(&mut self) {
        while !self.structs.len().is_multiple_of(4) {
            self.structs.push(0);
        }
    }

    pub fn begin(&mut self, name: &str) -> &mut Self {
        self.word(BEGIN_NODE);
        self.structs.extend_from_slice(name.as_bytes());
        self.structs.push(0);
        self.pad();
        self
    }

    pub fn end(&mut self) -> &mut Self {
        self.word(END_NODE)
    }

    pub fn nop(&mut self) -> &mut Self {
        self.word(NOP)
    }

    pub fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        self.word(PROP).word(value.len() as u32).word(off);
        self.structs.extend_from_slice(value);
        self.pad();
        self
    }

    /// A property of big-endian cells.
    pub fn cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
        let v: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
        self.prop(name, &v)
    }

    /// A string-list property (each string NUL-terminated).
    pub fn strs(&mut self, name: &str, strs: &[&str]) -> &mut Self {
        let mut v = Vec::new();
        for s in strs {
            v.extend_from_slice(s.as_bytes());
            v.push(0);
        }
        self.prop(name, &v)
    }

    /// The version-17 blob: header, an empty reservation map, the structure
    /// block (closed with FDT_END), the strings.
    pub fn blob(&mut self) -> Vec<u8> {
        self.word(END);
        let rsv = HEADER_LEN as u32;
        let st = rsv + 16;
        let str_off = st + self.structs.len() as u32;
        let total = str_off + self.strings.len() as u32;
        let mut b = Vec::new();
        for v in [
            MAGIC,
            total,
            st,
            str_off,
            rsv,
            17,
            16,
            0,
            self.strings.len() as u32,
            self.structs.len() as u32,
        ] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&self.structs);
        b.extend_from_slice(&self.strings);
        b
    }
}
