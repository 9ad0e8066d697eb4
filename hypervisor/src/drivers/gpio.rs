//! The BCM2711 GPIO block, only to drive the safe-state alarm line (layout
//! in `septum_core::gpio`).

use septum_core::addr::PhysAddr;
use septum_core::gpio;

use super::mmio::Mmio;

#[derive(Debug)]
pub struct Bcm2711Gpio(Mmio);

impl Bcm2711Gpio {
    /// # Safety
    /// `base` must be the BCM2711 GPIO block, mapped as device memory, and
    /// no one else may drive it.
    pub unsafe fn new(base: u64) -> Self {
        // SAFETY: as the caller promises.
        Bcm2711Gpio(unsafe { Mmio::new(PhysAddr::new(base)) })
    }

    /// Makes `pin` an output at `high` or low; returns the level it then
    /// reads back.
    pub fn drive(&self, pin: u8, high: bool) -> bool {
        // The level first, then the function: the pin never glitches to
        // the other level on the way.
        let (reg, bit) = gpio::drive(pin, high);
        self.0.write32(reg, bit);
        let (sel, _) = gpio::fsel(pin);
        let v = self.0.read32(sel);
        self.0.write32(sel, gpio::fsel_output(v, pin));
        let (lev, bit) = gpio::level(pin);
        self.0.read32(lev) & bit != 0
    }
}
