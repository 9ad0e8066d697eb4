//! `septum-config`: check a partition TOML file, print its partition table or
//! generate the Rust configuration the hypervisor compiles in.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::{env, fs};

const USAGE: &str = "\
usage: septum-config check <file.toml>
       septum-config table <file.toml>
       septum-config generate <file.toml> --out <dir>
       septum-config rules
       septum-config digest <file.toml>
       septum-config sign <file.toml> --key <private.key> --out <manifest.bin>
       septum-config trust <public.pub> --out <dir>
       septum-config keygen <prefix>
       septum-config request --key <private.key> [--key-id N] --seq N --id N --out <slot.bin>
                             (set-rate <mL/h> | pause | resume | ack-alarm)
       septum-config tamper <file.toml> <image> <out> --flip <partition>/<image>
                                                      | --flip-signature
                                                      | --resign <private.key> [--svn N]
                                                      | --manifest <manifest.bin>

  check     validate the file; prints `ok: N partitions` or the errors
  table     validate, then print the partition table and memory map
  generate  validate, then write <dir>/config.rs, <dir>/summary.txt and
            <dir>/<partition>.dtb for each Linux partition
  rules     list the validation rules and their IDs
  digest    print the configuration digest a manifest must carry
  sign      measure every image of the configuration and write the signed
            boot manifest (at the file's boot.security-version)
  trust     write <dir>/trust.rs: the public key the hypervisor will trust
  keygen    create <prefix>.key (private, mode 0600) and <prefix>.pub
  request   write one signed therapy request slot (128 bytes) for the
            RTOS's requests channel (docs/channels.md, Requests)
  tamper    write a deliberately broken copy of a built image, to see the
            hypervisor refuse it (docs/measured-boot.md)
(docs/measured-boot.md describes the keys and the procedures)

exit status: 0 success, 1 invalid configuration or I/O error, 2 usage error";

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("septum-config: {msg}\n{USAGE}");
    ExitCode::from(2)
}

fn load(path: &Path) -> Result<septum_config::ValidatedConfig, ExitCode> {
    septum_config::load(path).map_err(|d| {
        eprintln!("{d}");
        ExitCode::from(1)
    })
}

fn generate(path: &Path, out: &Path) -> ExitCode {
    let cfg = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let files = septum_config::output_files(&cfg, out);
    if let Err(e) = fs::create_dir_all(out) {
        eprintln!("septum-config: cannot create {}: {e}", out.display());
        return ExitCode::from(1);
    }
    for (file, text) in files {
        // Leave an unchanged file alone so that cargo does not rebuild for nothing.
        if fs::read(&file).is_ok_and(|old| old == text) {
            continue;
        }
        if let Err(e) = fs::write(&file, text) {
            eprintln!("septum-config: cannot write {}: {e}", file.display());
            return ExitCode::from(1);
        }
    }
    let dtbs = cfg.partitions.iter().filter(|p| p.linux.is_some()).count();
    println!(
        "ok: {} partitions; wrote {}/config.rs, summary.txt{}",
        cfg.partitions.len(),
        out.display(),
        match dtbs {
            0 => String::new(),
            n => format!(" and {n} device tree{}", if n == 1 { "" } else { "s" }),
        }
    );
    ExitCode::SUCCESS
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("septum-config: {msg}");
    ExitCode::from(1)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `request --key K [--key-id N] --seq N --id N --out F COMMAND...`.
fn request(args: &[&str]) -> ExitCode {
    let (mut key, mut key_id, mut seq, mut id, mut out) = (None, 0u32, None, None, None);
    let mut rest = args;
    while let [flag, value, tail @ ..] = rest {
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag} takes a number"))
        };
        match *flag {
            "--key" => key = Some(*value),
            "--key-id" => match num(value).map(u32::try_from) {
                Ok(Ok(n)) => key_id = n,
                _ => return usage_error("--key-id takes a number below 2^32"),
            },
            "--seq" => match num(value) {
                Ok(n) => seq = Some(n),
                Err(e) => return usage_error(&e),
            },
            "--id" => match num(value).map(u32::try_from) {
                Ok(Ok(n)) => id = Some(n),
                _ => return usage_error("--id takes a number below 2^32"),
            },
            "--out" => out = Some(*value),
            _ => break,
        }
        rest = tail;
    }
    let (Some(key), Some(seq), Some(id), Some(out)) = (key, seq, id, out) else {
        return usage_error("request needs --key, --seq, --id and --out");
    };
    let cmd = match septum_config::request::parse_command(rest) {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    let key = match septum_config::sign::read_private_key(Path::new(key)) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let slot = septum_config::request::sign(&key, key_id, id, seq, cmd);
    if let Err(e) = fs::write(out, slot) {
        return fail(format!("cannot write {out}: {e}"));
    }
    println!("wrote {out}: request {id}, key {key_id}, seq {seq}, {cmd:?}");
    ExitCode::SUCCESS
}

fn sign(file: &Path, key: &Path, out: &Path) -> ExitCode {
    let cfg = match load(file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let key = match septum_config::sign::read_private_key(key) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let manifest = match septum_config::sign::build_manifest(&cfg, &key) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    if fs::read(out).is_ok_and(|old| old == manifest) {
        return ExitCode::SUCCESS;
    }
    if let Err(e) = fs::write(out, &manifest) {
        return fail(format!("cannot write {}: {e}", out.display()));
    }
    println!(
        "signed: {} ({} bytes, security version {}, key {})",
        out.display(),
        manifest.len(),
        cfg.boot.security_version,
        septum_config::sign::key_id(&key.verifying_key().to_bytes())
    );
    ExitCode::SUCCESS
}

fn tamper(file: &str, image: &str, out: &str, how: &[&str]) -> ExitCode {
    use septum_config::tamper::Tamper;
    let t = match how {
        ["--flip", what] => match what.split_once('/') {
            Some((p, i)) => Tamper::FlipImage {
                partition: p.to_owned(),
                item: i.to_owned(),
            },
            None => return usage_error("--flip takes <partition>/<image>, e.g. rtos/rtos"),
        },
        ["--flip-signature"] => Tamper::FlipSignature,
        ["--resign", key, rest @ ..] => {
            let svn = match rest {
                [] => None,
                ["--svn", n] => match n.parse() {
                    Ok(n) => Some(n),
                    Err(_) => return usage_error("--svn takes a number"),
                },
                _ => return usage_error("wrong arguments"),
            };
            match septum_config::sign::read_private_key(Path::new(key)) {
                Ok(key) => Tamper::Resign { key, svn },
                Err(e) => return fail(e),
            }
        }
        ["--manifest", m] => match fs::read(m) {
            Ok(m) => Tamper::Manifest(m),
            Err(e) => return fail(format!("cannot read {m}: {e}")),
        },
        _ => {
            return usage_error("tamper: say how (--flip, --flip-signature, --resign, --manifest)")
        }
    };
    let cfg = match load(Path::new(file)) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut img = match fs::read(image) {
        Ok(i) => i,
        Err(e) => return fail(format!("cannot read {image}: {e}")),
    };
    match septum_config::tamper::apply(&mut img, &cfg, &t) {
        Ok(what) => match fs::write(out, &img) {
            Ok(()) => {
                println!("{out}: {what}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(format!("cannot write {out}: {e}")),
        },
        Err(e) => fail(e),
    }
}

fn trust(public: &Path, dir: &Path) -> ExitCode {
    let key = match septum_config::sign::read_public_key(public) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let text = septum_config::sign::trust_rs(&key, septum_config::sign::is_development_key(&key));
    let out = dir.join("trust.rs");
    if fs::read(&out).is_ok_and(|old| old == text.as_bytes()) {
        return ExitCode::SUCCESS;
    }
    if let Err(e) = fs::create_dir_all(dir).and_then(|()| fs::write(&out, text)) {
        return fail(format!("cannot write {}: {e}", out.display()));
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        ["rules"] => {
            for r in septum_config::Rule::ALL {
                println!("{}  {}", r.id(), r.summary());
            }
            ExitCode::SUCCESS
        }
        ["check", file] => match load(Path::new(file)) {
            Ok(cfg) => {
                println!("ok: {} partitions", cfg.partitions.len());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        ["table", file] => match load(Path::new(file)) {
            Ok(cfg) => {
                print!("{}", septum_config::partition_table(&cfg));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        ["generate", file, "--out", dir] | ["generate", "--out", dir, file] => {
            generate(Path::new(file), &PathBuf::from(dir))
        }
        ["digest", file] => match load(Path::new(file)) {
            Ok(cfg) => {
                println!("{}", hex(&septum_config::sign::config_digest(&cfg)));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        ["sign", file, "--key", key, "--out", out] => {
            sign(Path::new(file), Path::new(key), Path::new(out))
        }
        ["trust", public, "--out", dir] => trust(Path::new(public), Path::new(dir)),
        ["keygen", prefix] => {
            match septum_config::sign::keygen(
                Path::new(prefix),
                "generated by septum-config keygen",
            ) {
                Ok((private, public)) => {
                    println!(
                        "wrote {} (secret) and {}",
                        private.display(),
                        public.display()
                    );
                    match septum_config::sign::read_public_key(&public) {
                        Ok(key) => println!(
                            "key id {} (record it: the boot log of a build that trusts this key shows it)",
                            septum_config::sign::key_id(&key)
                        ),
                        Err(e) => return fail(e),
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        ["tamper", file, image, out, how @ ..] => tamper(file, image, out, how),
        ["request", rest @ ..] => request(rest),
        [] => usage_error("missing command"),
        [cmd, ..]
            if !matches!(
                *cmd,
                "check"
                    | "table"
                    | "generate"
                    | "rules"
                    | "digest"
                    | "sign"
                    | "trust"
                    | "keygen"
                    | "tamper"
                    | "request"
            ) =>
        {
            usage_error(&format!("unknown command `{cmd}`"))
        }
        _ => usage_error("wrong arguments"),
    }
}
