//! Small formatting and path helpers shared by the validator, the code
//! generator and the partition table.

use std::path::{Component, Path, PathBuf};

/// `0x4000_0000`: hex grouped by four digits, as configurations write it.
pub fn hex(v: u128) -> String {
    let digits = format!("{v:x}");
    let mut out = String::with_capacity(digits.len() + digits.len() / 4 + 2);
    out.push_str("0x");
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 4 == 0 {
            out.push('_');
        }
        out.push(c);
    }
    out
}

/// `[start, end)` of a range given by base and size (the end may be 2^64).
pub fn range(base: u64, size: u64) -> String {
    format!(
        "[{}, {})",
        hex(base.into()),
        hex(u128::from(base) + u128::from(size))
    )
}

/// A size in the largest binary unit that divides it exactly.
pub fn size(v: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if v >= unit && v.is_multiple_of(unit) {
            return format!("{} {name}", v / unit);
        }
    }
    format!("{v} B")
}

/// Folds `.` and `..` without touching the file system, for messages about
/// paths that may not exist.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_groups_by_four() {
        assert_eq!(hex(0), "0x0");
        assert_eq!(hex(0x1000), "0x1000");
        assert_eq!(hex(0x2_0000), "0x2_0000");
        assert_eq!(hex(0x4000_0000), "0x4000_0000");
        assert_eq!(hex(1 << 64), "0x1_0000_0000_0000_0000");
        assert_eq!(range(0x1000, 0x1000), "[0x1000, 0x2000)");
    }

    #[test]
    fn sizes_and_paths() {
        assert_eq!(size(0x1000), "4 KiB");
        assert_eq!(size(0x800_0000), "128 MiB");
        assert_eq!(size(0x8000_0000), "2 GiB");
        assert_eq!(size(100), "100 B");
        assert_eq!(
            normalize(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
    }
}
