//! The channel record reader (`septum_abi::channel::read`, what Linux's
//! `septum-telemetry` runs over the telemetry page) and the mailbox cursor
//! (`request::Cursor`, what the RTOS runs over the head Linux writes), on
//! contents a hostile writer chose.
//!
//! Checks: no panic and no access outside the page; a record is returned
//! only with the expected magic and major version, an even sequence number
//! and a length inside the page and at least the reader's; every slot the
//! cursor names is inside the ring, it never names more than a ring's
//! worth for one head, and it stops when it has caught up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use septum_abi::channel::request::Cursor;
use septum_abi::channel::telemetry::{MAGIC, VERSION, WORDS};
use septum_abi::channel::{
    read, Words, HEADER_WORDS, PAGE_WORDS, W_LEN, W_MAGIC, W_SEQ, W_VERSION,
};

struct Page(Vec<u32>);

impl Words for Page {
    fn load(&self, word: usize) -> u32 {
        assert!(word < PAGE_WORDS, "read outside the page: {word}");
        self.0[word]
    }
    fn store(&mut self, _: usize, _: u32) {
        panic!("a reader stored");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut words = vec![0u32; PAGE_WORDS];
    for (w, c) in words.iter_mut().zip(data.chunks(4)) {
        let mut b = [0u8; 4];
        b[..c.len()].copy_from_slice(c);
        *w = u32::from_le_bytes(b);
    }
    // Half the inputs get a plausible header, so that the payload paths run.
    if data.first().is_some_and(|b| b & 1 == 1) {
        words[W_MAGIC] = MAGIC;
        words[W_VERSION] = VERSION ^ (words[W_VERSION] & 0xff);
        words[W_SEQ] &= !1;
        words[W_LEN] %= (PAGE_WORDS - HEADER_WORDS + 2) as u32;
    }
    let page = Page(words.clone());
    let mut out = [0u32; WORDS];
    if let Ok(seq) = read(&page, MAGIC, VERSION, &mut out, 3) {
        assert_eq!(seq, words[W_SEQ]);
        assert_eq!(seq & 1, 0);
        assert_eq!(words[W_MAGIC], MAGIC);
        assert_eq!(words[W_VERSION] >> 16, VERSION >> 16);
        let len = words[W_LEN] as usize;
        assert!(len >= WORDS && len <= PAGE_WORDS - HEADER_WORDS);
        assert_eq!(&out[..], &words[HEADER_WORDS..HEADER_WORDS + WORDS]);
    }

    // The cursor against a head sequence taken from the input.
    let slots = 1 + usize::from(data.get(1).copied().unwrap_or(0) % 31);
    let mut c = Cursor::at(words[8]);
    for h in words[9..9 + 16].iter() {
        let mut n = 0;
        while let Some(next) = c.next(*h, slots) {
            assert!(next.slot < slots);
            n += 1;
            assert!(n <= slots, "more than a ring for one head");
        }
    }
});
