//! The `send_response` text of SQL result sets, written the way Packetbeat writes it
//! (its `DumpInCSVFormat`: Go's `encoding/csv` writer after escaping line breaks):
//! the column names on a first line, then one line per row, every line ended by
//! `\n`, fields separated by `,`.
//!
//! Before quoting, a newline in a field becomes the two characters `\n`; in row
//! values (not in column names) a carriage return becomes `\r` likewise. A field is
//! then quoted when it is not empty and holds a `,`, a `"`, a carriage return or a
//! newline, starts with a white-space character, or is exactly `\.`; inside quotes a
//! `"` is doubled.

/// Appends one record to `out`: `fields` joined by `,`, ended by `\n`. `row` selects
/// the escaping of row values (carriage returns too) over that of column names.
pub fn push_record<'a, I>(out: &mut String, fields: I, row: bool)
where
    I: IntoIterator<Item = &'a str>,
{
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_field(out, f, row);
    }
    out.push('\n');
}

/// Appends one field (no separator, no line end) to `out`, escaped and quoted as in
/// [`push_record`], for writers that build a record value by value.
pub fn push_field(out: &mut String, f: &str, row: bool) {
    let escaped = |c: char| c == '\n' || (row && c == '\r');
    if !needs_quotes(f, row) {
        for c in f.chars() {
            push_escaped(out, c, row);
        }
        return;
    }
    out.push('"');
    for c in f.chars() {
        if c == '"' {
            out.push_str("\"\"");
        } else if escaped(c) {
            push_escaped(out, c, row);
        } else {
            out.push(c);
        }
    }
    out.push('"');
}

fn push_escaped(out: &mut String, c: char, row: bool) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' if row => out.push_str("\\r"),
        c => out.push(c),
    }
}

/// Whether the field, once its line breaks are escaped, must be quoted.
fn needs_quotes(f: &str, row: bool) -> bool {
    if f.is_empty() {
        return false;
    }
    if f == "\\." {
        return true;
    }
    // `\n` (and in rows `\r`) are escaped before this check, so only what remains
    // counts: a raw carriage return in a column name still forces quotes.
    if f.bytes()
        .any(|b| b == b',' || b == b'"' || (!row && b == b'\r'))
    {
        return true;
    }
    // The first character after escaping: an escaped line break starts with `\`.
    match f.chars().next() {
        Some('\n') => false,
        Some('\r') if row => false,
        Some(c) => c.is_whitespace(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(fields: &[&str], row: bool) -> String {
        let mut s = String::new();
        push_record(&mut s, fields.iter().copied(), row);
        s
    }

    #[test]
    fn records_as_packetbeat_writes_them() {
        assert_eq!(rec(&["id", "name"], false), "id,name\n");
        assert_eq!(rec(&["1", "a"], true), "1,a\n");
        assert_eq!(rec(&[], true), "\n");
        assert_eq!(rec(&[""], true), "\n");
        assert_eq!(rec(&["", ""], true), ",\n");
        assert_eq!(rec(&["a,b", "x"], true), "\"a,b\",x\n");
        assert_eq!(rec(&["say \"hi\""], true), "\"say \"\"hi\"\"\"\n");
        assert_eq!(rec(&["two\nlines"], true), "two\\nlines\n");
        assert_eq!(rec(&["cr\rhere"], true), "cr\\rhere\n");
        assert_eq!(rec(&["a,\nb"], true), "\"a,\\nb\"\n");
        assert_eq!(rec(&[" lead"], true), "\" lead\"\n");
        assert_eq!(rec(&["\tlead"], true), "\"\tlead\"\n");
        assert_eq!(rec(&["\u{a0}nbsp"], true), "\"\u{a0}nbsp\"\n");
        assert_eq!(rec(&["\nlead"], true), "\\nlead\n");
        assert_eq!(rec(&["\\."], true), "\"\\.\"\n");
        assert_eq!(rec(&["trail "], true), "trail \n");
        assert_eq!(rec(&["ünï €"], true), "ünï €\n");
        // Column names: only newlines are escaped.
        assert_eq!(rec(&["a\rb"], false), "\"a\rb\"\n");
        assert_eq!(rec(&["a\nb"], false), "a\\nb\n");
        assert_eq!(rec(&["\rb"], false), "\"\rb\"\n");
    }
}
