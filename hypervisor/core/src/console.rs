//! The shared console, as logic: no core ever waits for another
//! partition's output (docs/architecture.md, "The console").
//!
//! Every core writes its lines into its own [`LineRing`] (one producer:
//! that core, at EL2 with interrupts masked) and never touches the UART.
//! One core, the *drainer* ([`drainer`]: a core of a non-critical
//! partition where there is one), moves whole lines from the rings to the
//! UART, the critical partition's cores first, writing only while the UART
//! has room: a full ring drops the new line and counts it, a full UART
//! leaves the rest for the next drain. The hypervisor's event lines of
//! each partition pass a [`RateLimit`] first. [`PacedUart`] models a real
//! UART's baud rate on the counter for the test mode in which QEMU shows
//! what a board would.
//!
//! All of it is safe Rust over atomics, so the host tests exercise the
//! same code the hypervisor runs.

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Longest line a ring accepts (longer lines are cut there).
pub const MAX_LINE: usize = 240;

/// A single-producer, single-consumer ring of whole lines: records of a
/// 1-byte length and that many bytes. The producer only advances `head`,
/// the consumer only `tail`; both are byte counts that wrap at `u32`.
pub struct LineRing<const N: usize> {
    buf: [AtomicU8; N],
    head: AtomicU32,
    tail: AtomicU32,
    dropped: AtomicU32,
}

impl<const N: usize> Default for LineRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LineRing<N> {
    const OK: () = assert!(N.is_power_of_two() && N > MAX_LINE + 1 && N <= 1 << 30);

    pub const fn new() -> Self {
        let () = Self::OK;
        LineRing {
            buf: [const { AtomicU8::new(0) }; N],
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            dropped: AtomicU32::new(0),
        }
    }

    fn used(&self) -> usize {
        self.head
            .load(Ordering::Acquire)
            .wrapping_sub(self.tail.load(Ordering::Acquire)) as usize
    }

    /// Whether a line is waiting.
    pub fn pending(&self) -> bool {
        self.used() != 0
    }

    /// Producer: appends one line made of `parts` (cut at [`MAX_LINE`]
    /// bytes), or drops it whole and counts it when it does not fit.
    /// Never waits. Returns whether the line was queued.
    pub fn push(&self, parts: &[&[u8]]) -> bool {
        let len = parts.iter().map(|p| p.len()).sum::<usize>().min(MAX_LINE);
        if N - self.used() < len + 1 {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let head = self.head.load(Ordering::Relaxed);
        let mut at = head as usize;
        self.buf[at % N].store(len as u8, Ordering::Relaxed);
        at += 1;
        let mut left = len;
        for p in parts {
            let mut bytes = &p[..p.len().min(left)];
            left -= bytes.len();
            // In runs up to the end of the buffer: no index arithmetic or
            // bounds check per byte (boot lines are queued before the
            // critical partition starts).
            while !bytes.is_empty() {
                let start = at % N;
                let n = bytes.len().min(N - start);
                for (cell, &b) in self.buf[start..start + n].iter().zip(&bytes[..n]) {
                    cell.store(b, Ordering::Relaxed);
                }
                at += n;
                bytes = &bytes[n..];
            }
        }
        // Publish: the consumer sees the bytes before the new head.
        self.head
            .store(head.wrapping_add(len as u32 + 1), Ordering::Release);
        true
    }

    /// Lines dropped since the last call (the consumer reports them).
    pub fn take_dropped(&self) -> u32 {
        self.dropped.swap(0, Ordering::Relaxed)
    }

    /// Consumer: the length of the oldest line, if any.
    pub fn peek_len(&self) -> Option<usize> {
        if !self.pending() {
            return None;
        }
        let tail = self.tail.load(Ordering::Relaxed) as usize;
        Some(self.buf[tail % N].load(Ordering::Relaxed) as usize)
    }

    /// Consumer: byte `i` of the oldest line (`i < peek_len()`).
    pub fn byte(&self, i: usize) -> u8 {
        let tail = self.tail.load(Ordering::Relaxed) as usize;
        self.buf[(tail + 1 + i) % N].load(Ordering::Relaxed)
    }

    /// Consumer: the oldest line is written out; its space is free again.
    pub fn pop(&self) {
        if let Some(len) = self.peek_len() {
            let tail = self.tail.load(Ordering::Relaxed);
            self.tail
                .store(tail.wrapping_add(len as u32 + 1), Ordering::Release);
        }
    }
}

/// Where the drainer is in the line it is writing: lines never interleave
/// on the wire, and a line is finished before the drainer turns to a more
/// urgent ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// `(core, bytes of that core's oldest line already written)`.
    pub current: Option<(usize, usize)>,
    /// Round-robin position among the non-critical cores.
    pub next: usize,
}

/// The order in which the drainer serves the rings: the line in progress
/// first, then the critical cores' rings (lowest core first), then the
/// others round-robin from `cursor.next`. Returns the core to serve.
pub fn next_ring(
    cursor: &Cursor,
    critical: &[bool],
    pending: impl Fn(usize) -> bool,
) -> Option<usize> {
    if let Some((core, _)) = cursor.current {
        return Some(core);
    }
    if let Some(c) = (0..critical.len()).find(|&c| critical[c] && pending(c)) {
        return Some(c);
    }
    let n = critical.len();
    (0..n)
        .map(|i| (cursor.next + i) % n)
        .find(|&c| !critical[c] && pending(c))
}

/// The core that drains the console: the lowest core that belongs to no
/// critical partition, or, when every core is critical, core 0 (which then
/// does a bounded drain on its own timer). `critical[c]`: core `c` belongs
/// to a critical partition; `present[c]`: core `c` is started.
pub fn drainer(critical: &[bool], present: &[bool]) -> usize {
    (0..critical.len())
        .find(|&c| !critical[c] && present.get(c).copied().unwrap_or(false))
        .unwrap_or(0)
}

/// A token bucket for one partition's hypervisor event lines: `burst`
/// lines at once, then one every `interval` ticks. Lock-free (one word:
/// the time at which the bucket is full again, "GCRA"), so the cores of a
/// partition never wait on each other for it.
pub struct RateLimit {
    /// Counter value at which the bucket would be full (theoretical arrival
    /// time of the burst's end).
    tat: AtomicU64,
    suppressed: AtomicU32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::new()
    }
}

/// What to do with an event line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Print it; `suppressed` lines were dropped since the last one printed
    /// (print a summary first when non-zero).
    Print { suppressed: u32 },
    /// Drop it (counted).
    Suppress,
}

impl RateLimit {
    pub const fn new() -> Self {
        RateLimit {
            tat: AtomicU64::new(0),
            suppressed: AtomicU32::new(0),
        }
    }

    /// Decides for a line at counter `now`. Bounded: a few compare-and-swap
    /// attempts, then the line is suppressed rather than retried.
    pub fn check(&self, now: u64, interval: u64, burst: u64) -> Verdict {
        if self.take_token(now, interval, burst) {
            Verdict::Print {
                suppressed: self.suppressed.swap(0, Ordering::Relaxed),
            }
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            Verdict::Suppress
        }
    }

    fn take_token(&self, now: u64, interval: u64, burst: u64) -> bool {
        let window = interval.saturating_mul(burst);
        for _ in 0..4 {
            let tat = self.tat.load(Ordering::Relaxed);
            let base = tat.max(now);
            if base - now >= window {
                return false;
            }
            let new = base.saturating_add(interval);
            if self
                .tat
                .compare_exchange(tat, new, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                return true;
            }
        }
        false
    }

    /// Lines suppressed and not yet reported.
    pub fn pending_suppressed(&self) -> u32 {
        self.suppressed.load(Ordering::Relaxed)
    }

    /// Takes the count for a summary line, if the bucket has room for it
    /// (a summary that has to wait is not itself counted).
    pub fn take_summary(&self, now: u64, interval: u64, burst: u64) -> Option<u32> {
        if self.pending_suppressed() == 0 || !self.take_token(now, interval, burst) {
            return None;
        }
        Some(self.suppressed.swap(0, Ordering::Relaxed)).filter(|&n| n > 0)
    }
}

/// A UART paced by the counter: `bytes_per_s` leave a `fifo`-byte FIFO, so a
/// byte may be written only while the FIFO has room, as on a board (QEMU's
/// UARTs send instantly). For the console's test mode.
#[derive(Clone, Copy, Debug)]
pub struct PacedUart {
    /// Counter ticks one byte takes on the wire.
    byte_ticks: u64,
    fifo: u64,
    /// Counter value at which the FIFO is empty.
    busy_until: u64,
}

impl PacedUart {
    /// `baud` with 10 bits per byte (8N1), at counter frequency `freq`.
    pub const fn new(freq: u64, baud: u64, fifo: u64) -> Self {
        PacedUart {
            byte_ticks: freq * 10 / baud,
            fifo,
            busy_until: 0,
        }
    }

    /// Bytes the FIFO can take at `now`.
    pub fn room(&self, now: u64) -> u64 {
        let queued = self
            .busy_until
            .saturating_sub(now)
            .div_ceil(self.byte_ticks);
        self.fifo.saturating_sub(queued)
    }

    /// One byte written at `now` (the caller checked [`room`](Self::room)).
    pub fn wrote(&mut self, now: u64) {
        self.busy_until = self.busy_until.max(now) + self.byte_ticks;
    }

    /// Counter ticks per byte on the wire.
    pub fn byte_ticks(&self) -> u64 {
        self.byte_ticks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain<const N: usize>(r: &LineRing<N>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(len) = r.peek_len() {
            out.push((0..len).map(|i| r.byte(i)).collect());
            r.pop();
        }
        out
    }

    #[test]
    fn lines_come_out_whole_and_in_order() {
        let r = LineRing::<1024>::new();
        assert!(r.push(&[b"[septum] ", b"hello"]));
        assert!(r.push(&[b"second"]));
        assert_eq!(
            drain(&r),
            vec![b"[septum] hello".to_vec(), b"second".to_vec()]
        );
        assert!(!r.pending());
    }

    #[test]
    fn a_full_ring_drops_the_new_line_and_counts_it() {
        let r = LineRing::<512>::new();
        let line = [b'x'; 100];
        let mut queued = 0;
        for _ in 0..10 {
            queued += r.push(&[&line]) as usize;
        }
        assert_eq!(queued, 5, "101 bytes a record, 512 bytes");
        assert_eq!(r.take_dropped(), 5);
        assert_eq!(r.take_dropped(), 0);
        assert_eq!(drain(&r).len(), 5);
        assert!(r.push(&[&line]), "space is free again");
    }

    #[test]
    fn the_ring_wraps_and_long_lines_are_cut() {
        let r = LineRing::<512>::new();
        for i in 0..1000u32 {
            let s = format!("line {i}");
            assert!(r.push(&[s.as_bytes()]));
            assert_eq!(drain(&r), vec![s.into_bytes()]);
        }
        let long = [b'y'; 1000];
        assert!(r.push(&[&long[..10], &long]));
        let got = drain(&r);
        assert_eq!(got[0].len(), MAX_LINE);
    }

    #[test]
    fn producer_and_consumer_on_two_threads_lose_nothing_they_kept() {
        use std::sync::Arc;
        let r = Arc::new(LineRing::<4096>::new());
        let p = {
            let r = r.clone();
            std::thread::spawn(move || {
                let mut kept = 0u32;
                for i in 0..20_000u32 {
                    if r.push(&[&i.to_le_bytes()]) {
                        kept += 1;
                    }
                }
                kept
            })
        };
        let mut got = Vec::new();
        loop {
            while let Some(len) = r.peek_len() {
                assert_eq!(len, 4);
                got.push(u32::from_le_bytes(core::array::from_fn(|i| r.byte(i))));
                r.pop();
            }
            if p.is_finished() && !r.pending() {
                break;
            }
        }
        let kept = p.join().unwrap();
        assert_eq!(got.len() as u32 + r.take_dropped(), 20_000);
        assert_eq!(got.len() as u32, kept);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "in order");
    }

    #[test]
    fn the_critical_rings_come_first_and_a_line_is_finished_first() {
        let critical = [true, false, false, false];
        let pending = |c: usize| c != 2;
        let mut cur = Cursor::default();
        assert_eq!(next_ring(&cur, &critical, pending), Some(0));
        cur.next = 2;
        assert_eq!(next_ring(&cur, &critical, |c| c >= 1), Some(2));
        assert_eq!(next_ring(&cur, &critical, |c| c == 1), Some(1));
        cur.current = Some((3, 17));
        assert_eq!(next_ring(&cur, &critical, |_| true), Some(3));
        assert_eq!(next_ring(&Cursor::default(), &critical, |_| false), None);
    }

    #[test]
    fn the_drainer_is_a_non_critical_core() {
        assert_eq!(drainer(&[true, false, false, false], &[true; 4]), 1);
        assert_eq!(drainer(&[false, true], &[true, true]), 0);
        assert_eq!(drainer(&[true, true], &[true, true]), 0);
        assert_eq!(drainer(&[true, false, false], &[true, false, true]), 2);
    }

    #[test]
    fn rate_limit_allows_a_burst_then_one_per_interval_and_counts_the_rest() {
        let r = RateLimit::new();
        let (iv, burst) = (100, 5);
        let printed = (0..20)
            .filter(|_| matches!(r.check(1000, iv, burst), Verdict::Print { .. }))
            .count();
        assert_eq!(printed, 5);
        assert_eq!(r.pending_suppressed(), 15);
        // One interval later one more line passes, and reports the 15.
        assert_eq!(r.check(1100, iv, burst), Verdict::Print { suppressed: 15 });
        assert_eq!(r.check(1100, iv, burst), Verdict::Suppress);
        // A summary alone, when no line comes, once there is room for it.
        assert_eq!(r.take_summary(1150, iv, burst), Some(1));
        assert_eq!(r.take_summary(1150, iv, burst), None, "nothing to report");
        assert_eq!(r.check(1150, iv, burst), Verdict::Suppress);
        assert_eq!(r.take_summary(1200, iv, burst), None, "no room yet");
        assert_eq!(r.take_summary(1201, iv, burst), Some(1));
        // Quiet for long: the full burst again.
        let printed = (0..10)
            .filter(|_| matches!(r.check(100_000, iv, burst), Verdict::Print { .. }))
            .count();
        assert_eq!(printed, 5);
        // A sustained flood passes one line per interval.
        let r = RateLimit::new();
        let printed = (0..100_000u64)
            .filter(|t| matches!(r.check(*t, iv, burst), Verdict::Print { .. }))
            .count();
        assert!((1000..=1006).contains(&printed), "{printed}");
    }

    #[test]
    fn paced_uart_sends_at_its_baud_rate() {
        // 62.5 MHz counter, 115200 baud: 5425 ticks a byte, 32-byte FIFO.
        let mut u = PacedUart::new(62_500_000, 115_200, 32);
        assert_eq!(u.byte_ticks(), 5425);
        let mut sent = 0u64;
        let mut now = 0;
        // One second of trying to write as fast as possible.
        while now < 62_500_000 {
            while u.room(now) > 0 {
                u.wrote(now);
                sent += 1;
            }
            now += 1000;
        }
        assert!((11_520..=11_520 + 33).contains(&sent), "{sent}");
        assert_eq!(u.room(now + 32 * 5425), 32, "drained");
    }
}
