//! The BCM2711 GPIO block's register layout, for the safe-state alarm line
//! (BCM2711 ARM Peripherals, "General Purpose I/O"): which register and bits
//! make a pin an output, drive it, and read it back.

/// GPFSEL0..5: three function bits per pin, ten pins per register.
pub const GPFSEL0: usize = 0x00;
/// GPSET0/1, GPCLR0/1, GPLEV0/1: one bit per pin, 32 pins per register.
pub const GPSET0: usize = 0x1c;
pub const GPCLR0: usize = 0x28;
pub const GPLEV0: usize = 0x34;
/// Function select value of an output.
pub const FSEL_OUTPUT: u32 = 0b001;

/// The function-select register of `pin` and the field's shift.
pub fn fsel(pin: u8) -> (usize, u32) {
    (GPFSEL0 + 4 * usize::from(pin / 10), 3 * u32::from(pin % 10))
}

/// `fsel_value` with `pin`'s field set to output, the other pins untouched.
pub fn fsel_output(fsel_value: u32, pin: u8) -> u32 {
    let (_, shift) = fsel(pin);
    (fsel_value & !(0b111 << shift)) | (FSEL_OUTPUT << shift)
}

/// The register that drives `pin` to `high` (set) or low (clear), and the
/// bit to write there (writing zeros elsewhere leaves other pins alone).
pub fn drive(pin: u8, high: bool) -> (usize, u32) {
    let base = if high { GPSET0 } else { GPCLR0 };
    (base + 4 * usize::from(pin / 32), 1 << (pin % 32))
}

/// The level register of `pin` and its bit.
pub fn level(pin: u8) -> (usize, u32) {
    (GPLEV0 + 4 * usize::from(pin / 32), 1 << (pin % 32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_bits() {
        assert_eq!(fsel(0), (0x00, 0));
        assert_eq!(fsel(9), (0x00, 27));
        assert_eq!(fsel(42), (0x10, 6));
        assert_eq!(fsel(57), (0x14, 21));
        assert_eq!(drive(42, true), (0x20, 1 << 10));
        assert_eq!(drive(42, false), (0x2c, 1 << 10));
        assert_eq!(drive(3, true), (0x1c, 1 << 3));
        assert_eq!(level(31), (0x34, 1 << 31));
        assert_eq!(level(32), (0x38, 1));
    }

    #[test]
    fn output_select_touches_only_its_field() {
        let all_alt = 0x3fff_ffff; // every field 0b111 (alternate 3)
        let v = fsel_output(all_alt, 42);
        assert_eq!((v >> 6) & 0b111, FSEL_OUTPUT);
        assert_eq!(v | (0b111 << 6), all_alt);
    }
}
