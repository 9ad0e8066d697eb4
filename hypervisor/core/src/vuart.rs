//! An emulated PL011 UART, transmit side only, for a partition's console.
//!
//! The guest's output is collected into lines which the hypervisor prints on
//! its own console, tagged with the partition's name. There is no input and
//! no interrupt: the transmit FIFO always reads as empty, so a polling driver
//! (Linux's console, an RTOS) never waits.
//!
//! Register accesses must be 8, 16 or 32 bits wide at a 4-byte aligned
//! offset (Linux's amba-pl011 uses 16-bit accesses, its earlycon 8- or
//! 32-bit ones); reads return the register truncated to the access width.

/// Longest line collected before it is emitted without a newline.
pub const LINE_CAPACITY: usize = 160;
/// Size of the PL011 register frame.
pub const FRAME_SIZE: u64 = 0x1000;

const DR: u64 = 0x000;
const RSR_ECR: u64 = 0x004;
const FR: u64 = 0x018;
const ILPR: u64 = 0x020;
const IBRD: u64 = 0x024;
const FBRD: u64 = 0x028;
const LCR_H: u64 = 0x02c;
const CR: u64 = 0x030;
const IFLS: u64 = 0x034;
const IMSC: u64 = 0x038;
const RIS: u64 = 0x03c;
const MIS: u64 = 0x040;
const ICR: u64 = 0x044;
const DMACR: u64 = 0x048;
const PERIPH_ID0: u64 = 0xfe0;

/// FR: RXFE (4) and TXFE (7) set; TXFF (5), BUSY (3) and RXFF (6) clear.
const FR_VALUE: u32 = (1 << 7) | (1 << 4);
/// CR.LBE: loopback. Transmitted data goes back to the receiver, not out.
const CR_LBE: u32 = 1 << 7;
/// CR after reset: TXE and RXE set.
const CR_RESET: u32 = 0x300;
/// IFLS after reset: both FIFO levels at half.
const IFLS_RESET: u32 = 0x12;

/// PeriphID0..3 and CellID0..3 of an ARM PL011 r1p5 (part 0x011, designer
/// 0x41), at 0xFE0..=0xFFC. Linux's AMBA bus reads these to bind the driver.
const ID_REGS: [u32; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// A register access the device does not accept; the hypervisor answers
/// it with an abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VuartError {
    /// Width other than 1, 2 or 4 bytes.
    BadWidth,
    /// Offset not a multiple of 4.
    Misaligned,
    /// Offset outside the 4 KiB frame.
    OutOfRange,
}

/// One emulated PL011.
#[derive(Clone, Debug)]
pub struct VUart {
    line: [u8; LINE_CAPACITY],
    len: usize,
    /// The line in `line[..len]` was handed out; start over on the next byte.
    emitted: bool,
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    dmacr: u32,
}

impl Default for VUart {
    fn default() -> Self {
        Self::new()
    }
}

fn check(off: u64, width: u8) -> Result<(), VuartError> {
    if !matches!(width, 1 | 2 | 4) {
        return Err(VuartError::BadWidth);
    }
    if off >= FRAME_SIZE {
        return Err(VuartError::OutOfRange);
    }
    if !off.is_multiple_of(4) {
        return Err(VuartError::Misaligned);
    }
    Ok(())
}

/// The byte as it may appear on the operator's console. A guest must not be
/// able to send terminal control sequences (ESC, CSI, OSC...) that could
/// rewrite or hide other partitions' output, retitle the terminal, or worse:
/// only printable ASCII passes; a tab becomes a space; anything else is '.'.
const fn sanitize(b: u8) -> u8 {
    match b {
        b' '..=b'~' => b,
        b'\t' => b' ',
        _ => b'.',
    }
}

impl VUart {
    /// A UART in its reset state with an empty line.
    pub const fn new() -> Self {
        Self {
            line: [0; LINE_CAPACITY],
            len: 0,
            emitted: false,
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_RESET,
            ifls: IFLS_RESET,
            imsc: 0,
            dmacr: 0,
        }
    }

    /// Back to the reset state; an unfinished line is discarded.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// A register read.
    pub fn read(&mut self, off: u64, width: u8) -> Result<u32, VuartError> {
        check(off, width)?;
        let v = match off {
            FR => FR_VALUE,
            ILPR => self.ilpr,
            IBRD => self.ibrd,
            FBRD => self.fbrd,
            LCR_H => self.lcr_h,
            CR => self.cr,
            IFLS => self.ifls,
            IMSC => self.imsc,
            DMACR => self.dmacr,
            // No input, no error, no interrupt; ICR is write-only.
            DR | RSR_ECR | RIS | MIS | ICR => 0,
            o if o >= PERIPH_ID0 => ID_REGS[((o - PERIPH_ID0) / 4) as usize],
            _ => 0, // reserved
        };
        let mask = match width {
            1 => 0xff,
            2 => 0xffff,
            _ => u32::MAX,
        };
        Ok(v & mask)
    }

    /// A register write. A write to DR that completes a line (a '\n', or the
    /// buffer reaching [`LINE_CAPACITY`]) returns that line, sanitized and
    /// without the newline; the caller prints it (and a newline) before the
    /// next access. '\r' is dropped.
    pub fn write(&mut self, off: u64, width: u8, val: u32) -> Result<Option<&[u8]>, VuartError> {
        check(off, width)?;
        match off {
            DR => return Ok(self.put(val as u8)),
            RSR_ECR | ICR => {}
            ILPR => self.ilpr = val & 0xff,
            IBRD => self.ibrd = val & 0xffff,
            FBRD => self.fbrd = val & 0x3f,
            LCR_H => self.lcr_h = val & 0xff,
            CR => self.cr = val & 0xff87,
            IFLS => self.ifls = val & 0x3f,
            IMSC => self.imsc = val & 0x7ff,
            DMACR => self.dmacr = val & 0x7,
            _ => {} // FR, RIS, MIS, IDs: read-only; reserved: ignored.
        }
        Ok(None)
    }

    fn put(&mut self, b: u8) -> Option<&[u8]> {
        if self.cr & CR_LBE != 0 {
            // Loopback (Linux uses it to provoke the TX interrupt): not output.
            return None;
        }
        if self.emitted {
            self.len = 0;
            self.emitted = false;
        }
        match b {
            b'\r' => None,
            b'\n' => {
                self.emitted = true;
                Some(&self.line[..self.len])
            }
            _ => {
                self.line[self.len] = sanitize(b);
                self.len += 1;
                if self.len == LINE_CAPACITY {
                    self.emitted = true;
                    Some(&self.line[..self.len])
                } else {
                    None
                }
            }
        }
    }

    /// The unfinished line, if any (for printing before the partition stops).
    pub fn flush(&mut self) -> Option<&[u8]> {
        if self.emitted || self.len == 0 {
            return None;
        }
        self.emitted = true;
        Some(&self.line[..self.len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(u: &mut VUart, s: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for &b in s {
            if let Some(l) = u.write(DR, 4, b as u32).unwrap() {
                out.push(l.to_vec());
            }
        }
        out
    }

    #[test]
    fn lines_are_split_on_newline() {
        let mut u = VUart::new();
        assert_eq!(
            send(&mut u, b"hello\r\nworld\n\n"),
            vec![b"hello".to_vec(), b"world".to_vec(), vec![]]
        );
    }

    #[test]
    fn full_buffer_is_emitted() {
        let mut u = VUart::new();
        let long = [b'x'; LINE_CAPACITY + 5];
        let lines = send(&mut u, &long);
        assert_eq!(lines, vec![vec![b'x'; LINE_CAPACITY]]);
        assert_eq!(u.flush(), Some(&[b'x'; 5][..]));
        assert_eq!(u.flush(), None, "a flushed line is not emitted twice");
        assert_eq!(send(&mut u, b"y\n"), vec![b"y".to_vec()]);
    }

    #[test]
    fn newline_right_after_a_full_line_gives_an_empty_line() {
        let mut u = VUart::new();
        let mut s = vec![b'a'; LINE_CAPACITY];
        s.push(b'\n');
        assert_eq!(send(&mut u, &s), vec![vec![b'a'; LINE_CAPACITY], vec![]]);
    }

    /// REQ-FLT-2: guest output cannot inject terminal control sequences.
    #[test]
    fn escape_sequences_are_neutralised() {
        let mut u = VUart::new();
        let lines = send(&mut u, b"\x1b[2J\x1b]0;pwned\x07ok\tdone\x7f\xff\x00\n");
        assert_eq!(lines, vec![b".[2J.]0;pwned.ok done...".to_vec()]);
        for l in lines {
            assert!(l.iter().all(|&b| (0x20..0x7f).contains(&b)));
        }
    }

    #[test]
    fn only_low_byte_of_dr_is_data() {
        let mut u = VUart::new();
        u.write(DR, 4, 0xffff_ff41).unwrap();
        assert_eq!(u.write(DR, 1, b'\n' as u32).unwrap(), Some(&b"A"[..]));
    }

    #[test]
    fn loopback_output_is_swallowed() {
        let mut u = VUart::new();
        u.write(CR, 2, 0x181).unwrap(); // UARTEN | TXE | LBE
        assert_eq!(send(&mut u, b"\0\n"), Vec::<Vec<u8>>::new());
        u.write(CR, 2, 0x301).unwrap();
        assert_eq!(send(&mut u, b"x\n"), vec![b"x".to_vec()]);
    }

    #[test]
    fn flag_register() {
        let mut u = VUart::new();
        let fr = u.read(FR, 4).unwrap();
        assert_ne!(fr & (1 << 7), 0, "TXFE");
        assert_ne!(fr & (1 << 4), 0, "RXFE");
        assert_eq!(fr & (1 << 5), 0, "TXFF");
        assert_eq!(fr & (1 << 3), 0, "BUSY");
        assert_eq!(u.read(FR, 1).unwrap(), 0x90);
        u.write(FR, 4, 0).unwrap();
        assert_eq!(u.read(FR, 4).unwrap(), 0x90, "FR is read-only");
    }

    #[test]
    fn control_registers_read_back() {
        let mut u = VUart::new();
        assert_eq!(u.read(CR, 4).unwrap(), 0x300);
        assert_eq!(u.read(IFLS, 4).unwrap(), 0x12);
        for (off, v, masked) in [
            (CR, 0xffff_ffff, 0xff87),
            (LCR_H, 0x70, 0x70),
            (IBRD, 0x1_0027, 0x27),
            (FBRD, 0xff, 0x3f),
            (IMSC, 0x50, 0x50),
            (IFLS, 0x3f, 0x3f),
            (ILPR, 0x1ff, 0xff),
            (DMACR, 0xf, 0x7),
        ] {
            u.write(off, 4, v).unwrap();
            assert_eq!(u.read(off, 4).unwrap(), masked, "offset {off:#x}");
        }
        // ICR accepts writes and reads 0; RIS/MIS read 0.
        u.write(ICR, 4, 0x7ff).unwrap();
        assert_eq!(u.read(ICR, 4).unwrap(), 0);
        assert_eq!(u.read(RIS, 4).unwrap(), 0);
        assert_eq!(u.read(MIS, 4).unwrap(), 0);
        assert_eq!(u.read(DR, 4).unwrap(), 0);
        assert_eq!(u.read(RSR_ECR, 4).unwrap(), 0);
        // 16-bit read of a 16-bit register.
        assert_eq!(u.read(CR, 2).unwrap(), 0xff87);
        assert_eq!(u.read(CR, 1).unwrap(), 0x87);
        u.reset();
        assert_eq!(u.read(CR, 4).unwrap(), 0x300);
    }

    #[test]
    fn amba_identification() {
        let mut u = VUart::new();
        let ids: Vec<u32> = (0..8).map(|i| u.read(0xfe0 + 4 * i, 4).unwrap()).collect();
        assert_eq!(ids, [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
        // What Linux's AMBA bus composes: periphid 0x00141011 (PL011), cid 0xb105f00d.
        let pid = ids[0] | ids[1] << 8 | ids[2] << 16 | ids[3] << 24;
        let cid = ids[4] | ids[5] << 8 | ids[6] << 16 | ids[7] << 24;
        assert_eq!(pid & 0x000f_ffff, 0x0004_1011);
        assert_eq!(cid, 0xb105_f00d);
        u.write(0xfe0, 4, 0).unwrap();
        assert_eq!(u.read(0xfe0, 4).unwrap(), 0x11);
    }

    #[test]
    fn reserved_offsets_raz_wi() {
        let mut u = VUart::new();
        for off in [0x008, 0x01c, 0x04c, 0x100, 0xfdc] {
            u.write(off, 4, 0xffff_ffff).unwrap();
            assert_eq!(u.read(off, 4).unwrap(), 0);
        }
    }

    /// REQ-FLT-2: malformed accesses get an error, never a panic.
    #[test]
    fn bad_accesses() {
        let mut u = VUart::new();
        assert_eq!(u.read(DR, 8), Err(VuartError::BadWidth));
        assert_eq!(u.read(DR, 3), Err(VuartError::BadWidth));
        assert_eq!(u.read(DR, 0), Err(VuartError::BadWidth));
        assert_eq!(u.write(DR, 8, 0), Err(VuartError::BadWidth));
        assert_eq!(u.read(0x001, 1), Err(VuartError::Misaligned));
        assert_eq!(u.write(0x002, 2, 0), Err(VuartError::Misaligned));
        assert_eq!(u.read(0x1000, 4), Err(VuartError::OutOfRange));
        assert_eq!(u.write(u64::MAX - 3, 4, 0), Err(VuartError::OutOfRange));
        // Nothing was emitted by the refused DR write.
        assert_eq!(u.flush(), None);
    }
}
