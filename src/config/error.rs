//! Configuration errors: every message names its source (file or `-E` argument),
//! the line and column when known, and the dotted key path.

use std::fmt;

/// A configuration that cannot be used.
///
/// Displayed as `file:line:column: key.path: message` (parts that are unknown
/// are left out), e.g.
/// `wirebeat.yml:7:12: protocols.http.ports: expected a list of port numbers, found string "eighty"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name, `-E '<arg>'`, or `<defaults>`.
    pub origin: String,
    /// 1-based line, when the error points into a file.
    pub line: Option<u64>,
    /// 1-based column, when the error points into a file.
    pub column: Option<u64>,
    /// Dotted key path in the canonical layout (may be empty).
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(
        origin: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            origin: origin.into(),
            line: None,
            column: None,
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        f.write_str(": ")?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_everything() {
        let mut e = ConfigError::new("wirebeat.yml", "protocols.http.ports", "bad");
        e.line = Some(7);
        e.column = Some(12);
        assert_eq!(
            e.to_string(),
            "wirebeat.yml:7:12: protocols.http.ports: bad"
        );
        let e = ConfigError::new("-E 'x=1'", "", "bad");
        assert_eq!(e.to_string(), "-E 'x=1': bad");
    }
}
