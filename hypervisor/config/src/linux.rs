//! The arm64 Linux boot protocol (Documentation/arch/arm64/booting.rst in
//! the kernel tree), as far as the tool needs it: reading the kernel's Image
//! header and placing kernel, initrd and device tree in the partition's first
//! memory region.
//!
//! Placement, with `base` the first region's IPA (2 MiB aligned) and `end`
//! its end:
//!
//! ```text
//! kernel  = base + text_offset                  (entry point)
//! k_end   = kernel + max(image_size, file length)
//! initrd  = align_up(k_end, 2 MiB)              (when there is one)
//! dtb     = align_down(end, 2 MiB) - 2 MiB      (a whole 2 MiB block; x0)
//! ```
//!
//! and everything before `dtb` must end at or below it. The kernel sits at
//! the bottom because memory below it is not in the linear map of older
//! kernels (flags bit 3 = 0); the initrd follows the kernel's whole
//! `image_size` (which counts its BSS and early page tables); the device tree
//! gets the top 2 MiB block to itself, since the kernel maps it with blocks of
//! up to 2 MiB and it must not exceed 2 MiB.

/// Length of the Image header.
pub const HEADER_LEN: usize = 64;
/// `"ARM\x64"` at offset 56.
pub const MAGIC: [u8; 4] = *b"ARM\x64";
const MAGIC_OFFSET: usize = 56;
/// Alignment of the kernel's base, the initrd and the device tree slot.
pub const ALIGN: u64 = 2 << 20;
/// Largest device tree the kernel accepts (`MAX_FDT_SIZE`); also the slot size.
pub const DTB_MAX: u64 = 2 << 20;
/// arm64 `COMMAND_LINE_SIZE`, including the terminating NUL.
pub const COMMAND_LINE_SIZE: usize = 2048;
/// The initrd must lie in a 1 GiB-aligned window of at most 32 GiB that
/// also covers the kernel.
const WINDOW_ALIGN: u128 = 1 << 30;
const WINDOW_MAX: u128 = 32 << 30;

/// The fields of the Image header that placement needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    pub text_offset: u64,
    pub image_size: u64,
    pub flags: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The file is shorter than the header.
    TooShort(usize),
    NoMagic,
    /// flags bit 0: a big-endian kernel (Septum runs little-endian guests).
    BigEndian,
    /// image_size 0: a kernel older than v3.17, whose text_offset has no
    /// defined endianness.
    NoImageSize,
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::TooShort(n) => write!(
                f,
                "it is {n} bytes long, shorter than the {HEADER_LEN}-byte arm64 Image header"
            ),
            HeaderError::NoMagic => f.write_str(
                "it has no arm64 Image magic \"ARM\\x64\" at offset 56 (a compressed Image.gz, an ELF vmlinux or not a kernel?)",
            ),
            HeaderError::BigEndian => {
                f.write_str("it is a big-endian kernel (flags bit 0); Septum boots little-endian guests")
            }
            HeaderError::NoImageSize => f.write_str(
                "its header has image_size 0 (a kernel older than v3.17), so its placement is undefined",
            ),
        }
    }
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Reads the Image header at the start of `bytes`.
pub fn parse_header(bytes: &[u8]) -> Result<ImageHeader, HeaderError> {
    if bytes.len() < HEADER_LEN {
        return Err(HeaderError::TooShort(bytes.len()));
    }
    if bytes[MAGIC_OFFSET..MAGIC_OFFSET + 4] != MAGIC {
        return Err(HeaderError::NoMagic);
    }
    let h = ImageHeader {
        text_offset: le64(bytes, 8),
        image_size: le64(bytes, 16),
        flags: le64(bytes, 24),
    };
    if h.flags & 1 != 0 {
        return Err(HeaderError::BigEndian);
    }
    if h.image_size == 0 {
        return Err(HeaderError::NoImageSize);
    }
    Ok(h)
}

/// Where kernel, initrd and device tree land (IPAs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub kernel: u64,
    /// End of the memory the kernel claims: `kernel + max(image_size, file)`.
    pub kernel_end: u64,
    /// `(start, end)` of the initrd.
    pub initrd: Option<(u64, u64)>,
    pub dtb: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaceError {
    /// The region's IPA is not 2 MiB aligned.
    Unaligned,
    /// The region must reach at least this IPA (exclusive end).
    TooSmall { needed_end: u128 },
    /// The initrd would end this far above the 1 GiB-aligned base below the
    /// kernel, beyond the 32 GiB window Linux can use.
    InitrdWindow { span: u128 },
}

fn align_up(x: u128, a: u64) -> u128 {
    x.div_ceil(u128::from(a)) * u128::from(a)
}

fn align_down(x: u128, a: u64) -> u128 {
    x / u128::from(a) * u128::from(a)
}

/// Places a kernel (header `h`, `kernel_len` bytes of file) and an optional
/// initrd of `initrd_len` bytes in the region `[base, base + size)`, as the
/// module documentation describes.
pub fn place(
    base: u64,
    size: u64,
    h: &ImageHeader,
    kernel_len: u64,
    initrd_len: Option<u64>,
) -> Result<Placement, PlaceError> {
    if !base.is_multiple_of(ALIGN) {
        return Err(PlaceError::Unaligned);
    }
    // u128 throughout: header fields come from a file and may be anything.
    let kernel = u128::from(base) + u128::from(h.text_offset);
    let kernel_end = kernel + u128::from(h.image_size.max(kernel_len));
    let initrd = initrd_len.map(|len| {
        let start = align_up(kernel_end, ALIGN);
        (start, start + u128::from(len))
    });
    let used = initrd.map_or(kernel_end, |(_, e)| e);
    let end = u128::from(base) + u128::from(size);
    let needed_end = align_up(used, ALIGN) + u128::from(DTB_MAX);
    let top = align_down(end, ALIGN);
    if top < needed_end {
        return Err(PlaceError::TooSmall { needed_end });
    }
    if let Some((_, e)) = initrd {
        let span = e - align_down(kernel, WINDOW_ALIGN as u64);
        if span > WINDOW_MAX {
            return Err(PlaceError::InitrdWindow { span });
        }
    }
    // Everything is below `end`, which fits in 64 bits.
    let n = |x: u128| x as u64;
    Ok(Placement {
        kernel: n(kernel),
        kernel_end: n(kernel_end),
        initrd: initrd.map(|(s, e)| (n(s), n(e))),
        dtb: n(top - u128::from(DTB_MAX)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header with the given fields (what tests/fixtures/*.Image hold).
    fn header(text_offset: u64, image_size: u64, flags: u64) -> Vec<u8> {
        let mut h = vec![0u8; HEADER_LEN];
        h[8..16].copy_from_slice(&text_offset.to_le_bytes());
        h[16..24].copy_from_slice(&image_size.to_le_bytes());
        h[24..32].copy_from_slice(&flags.to_le_bytes());
        h[56..60].copy_from_slice(&MAGIC);
        h
    }

    #[test]
    fn header_fields_and_errors() {
        let h = parse_header(&header(0x8_0000, 0x1234_5000, 0xa)).unwrap();
        assert_eq!(
            h,
            ImageHeader {
                text_offset: 0x8_0000,
                image_size: 0x1234_5000,
                flags: 0xa
            }
        );
        assert_eq!(
            parse_header(&header(0, 1, 0)[..63]),
            Err(HeaderError::TooShort(63))
        );
        let mut bad = header(0, 1, 0);
        bad[59] = 0x65;
        assert_eq!(parse_header(&bad), Err(HeaderError::NoMagic));
        assert_eq!(parse_header(&header(0, 1, 1)), Err(HeaderError::BigEndian));
        assert_eq!(
            parse_header(&header(0, 0, 0)),
            Err(HeaderError::NoImageSize)
        );
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn placement_follows_the_documented_algorithm() {
        let h = ImageHeader {
            text_offset: 0,
            image_size: 30 * MIB + 1,
            flags: 0xa,
        };
        let p = place(0x5000_0000, 0x7000_0000, &h, 20 * MIB, Some(5 * MIB)).unwrap();
        assert_eq!(p.kernel, 0x5000_0000);
        assert_eq!(p.kernel_end, 0x5000_0000 + 30 * MIB + 1);
        // Above image_size, rounded up to 2 MiB.
        assert_eq!(
            p.initrd,
            Some((0x5000_0000 + 32 * MIB, 0x5000_0000 + 37 * MIB))
        );
        assert_eq!(p.dtb, 0xc000_0000 - 2 * MIB);

        // text_offset is honoured; a file longer than image_size counts.
        let h = ImageHeader {
            text_offset: 0x8_0000,
            image_size: MIB,
            flags: 0,
        };
        let p = place(0x4000_0000, 0x40_0000, &h, 3 * MIB / 2, None).unwrap();
        assert_eq!((p.kernel, p.kernel_end), (0x4008_0000, 0x4020_0000));
        assert_eq!((p.initrd, p.dtb), (None, 0x4020_0000));
    }

    /// Boundaries: the region is exactly big enough, or 4 KiB too small;
    /// an unaligned end loses its partial 2 MiB block.
    #[test]
    fn placement_boundaries() {
        let h = ImageHeader {
            text_offset: 0,
            image_size: 4 * MIB,
            flags: 0,
        };
        // kernel 4 MiB + initrd 2 MiB + dtb 2 MiB = 8 MiB.
        assert!(place(0x4000_0000, 8 * MIB, &h, 4096, Some(2 * MIB)).is_ok());
        assert_eq!(
            place(0x4000_0000, 8 * MIB - 4096, &h, 4096, Some(2 * MIB)),
            Err(PlaceError::TooSmall {
                needed_end: 0x4000_0000 + 8 * u128::from(MIB)
            })
        );
        assert!(place(0x4000_0000, 10 * MIB - 4096, &h, 4096, Some(2 * MIB + 1)).is_err());
        assert!(place(0x4000_0000, 10 * MIB, &h, 4096, Some(2 * MIB + 1)).is_ok());
        assert_eq!(
            place(0x4010_0000, 64 * MIB, &h, 4096, None),
            Err(PlaceError::Unaligned)
        );
        // A huge image_size from a hostile header does not overflow.
        let h = ImageHeader {
            text_offset: u64::MAX,
            image_size: u64::MAX,
            flags: 0,
        };
        assert!(matches!(
            place(0x4000_0000, 64 * MIB, &h, 4096, Some(u64::MAX)),
            Err(PlaceError::TooSmall { .. })
        ));
    }

    #[test]
    fn initrd_window() {
        let h = ImageHeader {
            text_offset: 0,
            image_size: 2 * MIB,
            flags: 0,
        };
        let gib: u64 = 1 << 30;
        // The window starts at the 1 GiB boundary at or below the kernel.
        let base = gib;
        let ok_len = 32 * gib - 2 * MIB;
        assert!(place(base, 33 * gib, &h, 4096, Some(ok_len)).is_ok());
        assert_eq!(
            place(base, 33 * gib, &h, 4096, Some(ok_len + 1)),
            Err(PlaceError::InitrdWindow {
                span: u128::from(32 * gib + 1)
            })
        );
    }
}
