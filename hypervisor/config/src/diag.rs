//! Diagnostics: errors tied to a place in the TOML file, rendered like rustc's.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use super::rules::Rule;

/// A byte range in the TOML source.
pub type Span = Range<usize>;

/// Extra information attached to a diagnostic, optionally pointing elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub span: Option<Span>,
    pub message: String,
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub rule: Rule,
    /// The offending value or key; `None` when there is nothing to point at
    /// (the file could not be read, say), rendered as line 1, column 1.
    pub span: Option<Span>,
    pub message: String,
    pub notes: Vec<Note>,
}

impl Diagnostic {
    pub fn new(rule: Rule, span: impl Into<Option<Span>>, message: impl Into<String>) -> Self {
        Self {
            rule,
            span: span.into(),
            message: message.into(),
            notes: Vec::new(),
        }
    }

    /// Adds a note; with a span, the note names that place in the file.
    pub fn note(mut self, span: impl Into<Option<Span>>, message: impl Into<String>) -> Self {
        self.notes.push(Note {
            span: span.into(),
            message: message.into(),
        });
        self
    }
}

/// Every error found in one configuration file.
#[derive(Clone, Debug)]
pub struct Diagnostics {
    file: String,
    source: String,
    list: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Wraps the errors found in `source` (the text of `file`), sorted by position.
    pub fn new(file: &Path, source: &str, mut list: Vec<Diagnostic>) -> Self {
        // Stable sort: errors at one place keep the order the rules found them.
        list.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
        Self {
            file: file.display().to_string(),
            source: source.to_owned(),
            list,
        }
    }

    /// The errors, in source order.
    pub fn errors(&self) -> &[Diagnostic] {
        &self.list
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether some error breaks `rule`.
    pub fn has(&self, rule: Rule) -> bool {
        self.list.iter().any(|d| d.rule == rule)
    }

    /// The file name as shown in messages.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// 1-based line and column (in characters) of byte `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.source, offset.min(self.source.len()));
        let before = &self.source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// `file:line:col` of a diagnostic or note span.
    pub fn location(&self, span: Option<&Span>) -> String {
        let (line, col) = span.map_or((1, 1), |s| self.line_col(s.start));
        format!("{}:{line}:{col}", self.file)
    }

    fn render(&self, d: &Diagnostic, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "error[{}]: {}: {}",
            d.rule.id(),
            self.location(d.span.as_ref()),
            d.message
        )?;
        if let Some(span) = &d.span {
            self.render_snippet(span, f)?;
        }
        writeln!(f, "   = rule: {}", d.rule.summary())?;
        for n in &d.notes {
            match &n.span {
                Some(s) => writeln!(f, "   = note: {}: {}", self.location(Some(s)), n.message)?,
                None => writeln!(f, "   = note: {}", n.message)?,
            }
        }
        Ok(())
    }

    /// The source line holding the span's start, with carets under the span
    /// (up to the end of that line).
    fn render_snippet(&self, span: &Span, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.source.is_empty() {
            return Ok(());
        }
        let (line_no, col) = self.line_col(span.start);
        let Some(line) = self.source.lines().nth(line_no - 1) else {
            return Ok(());
        };
        let width = line_no.to_string().len();
        let pad = " ".repeat(width);
        // Keep tabs as tabs so that the carets line up under them.
        let lead: String = line
            .chars()
            .take(col - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let start = floor_char_boundary(&self.source, span.start.min(self.source.len()));
        let end = floor_char_boundary(&self.source, span.end.min(self.source.len()));
        let rest_of_line = line.chars().count().saturating_sub(col - 1);
        let carets = self.source[start..end.max(start)]
            .chars()
            .count()
            .clamp(1, rest_of_line.max(1));
        writeln!(f, "{pad} |")?;
        writeln!(f, "{line_no} | {line}")?;
        writeln!(f, "{pad} | {lead}{}", "^".repeat(carets))
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.list {
            self.render(d, f)?;
            writeln!(f)?;
        }
        let n = self.list.len();
        write!(
            f,
            "error: {}: {n} error{}",
            self.file,
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_characters() {
        let src = "a = 1\nbé = 0x10\n";
        let d = Diagnostics::new(Path::new("x.toml"), src, Vec::new());
        assert_eq!(d.line_col(0), (1, 1));
        assert_eq!(d.line_col(6), (2, 1));
        // "bé = " is 6 bytes but 5 characters.
        assert_eq!(d.line_col(12), (2, 6));
        assert_eq!(d.line_col(src.len()), (3, 1));
    }

    #[test]
    fn renders_like_rustc() {
        let src = "[platform]\ncpus = 99\n";
        let diag = Diagnostic::new(Rule::PlatformCpus, 18..20, "99 cores").note(0..10, "here");
        let d = Diagnostics::new(Path::new("cfg/x.toml"), src, vec![diag]);
        let text = d.to_string();
        let expected =
            "error[CFG-01]: cfg/x.toml:2:8: 99 cores\n  |\n2 | cpus = 99\n  |        ^^\n";
        assert!(text.starts_with(expected), "{text}");
        assert!(text.contains("   = note: cfg/x.toml:1:1: here\n"), "{text}");
        assert!(text.ends_with("error: cfg/x.toml: 1 error"), "{text}");
    }

    #[test]
    fn sorted_by_position() {
        let src = "a = 1\nb = 2\n";
        let list = vec![
            Diagnostic::new(Rule::CoreExists, 10..11, "second"),
            Diagnostic::new(Rule::CoreNone, 4..5, "first"),
        ];
        let d = Diagnostics::new(Path::new("x"), src, list);
        assert_eq!(d.errors()[0].message, "first");
        assert!(d.has(Rule::CoreExists) && !d.has(Rule::Parse));
    }
}
