//! TOML text to [`schema::File`], with serde's errors turned into diagnostics.

use super::diag::Diagnostic;
use super::rules::Rule;
use super::schema;

pub fn parse(text: &str) -> Result<schema::File, Diagnostic> {
    toml::from_str(text).map_err(|e| {
        // toml's messages may span lines ("invalid table header\nexpected ...").
        let message = e.message().trim().replace('\n', "; ");
        Diagnostic::new(Rule::Parse, e.span(), message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_spans() {
        let text = "[platform]\nboard = \"qemu-vir\"\n";
        let d = parse(text).unwrap_err();
        assert_eq!(d.rule, Rule::Parse);
        assert_eq!(&text[d.span.unwrap()], "\"qemu-vir\"");
        assert!(
            d.message.contains("unknown variant `qemu-vir`"),
            "{}",
            d.message
        );

        let d = parse("[platform\n").unwrap_err();
        assert!(!d.message.contains('\n'));
        assert!(d.span.is_some());
    }
}
