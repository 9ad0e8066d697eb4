//! Output on the PL011 at 0x0900_0000 without `core::fmt` (whose vtables
//! would hold absolute addresses and tie the image to its link address).
//! Register accesses are single `ldr w`/`str w` so that an emulating
//! hypervisor gets a valid syndrome for each.

use core::arch::asm;

const UART: usize = 0x0900_0000;
const DR: usize = UART;
const FR: usize = UART + 0x18;
const FR_TXFF: u32 = 1 << 5;
/// Polls of FR before a character is dropped: a dead UART must not hang us.
const TXFF_POLLS: u32 = 100_000;

fn read_fr() -> u32 {
    let v: u32;
    // SAFETY: FR of the partition's PL011; reading it has no side effects.
    unsafe {
        asm!("ldr {v:w}, [{a}]", a = in(reg) FR, v = out(reg) v, options(nostack, preserves_flags))
    };
    v
}

pub fn putc(c: u8) {
    for _ in 0..TXFF_POLLS {
        if read_fr() & FR_TXFF == 0 {
            break;
        }
    }
    // SAFETY: DR of the partition's PL011; writing transmits one byte.
    unsafe {
        asm!("str {v:w}, [{a}]", a = in(reg) DR, v = in(reg) u32::from(c), options(nostack, preserves_flags))
    };
}

pub fn puts(s: &str) {
    for b in s.bytes() {
        putc(b);
    }
}

/// `0x`-prefixed lower-case hex without leading zeros.
#[cfg_attr(feature = "flood", allow(dead_code))]
pub fn put_hex(v: u64) {
    puts("0x");
    let mut started = false;
    for shift in (0..16).rev() {
        let nibble = ((v >> (shift * 4)) & 0xf) as u8;
        if nibble != 0 || started || shift == 0 {
            started = true;
            putc(if nibble < 10 {
                b'0' + nibble
            } else {
                b'a' + nibble - 10
            });
        }
    }
}

pub fn put_dec(mut v: u64) {
    let mut digits = [0u8; 20];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    while n > 0 {
        n -= 1;
        putc(digits[n]);
    }
}

/// Reports `why` and stops this vCPU for good.
pub fn halt(why: &str) -> ! {
    puts(why);
    loop {
        // SAFETY: waiting for an interrupt has no side effects.
        unsafe { asm!("wfi", options(nomem, nostack, preserves_flags)) };
    }
}
