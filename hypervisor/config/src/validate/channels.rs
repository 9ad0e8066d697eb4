//! The `[[channel]]` rules (CFG-58..CFG-65): one-directional shared pages
//! between two partitions (docs/channels.md). Run after the partitions'
//! own checks, so that a channel is judged against memory, devices and
//! GIC frames that are themselves valid.

use toml::Spanned;

use super::model::{
    ChannelEnd, ChannelRole, Doorbell, GuestPhysAddr, GuestRange, PhysAddr, PhysRange,
};
use super::s;
use super::SPIS;
use super::{
    aligned, ends_above_ipa_space, hx, ipa_range, pa_range, v, Diagnostic, Rule, Span, Validator,
    IPA_LIMIT, PAGE,
};
use super::{hex, range};
use septum_core::config::{
    CHANNEL_NAME_MAX as NAME_MAX, DOORBELL_FRAME, MAX_CHANNEL_ENDS, MAX_CHANNEL_SIZE,
    MAX_DOORBELL_BURST, MAX_DOORBELL_RATE,
};

/// A channel that passed its own checks, with its partitions resolved.
pub(super) struct Chan<'a> {
    pub c: &'a s::Channel,
    pub writer: Option<usize>,
    pub reader: Option<usize>,
    pub pa: Option<PhysRange>,
    /// `None` when the end's range is invalid.
    pub writer_ipa: Option<GuestRange>,
    pub reader_ipa: Option<GuestRange>,
    /// The doorbell, when it passed CFG-64.
    pub doorbell: Option<Doorbell>,
}

impl Chan<'_> {
    /// The ends whose partition and range are known: (partition, role,
    /// IPA range, the span of the key that set it).
    fn ends(&self) -> Vec<(usize, ChannelRole, GuestRange, Span)> {
        let span = |k: &Option<Spanned<u64>>| k.as_ref().map_or(self.c.pa.span(), Spanned::span);
        let mut e = Vec::new();
        if let (Some(p), Some(r)) = (self.writer, self.writer_ipa) {
            e.push((p, ChannelRole::Writer, r, span(&self.c.writer_ipa)));
        }
        if let (Some(p), Some(r)) = (self.reader, self.reader_ipa) {
            e.push((p, ChannelRole::Reader, r, span(&self.c.reader_ipa)));
        }
        e
    }

    /// Every IPA range the channel claims in a partition: its ends and the
    /// reader's doorbell frame, as (partition, what, range, span).
    fn claims(&self) -> Vec<(usize, String, GuestRange, Span)> {
        let mut c: Vec<_> = self
            .ends()
            .into_iter()
            .map(|(p, role, r, span)| (p, format!("{} end", role.name()), r, span))
            .collect();
        if let (Some(p), Some(d), Some(k)) = (self.reader, self.doorbell, &self.c.doorbell) {
            let r = GuestRange::new(d.ipa, DOORBELL_FRAME);
            c.push((p, "doorbell frame".to_owned(), r, k.get_ref().ipa.span()));
        }
        c
    }
}

fn name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= NAME_MAX
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl<'a> Validator<'a> {
    pub(super) fn channels(&mut self) {
        let mut chans = Vec::new();
        for (i, c) in self.file.channel.iter().enumerate() {
            let ch = self.channel(i, c.get_ref());
            chans.push(ch);
        }
        self.channel_pa(&chans);
        self.channel_ipa(&chans);
        self.channel_dma(&chans);
        self.channel_limit(&chans);
        self.doorbell_irqs(&chans);
        self.chans = chans;
    }

    fn partition_index(&self, name: &str) -> Option<usize> {
        self.file
            .partition
            .iter()
            .position(|p| p.get_ref().name.get_ref() == name)
    }

    /// CFG-58, CFG-59 and the general range rules for one channel.
    fn channel(&mut self, i: usize, c: &'a s::Channel) -> Chan<'a> {
        let name = c.name.get_ref();
        let what = format!("channel `{name}`");
        if !name_ok(name) {
            self.err(
                Rule::ChannelForm,
                c.name.span(),
                format!(
                    "channel name `{name}` must be 1 to {NAME_MAX} characters of a-z, 0-9 and -"
                ),
            );
        }
        if let Some(first) = self.file.channel[..i]
            .iter()
            .find(|o| o.get_ref().name.get_ref() == name)
        {
            self.push(
                Diagnostic::new(
                    Rule::ChannelForm,
                    c.name.span(),
                    format!("there are two channels named `{name}`"),
                )
                .note(first.get_ref().name.span(), "the first one"),
            );
        }
        let mut side = |key: &str, n: &Spanned<String>| match self.partition_index(n.get_ref()) {
            Some(p) => Some(p),
            None => {
                self.err(
                    Rule::ChannelForm,
                    n.span(),
                    format!(
                        "{what}: {key} names `{}`, but there is no partition `{}`",
                        n.get_ref(),
                        n.get_ref()
                    ),
                );
                None
            }
        };
        let writer = side("writer", &c.writer);
        let reader = side("reader", &c.reader);
        if writer.is_some() && writer == reader {
            self.err(
                Rule::ChannelForm,
                c.reader.span(),
                format!(
                    "{what}: writer and reader are both `{}`; a channel joins two partitions",
                    c.reader.get_ref()
                ),
            );
        }
        let mut keys = vec![("pa", &c.pa), ("size", &c.size)];
        keys.extend(c.writer_ipa.as_ref().map(|k| ("writer-ipa", k)));
        keys.extend(c.reader_ipa.as_ref().map(|k| ("reader-ipa", k)));
        let mut ok = true;
        for (key, val) in keys {
            if !aligned(v(val), PAGE) {
                ok = false;
                self.err(
                    Rule::ChannelRange,
                    val.span(),
                    format!("{what}: {key} {} is not 4 KiB aligned", hx(v(val))),
                );
            }
        }
        if v(&c.size) > MAX_CHANNEL_SIZE {
            ok = false;
            self.err(
                Rule::ChannelRange,
                c.size.span(),
                format!(
                    "{what}: size {} is above the largest channel, {}",
                    hx(v(&c.size)),
                    hx(MAX_CHANNEL_SIZE)
                ),
            );
        }
        let doorbell = self.channel_doorbell(&what, c, reader);
        let mut ch = Chan {
            c,
            writer,
            reader,
            pa: None,
            writer_ipa: None,
            reader_ipa: None,
            doorbell,
        };
        if !ok || !self.nonempty(&what, &c.size) {
            return ch;
        }
        if self.no_overflow(&what, "pa", &c.pa, &c.size) {
            ch.pa = Some(pa_range(v(&c.pa), v(&c.size)));
        }
        ch.writer_ipa = self.channel_end_ipa(&what, "writer-ipa", c.writer_ipa.as_ref(), c);
        ch.reader_ipa = self.channel_end_ipa(&what, "reader-ipa", c.reader_ipa.as_ref(), c);
        ch
    }

    /// CFG-64 on one doorbell's own keys, and CFG-65.
    fn channel_doorbell(
        &mut self,
        what: &str,
        c: &'a s::Channel,
        reader: Option<usize>,
    ) -> Option<Doorbell> {
        let d = c.doorbell.as_ref()?;
        let db = d.get_ref();
        let mut ok = true;
        let irq = v(&db.irq);
        if irq == self.maintenance_irq {
            ok = false;
            self.err(
                Rule::DoorbellForm,
                db.irq.span(),
                format!("{what}: doorbell irq {irq} is the GIC maintenance interrupt"),
            );
        } else if !SPIS.contains(&irq) {
            ok = false;
            self.err(
                Rule::DoorbellForm,
                db.irq.span(),
                format!("{what}: doorbell irq {irq} is not an SPI (32..=1019)"),
            );
        }
        let ipa = v(&db.ipa);
        if !aligned(ipa, PAGE) {
            ok = false;
            self.err(
                Rule::DoorbellForm,
                db.ipa.span(),
                format!("{what}: doorbell ipa {} is not 4 KiB aligned", hx(ipa)),
            );
        } else if u128::from(ipa) + u128::from(DOORBELL_FRAME) > IPA_LIMIT {
            ok = false;
            self.err(
                Rule::DoorbellForm,
                db.ipa.span(),
                format!(
                    "{what}: doorbell frame at ipa {} ends above 2^39 ({}), the top of the 39-bit IPA space",
                    hx(ipa),
                    hex(IPA_LIMIT)
                ),
            );
        }
        let rate = v(&db.rate);
        if !(1..=u64::from(MAX_DOORBELL_RATE)).contains(&rate) {
            ok = false;
            self.err(
                Rule::DoorbellForm,
                db.rate.span(),
                format!("{what}: doorbell rate {rate} is not in 1..={MAX_DOORBELL_RATE} a second"),
            );
        }
        let burst = db.burst.as_ref().map_or(1, v);
        if !(1..=u64::from(MAX_DOORBELL_BURST)).contains(&burst) {
            ok = false;
            let span = db.burst.as_ref().map(Spanned::span);
            self.err(
                Rule::DoorbellForm,
                span,
                format!("{what}: doorbell burst {burst} is not in 1..={MAX_DOORBELL_BURST}"),
            );
        }
        if let Some(r) = reader {
            let p = self.file.partition[r].get_ref();
            if v(&p.criticality) == s::Criticality::Critical {
                ok = false;
                self.push(
                    Diagnostic::new(
                        Rule::DoorbellCritical,
                        d.span(),
                        format!(
                            "{what}: the doorbell would interrupt `{}`, the critical partition; leave it out (the critical partition polls)",
                            p.name.get_ref()
                        ),
                    )
                    .note(p.criticality.span(), "the critical partition"),
                );
            }
        }
        ok.then_some(Doorbell {
            irq: irq as u32,
            ipa: GuestPhysAddr(ipa),
            per_second: rate as u32,
            burst: burst as u32,
        })
    }

    /// CFG-64: a doorbell's SPI is nobody else's.
    fn doorbell_irqs(&mut self, chans: &[Chan<'a>]) {
        let mut errs = Vec::new();
        for (j, ch) in chans.iter().enumerate() {
            let (Some(d), Some(k)) = (ch.doorbell, &ch.c.doorbell) else {
                continue;
            };
            let what = format!("channel `{}`", ch.c.name.get_ref());
            let span = k.get_ref().irq.span();
            for dev in &self.devs {
                for irq in dev.d.irqs.iter().flat_map(|l| l.get_ref()) {
                    if v(irq) == u64::from(d.irq) {
                        errs.push(
                            Diagnostic::new(
                                Rule::DoorbellForm,
                                span.clone(),
                                format!(
                                    "{what}: doorbell irq {} is already used by device `{}` of partition `{}`",
                                    d.irq,
                                    dev.d.name.get_ref(),
                                    self.part_name(dev.part)
                                ),
                            )
                            .note(irq.span(), "the device's irq"),
                        );
                    }
                }
            }
            for o in &chans[..j] {
                if let (Some(od), Some(ok)) = (o.doorbell, &o.c.doorbell) {
                    if od.irq == d.irq {
                        errs.push(
                            Diagnostic::new(
                                Rule::DoorbellForm,
                                span.clone(),
                                format!(
                                    "{what}: doorbell irq {} is already the doorbell of channel `{}`",
                                    d.irq,
                                    o.c.name.get_ref()
                                ),
                            )
                            .note(ok.get_ref().irq.span(), "the other doorbell"),
                        );
                    }
                }
            }
        }
        self.errs.extend(errs);
    }

    /// One end's IPA range (the PA when the key is left out), checked
    /// against CFG-20 and CFG-27.
    fn channel_end_ipa(
        &mut self,
        what: &str,
        key: &str,
        ipa: Option<&'a Spanned<u64>>,
        c: &'a s::Channel,
    ) -> Option<GuestRange> {
        let at = ipa.unwrap_or(&c.pa);
        if !self.no_overflow(what, key, at, &c.size) {
            return None;
        }
        let r = ipa_range(v(at), v(&c.size));
        if ends_above_ipa_space(&r) {
            self.err(
                Rule::IpaLimit,
                at.span(),
                format!(
                    "{what}: {key} range {} ends above 2^39 ({}), the top of the 39-bit IPA space",
                    range(r.start.0, r.size),
                    hex(IPA_LIMIT)
                ),
            );
            return None;
        }
        Some(r)
    }

    /// CFG-60: RAM that belongs to nobody else.
    fn channel_pa(&mut self, chans: &[Chan<'a>]) {
        let mut errs = Vec::new();
        for (j, ch) in chans.iter().enumerate() {
            let Some(pa) = ch.pa else { continue };
            let what = format!("channel `{}`", ch.c.name.get_ref());
            let span = ch.c.pa.span();
            if !self.ram.is_empty() && !self.in_ram(&pa) {
                errs.push(Diagnostic::new(
                    Rule::ChannelMemory,
                    span.clone(),
                    format!(
                        "{what}: PA range {} is not inside one RAM bank",
                        range(pa.start.0, pa.size)
                    ),
                ));
            }
            if let Some(h) = self.hyp.filter(|h| h.overlaps(&pa)) {
                errs.push(Diagnostic::new(
                    Rule::ChannelMemory,
                    span.clone(),
                    format!(
                        "{what}: PA range {} overlaps the hypervisor region {}",
                        range(pa.start.0, pa.size),
                        range(h.start.0, h.size)
                    ),
                ));
            }
            for m in &self.mems {
                if let Some(r) = m.pa.filter(|r| r.overlaps(&pa)) {
                    errs.push(
                        Diagnostic::new(
                            Rule::ChannelMemory,
                            span.clone(),
                            format!(
                                "{what}: PA range {} overlaps memory region `{}` of partition `{}` at {}; a channel is in no partition's memory",
                                range(pa.start.0, pa.size),
                                m.r.name.get_ref(),
                                self.part_name(m.part),
                                range(r.start.0, r.size)
                            ),
                        )
                        .note(m.r.pa.span(), "the memory region"),
                    );
                }
            }
            for o in &chans[..j] {
                if let Some(r) = o.pa.filter(|r| r.overlaps(&pa)) {
                    errs.push(
                        Diagnostic::new(
                            Rule::ChannelMemory,
                            span.clone(),
                            format!(
                                "{what}: PA range {} overlaps channel `{}` at {}",
                                range(pa.start.0, pa.size),
                                o.c.name.get_ref(),
                                range(r.start.0, r.size)
                            ),
                        )
                        .note(o.c.pa.span(), "the other channel"),
                    );
                }
            }
        }
        self.errs.extend(errs);
    }

    /// CFG-61: each end is a hole in its partition's IPA space.
    fn channel_ipa(&mut self, chans: &[Chan<'a>]) {
        let parts = &self.file.partition;
        let mut errs = Vec::new();
        let mut seen: Vec<(usize, String, GuestRange, Span)> = Vec::new();
        for ch in chans {
            let what = format!("channel `{}`", ch.c.name.get_ref());
            for (part, claim, ipa, span) in ch.claims() {
                let mut taken: Vec<(String, GuestRange)> = Vec::new();
                for m in self.mems.iter().filter(|m| m.part == part) {
                    if let Some(r) = m.ipa {
                        taken.push((format!("memory region `{}`", m.r.name.get_ref()), r));
                    }
                }
                for d in self.devs.iter().filter(|d| d.part == part) {
                    if let Some(r) = d.ipa {
                        taken.push((format!("device `{}`", d.d.name.get_ref()), r));
                    }
                }
                if let Some(gic) = self.guest_gic {
                    let vcpus = parts[part].get_ref().cores.get_ref().len() as u64;
                    for (frame, r) in gic.frames(vcpus) {
                        taken.push((format!("the virtual GIC's {frame} frame"), r));
                    }
                }
                if let Some(w) = parts[part].get_ref().watchdog.as_ref() {
                    if let Some(a) = w.get_ref().ipa.as_ref() {
                        taken.push((
                            "the sbsa-gwdt frames".to_owned(),
                            GuestRange::new(GuestPhysAddr(v(a)), 0x2000),
                        ));
                    }
                }
                for (p, n, r, _) in &seen {
                    if *p == part {
                        taken.push((n.clone(), *r));
                    }
                }
                for (other, r) in taken {
                    if r.size > 0 && r.overlaps(&ipa) {
                        errs.push(Diagnostic::new(
                            Rule::ChannelIpa,
                            span.clone(),
                            format!(
                                "{what}: the {claim} at IPA {} in partition `{}` overlaps {other} at IPA {}",
                                range(ipa.start.0, ipa.size),
                                self.part_name(part),
                                range(r.start.0, r.size)
                            ),
                        ));
                    }
                }
                seen.push((part, format!("the {claim} of {what}"), ipa, span));
            }
        }
        self.errs.extend(errs);
    }

    /// CFG-62: a partition with a DMA master sees its channels at their
    /// physical addresses, as it does its memory (CFG-35).
    fn channel_dma(&mut self, chans: &[Chan<'a>]) {
        let mut errs = Vec::new();
        for ch in chans {
            let Some(pa) = ch.pa else { continue };
            for (part, role, ipa, span) in ch.ends() {
                let dma = self.devs.iter().find(|d| d.part == part && d.dma());
                if let (Some(d), true) = (dma, ipa.start.0 != pa.start.0) {
                    errs.push(
                        Diagnostic::new(
                            Rule::ChannelDma,
                            span,
                            format!(
                                "channel `{}`: partition `{}` has the DMA master `{}`, so its {} end must be at IPA == PA ({}), not {}",
                                ch.c.name.get_ref(),
                                self.part_name(part),
                                d.d.name.get_ref(),
                                role.name(),
                                hx(pa.start.0),
                                hx(ipa.start.0)
                            ),
                        )
                        .note(d.d.name.span(), "the DMA master"),
                    );
                }
            }
        }
        self.errs.extend(errs);
    }

    /// CFG-63.
    fn channel_limit(&mut self, chans: &[Chan<'a>]) {
        for part in 0..self.file.partition.len() {
            let n = chans
                .iter()
                .map(|c| usize::from(c.writer == Some(part)) + usize::from(c.reader == Some(part)))
                .sum::<usize>();
            if n > MAX_CHANNEL_ENDS {
                self.err(
                    Rule::ChannelLimit,
                    self.file.partition[part].get_ref().name.span(),
                    format!(
                        "partition `{}` is an end of {n} channels; at most {MAX_CHANNEL_ENDS}",
                        self.part_name(part)
                    ),
                );
            }
        }
    }

    /// The validated ends of partition `part`, in the order of the file.
    pub(super) fn channel_ends(&self, part: usize) -> Vec<ChannelEnd> {
        let mut v = Vec::new();
        for ch in &self.chans {
            let Some(pa) = ch.pa else { continue };
            for (p, role, ipa, _) in ch.ends() {
                if p == part {
                    v.push(ChannelEnd {
                        name: ch.c.name.get_ref().clone(),
                        ipa: ipa.start,
                        pa: PhysAddr(pa.start.0),
                        size: pa.size,
                        role,
                        peer: match role {
                            ChannelRole::Writer => ch.reader,
                            ChannelRole::Reader => ch.writer,
                        }
                        .unwrap_or(0),
                        doorbell: ch.doorbell,
                    });
                }
            }
        }
        v
    }
}
