//! The generated code compiles against septum-core and carries the values of
//! the configuration (build.rs generates it from tests/fixtures/*.toml).

mod good {
    include!(concat!(env!("OUT_DIR"), "/fixture_good.rs"));
}

mod rpi4 {
    include!(concat!(env!("OUT_DIR"), "/fixture_rpi4.rs"));
}

#[allow(dead_code)] // LOAD_ADDR & co. are checked with the other fixtures
mod linux {
    include!(concat!(env!("OUT_DIR"), "/fixture_linux.rs"));
}

use septum_core::addr::{GuestPhysAddr, PhysAddr, PhysRange};
use septum_core::config::{
    Board, Conduit, CpuBoot, Criticality, DeviceKind, FaultAction, GicVersion, Perms, UartKind,
};

#[test]
fn qemu_virt_fixture() {
    assert_eq!(good::LOAD_ADDR, 0x4020_0000);
    assert_eq!(good::HYP_BASE, 0x4000_0000);
    assert_eq!(good::HYP_SIZE, 0x0800_0000);
    let c = &good::CONFIG;
    assert_eq!(c.name, "good");
    assert!(c.source.ends_with("tests/fixtures/good.toml"));
    let p = &c.platform;
    assert_eq!(p.board, Board::QemuVirt);
    assert_eq!(p.cpus, 4);
    assert_eq!(p.ram, &[PhysRange::new(PhysAddr(0x4000_0000), 0x8000_0000)]);
    assert_eq!(
        p.mmio,
        &[PhysRange::new(PhysAddr(0x0800_0000), 0x3800_0000)]
    );
    assert_eq!(
        p.hypervisor,
        PhysRange::new(PhysAddr(0x4000_0000), 0x0800_0000)
    );
    assert_eq!(p.load_addr, PhysAddr(0x4020_0000));
    assert_eq!(p.console.kind, UartKind::Pl011);
    assert_eq!(p.console.base, PhysAddr(0x0900_0000));
    assert_eq!(p.gic.version, GicVersion::V3);
    assert_eq!(p.gic.gicd, PhysAddr(0x0800_0000));
    assert_eq!(p.gic.gicr, PhysAddr(0x080a_0000));
    assert_eq!(p.gic.gicr_stride, 0x2_0000);
    assert_eq!(p.gic.maintenance_irq, 25);
    assert_eq!(p.cpu_boot, CpuBoot::Psci(Conduit::Smc));

    assert_eq!(c.partitions.len(), 2);
    let rtos = &c.partitions[0];
    assert_eq!((rtos.id, rtos.name, rtos.vmid), (0, "rtos", 1));
    assert_eq!(rtos.criticality, Criticality::Critical);
    assert_eq!(rtos.cores, &[0]);
    assert_eq!(rtos.entry, GuestPhysAddr(0x4020_0000));
    assert_eq!(rtos.boot_arg, 0);
    assert_eq!(rtos.memory.len(), 2);
    assert_eq!(rtos.memory[0].ipa, GuestPhysAddr(0x4000_0000));
    assert_eq!(rtos.memory[0].pa, PhysAddr(0x4800_0000));
    assert_eq!(rtos.memory[0].size, 0x0100_0000);
    assert_eq!(rtos.memory[0].perms, Perms::RWX);
    assert!(!rtos.memory[0].shared);
    assert_eq!(rtos.memory[1].perms, Perms::RW);
    assert!(rtos.memory[1].shared);
    assert!(matches!(
        rtos.devices[0].kind,
        DeviceKind::VirtualUart {
            ipa: GuestPhysAddr(0x0900_0000)
        }
    ));
    assert_eq!(rtos.images.len(), 1);
    assert_eq!(rtos.images[0].data, include_bytes!("fixtures/rtos.bin"));
    assert_eq!(rtos.images[0].load, GuestPhysAddr(0x4020_0000));
    assert_eq!(rtos.fault_policy.system_off, FaultAction::SafeState);
    assert_eq!(rtos.fault_policy.access_violation, FaultAction::InjectAbort);
    assert_eq!(rtos.fault_policy.system_reset, FaultAction::Restart);
    assert_eq!(
        (
            rtos.fault_policy.max_restarts,
            rtos.fault_policy.restart_window_ms
        ),
        (3, 60_000)
    );

    let linux = &c.partitions[1];
    assert_eq!((linux.id, linux.name, linux.vmid), (1, "linux", 2));
    assert_eq!(linux.criticality, Criticality::NonCritical);
    assert_eq!(linux.cores, &[1, 2, 3]);
    assert_eq!(linux.boot_arg, 0x4400_0000);
    assert_eq!(linux.devices[0].irqs, &[40]);
    assert!(matches!(
        linux.devices[0].kind,
        DeviceKind::Passthrough {
            pa: PhysAddr(0x0904_0000),
            ipa: GuestPhysAddr(0x0904_0000),
            size: 0x1000,
            dma: false
        }
    ));
    assert_eq!(linux.images[0].data, include_bytes!("fixtures/linux.bin"));
    assert_eq!(linux.images[1].data, include_bytes!("fixtures/rtos.bin"));
    assert_eq!(linux.fault_policy.access_violation, FaultAction::Stop);
    assert_eq!(
        (
            linux.fault_policy.max_restarts,
            linux.fault_policy.restart_window_ms
        ),
        (5, 10_000)
    );
}

#[test]
fn rpi4_fixture() {
    let p = &rpi4::CONFIG.platform;
    assert_eq!(p.board, Board::RaspberryPi4);
    assert_eq!(p.ram.len(), 2);
    assert_eq!(p.console.kind, UartKind::MiniUart);
    assert_eq!(p.gic.version, GicVersion::V2);
    assert_eq!(p.gic.gicc, PhysAddr(0xff84_2000));
    assert_eq!(p.gic.gich, PhysAddr(0xff84_4000));
    assert_eq!(p.gic.gicv, PhysAddr(0xff84_6000));
    assert_eq!(p.gic.gicr, PhysAddr(0));
    assert_eq!(
        p.cpu_boot,
        CpuBoot::SpinTable {
            release: [PhysAddr(0xe0), PhysAddr(0xe8), PhysAddr(0xf0)]
        }
    );
    let linux = &rpi4::CONFIG.partitions[1];
    assert!(matches!(
        linux.devices[0].kind,
        DeviceKind::Passthrough { dma: true, .. }
    ));
    assert_eq!(linux.fault_policy.system_reset, FaultAction::Stop);
    assert_eq!(linux.fault_policy.max_restarts, 0);
    assert_eq!(rpi4::LOAD_ADDR, 0x20_0000);
    assert_eq!((rpi4::HYP_BASE, rpi4::HYP_SIZE), (0, 0x200_0000));
}

/// REQ-LINUX-BOOT: a Linux partition gets its kernel, initrd and generated
/// device tree as images, entry = the kernel, x0 = the device tree.
#[test]
fn linux_fixture() {
    let p = &linux::CONFIG.partitions[1];
    assert_eq!(p.name, "linux");
    assert_eq!(p.entry, GuestPhysAddr(0x5000_0000));
    assert_eq!(p.boot_arg, 0xbfe0_0000);
    let names: Vec<&str> = p.images.iter().map(|i| i.name).collect();
    assert_eq!(names, ["kernel", "initrd", "dtb"]);
    assert_eq!(p.images[0].data, include_bytes!("fixtures/linux.Image"));
    assert_eq!(p.images[0].load, GuestPhysAddr(0x5000_0000));
    assert_eq!(p.images[1].data, include_bytes!("fixtures/initrd.cpio.gz"));
    assert_eq!(p.images[1].load, GuestPhysAddr(0x5160_0000));
    let dtb = p.images[2].data;
    assert_eq!(&dtb[..4], &[0xd0, 0x0d, 0xfe, 0xed]);
    assert_eq!(p.images[2].load, GuestPhysAddr(0xbfe0_0000));
    // The bytes embedded are the file build.rs wrote, as `generate` would.
    let file = concat!(env!("OUT_DIR"), "/fixture_linux/linux.dtb");
    assert_eq!(dtb, std::fs::read(file).unwrap());
    assert!(matches!(
        p.devices[1].kind,
        DeviceKind::Passthrough {
            pa: PhysAddr(0x0a00_0000),
            size: 0x1000,
            dma: true,
            ..
        }
    ));
    assert_eq!(p.fault_policy.max_restarts, 5);
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.toml"))
}

/// REQ-MB-2: the configuration digest the hypervisor computes from the
/// generated `CONFIG` is the one the host signs into the manifest.
#[test]
fn config_digest_agrees_between_host_and_generated_code() {
    use septum_core::measure::{config_digest, sha256::soft_compress};
    for (name, cfg) in [
        ("good", &good::CONFIG),
        ("rpi4", &rpi4::CONFIG),
        ("linux", &linux::CONFIG),
    ] {
        let host = septum_config::load(&fixture(name)).unwrap();
        assert_eq!(
            config_digest(cfg, soft_compress),
            septum_config::sign::config_digest(&host),
            "{name}"
        );
    }
    // And it depends on what the hypervisor enforces.
    let a = septum_config::sign::config_digest(&septum_config::load(&fixture("good")).unwrap());
    let b = septum_config::sign::config_digest(&septum_config::load(&fixture("rpi4")).unwrap());
    assert_ne!(a, b);
}

/// REQ-MB-1: the signed manifest lists every image the generated code
/// embeds, with its size, load address and SHA-256, and verifies with the
/// signer's public key only.
#[test]
fn signed_manifest_covers_every_embedded_image() {
    use septum_core::measure::manifest::Manifest;
    use septum_core::measure::sha256::{soft_compress, Sha256};
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let cfg = septum_config::load(&fixture("linux")).unwrap();
    let bytes = septum_config::sign::build_manifest(&cfg, &key).unwrap();
    let m = Manifest::parse(&bytes).unwrap();
    m.verify(&key.verifying_key().to_bytes()).unwrap();
    assert!(m
        .verify(
            &ed25519_dalek::SigningKey::from_bytes(&[4; 32])
                .verifying_key()
                .to_bytes()
        )
        .is_err());
    let mut n = 0;
    for p in linux::CONFIG.partitions {
        for img in p.images {
            let e = m.find(p.name, img.name).expect("entry");
            assert_eq!(e.size, img.data.len() as u64, "{}/{}", p.name, img.name);
            assert_eq!(e.load, img.load.raw());
            assert_eq!(e.digest, Sha256::digest(soft_compress, img.data));
            n += 1;
        }
    }
    assert_eq!(m.len(), n);
    assert_eq!(m.svn(), cfg.boot.security_version);
}
