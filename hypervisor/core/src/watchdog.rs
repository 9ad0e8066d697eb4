//! Watchdogs the hypervisor keeps on partitions (docs/fault-containment.md).
//!
//! - [`Heartbeat`]: a deadline the critical partition pushes forward with
//!   the `HEARTBEAT` hypercall. Missing it is a fault of that partition.
//! - [`SbsaGwdt`]: an emulated SBSA generic watchdog (Arm Server Base System
//!   Architecture, "Generic Watchdog"), which Linux drives with its stock
//!   `sbsa_gwdt` driver and busybox's `watchdog` daemon. A hang with
//!   interrupts off stops the refreshes; the second timeout (WS1) is the
//!   reset signal, which the hypervisor turns into the partition's
//!   `watchdog` fault policy.
//!
//! Time is the generic timer's counter, in ticks; the hypervisor programs
//! its EL2 timer to the earliest [`deadline`](SbsaGwdt::deadline) and calls
//! `advance` when it fires. Nothing here reads a clock.

/// What the passage of time did to a watchdog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WdEvent {
    None,
    /// First timeout (SBSA WS0): the warning stage; nothing to do unless
    /// the guest asked for an interrupt (Septum does not wire WS0).
    Warning,
    /// The watchdog fired: the partition is considered dead.
    Expired,
}

/// The critical partition's heartbeat deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    timeout: u64,
    deadline: Option<u64>,
}

/// How much longer than the timeout the first heartbeat may take (boot).
pub const HEARTBEAT_BOOT_FACTOR: u64 = 10;

impl Heartbeat {
    pub const fn new(timeout_ticks: u64) -> Self {
        Heartbeat {
            timeout: timeout_ticks,
            deadline: None,
        }
    }

    /// Arms it for a partition (re)started at `now`: the first heartbeat
    /// is due within `HEARTBEAT_BOOT_FACTOR` timeouts.
    pub fn start(&mut self, now: u64) {
        self.deadline =
            Some(now.saturating_add(self.timeout.saturating_mul(HEARTBEAT_BOOT_FACTOR)));
    }

    pub fn stop(&mut self) {
        self.deadline = None;
    }

    /// A heartbeat at `now`.
    pub fn pet(&mut self, now: u64) {
        if self.deadline.is_some() {
            self.deadline = Some(now.saturating_add(self.timeout));
        }
    }

    pub fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// `Expired` once the deadline has passed (then it disarms itself).
    pub fn advance(&mut self, now: u64) -> WdEvent {
        match self.deadline {
            Some(d) if now >= d => {
                self.deadline = None;
                WdEvent::Expired
            }
            _ => WdEvent::None,
        }
    }
}

/// Control frame registers.
pub const WCS: u64 = 0x000;
pub const WOR: u64 = 0x008;
pub const WCV: u64 = 0x010;
/// Refresh frame register.
pub const WRR: u64 = 0x000;
/// Both frames: interface identification.
pub const W_IIDR: u64 = 0xfcc;
/// Arm's JEP106 code, architecture version 0 (32-bit WOR).
pub const IIDR_VALUE: u32 = 0x0000_043b;

const WCS_EN: u32 = 1 << 0;
const WCS_WS0: u32 = 1 << 1;
const WCS_WS1: u32 = 1 << 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GwdtError {
    /// Not a 32-bit access (64 bits only for WCV), or misaligned.
    BadWidth,
    /// No register there (the access is the guest's mistake).
    BadOffset,
}

/// An emulated SBSA generic watchdog (architecture version 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SbsaGwdt {
    enabled: bool,
    ws0: bool,
    ws1: bool,
    wor: u32,
    wcv: u64,
    /// Largest offset (ticks) a guest may program: it cannot stretch the
    /// watchdog beyond the configured timeout.
    max_wor: u32,
}

impl SbsaGwdt {
    /// A watchdog whose two stages together last at most `timeout_ticks`.
    pub const fn new(timeout_ticks: u64) -> Self {
        let half = timeout_ticks / 2;
        let max_wor = if half > u32::MAX as u64 {
            u32::MAX
        } else if half == 0 {
            1
        } else {
            half as u32
        };
        SbsaGwdt {
            enabled: false,
            ws0: false,
            ws1: false,
            wor: max_wor,
            wcv: 0,
            max_wor,
        }
    }

    /// The state at partition (re)start: enabled with the configured
    /// timeout, so that a guest hanging before its driver loads is caught
    /// too (Linux's driver sees it running and keeps it fed until the
    /// daemon opens it).
    pub fn start(&mut self, now: u64) {
        *self = SbsaGwdt::new(2 * self.max_wor as u64);
        self.enabled = true;
        self.refresh(now);
    }

    pub fn stop(&mut self) {
        self.enabled = false;
    }

    fn refresh(&mut self, now: u64) {
        self.ws0 = false;
        self.ws1 = false;
        self.wcv = now.saturating_add(self.wor as u64);
    }

    fn wcs(&self) -> u32 {
        let bit = |on: bool, b: u32| if on { b } else { 0 };
        bit(self.enabled, WCS_EN) | bit(self.ws0, WCS_WS0) | bit(self.ws1, WCS_WS1)
    }

    fn check(offset: u64, width: u8, wide_ok: bool) -> Result<(), GwdtError> {
        match width {
            4 if offset.is_multiple_of(4) => Ok(()),
            8 if wide_ok && offset.is_multiple_of(8) => Ok(()),
            _ => Err(GwdtError::BadWidth),
        }
    }

    pub fn read_control(&self, offset: u64, width: u8) -> Result<u64, GwdtError> {
        Self::check(offset, width, offset == WCV)?;
        Ok(match offset {
            WCS => self.wcs() as u64,
            WOR => self.wor as u64,
            0x00c => 0,
            WCV if width == 8 => self.wcv,
            WCV => self.wcv & 0xffff_ffff,
            0x014 => self.wcv >> 32,
            W_IIDR => IIDR_VALUE as u64,
            _ if offset < 0x1000 => 0,
            _ => return Err(GwdtError::BadOffset),
        })
    }

    pub fn write_control(
        &mut self,
        offset: u64,
        width: u8,
        value: u64,
        now: u64,
    ) -> Result<(), GwdtError> {
        Self::check(offset, width, offset == WCV)?;
        match offset {
            WCS => {
                self.enabled = value as u32 & WCS_EN != 0;
                self.refresh(now);
            }
            WOR => {
                self.wor = (value as u32).clamp(1, self.max_wor);
                self.refresh(now);
            }
            WCV if width == 8 => self.wcv = value.min(now.saturating_add(self.max_wor as u64)),
            WCV => {
                let v = (self.wcv & !0xffff_ffff) | (value & 0xffff_ffff);
                self.wcv = v.min(now.saturating_add(self.max_wor as u64));
            }
            0x014 => {
                let v = (self.wcv & 0xffff_ffff) | ((value & 0xffff_ffff) << 32);
                self.wcv = v.min(now.saturating_add(self.max_wor as u64));
            }
            _ if offset < 0x1000 => {} // read-only or reserved: ignored
            _ => return Err(GwdtError::BadOffset),
        }
        Ok(())
    }

    pub fn read_refresh(&self, offset: u64, width: u8) -> Result<u64, GwdtError> {
        Self::check(offset, width, false)?;
        match offset {
            W_IIDR => Ok(IIDR_VALUE as u64),
            _ if offset < 0x1000 => Ok(0),
            _ => Err(GwdtError::BadOffset),
        }
    }

    pub fn write_refresh(
        &mut self,
        offset: u64,
        width: u8,
        _value: u64,
        now: u64,
    ) -> Result<(), GwdtError> {
        Self::check(offset, width, false)?;
        match offset {
            WRR => {
                self.refresh(now);
                Ok(())
            }
            _ if offset < 0x1000 => Ok(()),
            _ => Err(GwdtError::BadOffset),
        }
    }

    /// When something happens next, if it is running.
    pub fn deadline(&self) -> Option<u64> {
        (self.enabled && !self.ws1).then_some(self.wcv)
    }

    /// Applies the passage of time up to `now`.
    pub fn advance(&mut self, now: u64) -> WdEvent {
        if !self.enabled || self.ws1 || now < self.wcv {
            return WdEvent::None;
        }
        if !self.ws0 {
            self.ws0 = true;
            self.wcv = self.wcv.saturating_add(self.wor as u64);
            if now < self.wcv {
                return WdEvent::Warning;
            }
        }
        self.ws1 = true;
        WdEvent::Expired
    }

    pub fn status(&self) -> u32 {
        self.wcs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat() {
        let mut h = Heartbeat::new(100);
        assert_eq!(h.advance(1_000_000), WdEvent::None, "not armed");
        h.pet(5);
        assert_eq!(h.deadline(), None, "a pet does not arm it");
        h.start(1_000);
        assert_eq!(h.deadline(), Some(2_000), "boot grace: 10 timeouts");
        h.pet(1_050);
        assert_eq!(h.deadline(), Some(1_150));
        assert_eq!(h.advance(1_149), WdEvent::None);
        assert_eq!(h.advance(1_150), WdEvent::Expired);
        assert_eq!(h.advance(9_999), WdEvent::None, "fires once");
        h.start(10_000);
        h.stop();
        assert_eq!(h.advance(u64::MAX), WdEvent::None);
    }

    /// The driver's sequence (sbsa_gwdt, action 0): WOR = timeout/2, WCS =
    /// EN, refreshes through WRR; without refreshes, WS0 after one WOR and
    /// the reset signal (Expired) after two.
    #[test]
    fn linux_driver_sequence() {
        let mut w = SbsaGwdt::new(1_000);
        assert_eq!(w.read_control(W_IIDR, 4), Ok(IIDR_VALUE as u64));
        assert_eq!(w.read_control(WCS, 4), Ok(0));
        w.write_control(WOR, 4, 400, 0).unwrap();
        w.write_control(WCS, 4, 1, 10).unwrap();
        assert_eq!(w.deadline(), Some(410));
        w.write_refresh(WRR, 4, 0, 300).unwrap();
        assert_eq!(w.deadline(), Some(700));
        assert_eq!(w.advance(699), WdEvent::None);
        assert_eq!(w.advance(700), WdEvent::Warning);
        assert_eq!(w.read_control(WCS, 4), Ok((WCS_EN | WCS_WS0) as u64));
        assert_eq!(w.deadline(), Some(1_100));
        // A refresh in the warning stage rescues it.
        w.write_refresh(WRR, 4, 0, 800).unwrap();
        assert_eq!(w.read_control(WCS, 4), Ok(WCS_EN as u64));
        assert_eq!(w.advance(1_199), WdEvent::None);
        assert_eq!(w.advance(1_200), WdEvent::Warning);
        assert_eq!(w.advance(1_599), WdEvent::None);
        assert_eq!(w.advance(1_600), WdEvent::Expired);
        assert_eq!(w.advance(5_000), WdEvent::None, "expires once");
        assert_eq!(w.deadline(), None);
        // Disabled: nothing happens.
        w.write_control(WCS, 4, 0, 6_000).unwrap();
        assert_eq!(w.advance(u64::MAX), WdEvent::None);
    }

    /// A late check (both stages passed) reports the expiry at once.
    #[test]
    fn both_stages_at_once() {
        let mut w = SbsaGwdt::new(1_000);
        w.start(0);
        assert_eq!(w.deadline(), Some(500));
        assert_eq!(w.advance(10_000), WdEvent::Expired);
    }

    /// REQ-FLT-2: a guest cannot stretch the watchdog past the configured
    /// timeout, and bad accesses are refused without changing it.
    #[test]
    fn guest_limits() {
        let mut w = SbsaGwdt::new(1_000);
        w.start(0);
        w.write_control(WOR, 4, u32::MAX as u64, 0).unwrap();
        assert_eq!(w.read_control(WOR, 4), Ok(500));
        w.write_control(WOR, 4, 0, 0).unwrap();
        assert_eq!(w.read_control(WOR, 4), Ok(1));
        w.write_control(WCV, 8, u64::MAX, 100).unwrap();
        assert_eq!(w.read_control(WCV, 8), Ok(600));
        w.write_control(0x014, 4, 0xffff_ffff, 100).unwrap();
        assert_eq!(w.read_control(WCV, 8), Ok(600));
        let before = w;
        assert_eq!(w.write_control(WCS, 2, 0, 0), Err(GwdtError::BadWidth));
        assert_eq!(w.write_control(WOR, 8, 0, 0), Err(GwdtError::BadWidth));
        assert_eq!(w.write_control(0x1000, 4, 0, 0), Err(GwdtError::BadOffset));
        assert_eq!(w.write_refresh(WRR + 2, 4, 0, 0), Err(GwdtError::BadWidth));
        assert_eq!(w.read_refresh(0x2000, 4), Err(GwdtError::BadOffset));
        assert_eq!(w, before);
        // Read-only status bits are not writable.
        w.write_control(WCS, 4, 0b110, 200).unwrap();
        assert_eq!(w.read_control(WCS, 4), Ok(0));
    }
}
