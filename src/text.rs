//! Text a caller sent, made safe to show back (in an error, a log line
//! or an audit entry): below every other module, so that any may use it.

/// Text a caller sent, made safe to echo in a message, a log line or an
/// audit entry: quoted, control and non-ASCII characters escaped, and cut
/// after 100 characters.
pub fn shown(input: &str) -> String {
    const MAX: usize = 100;
    let mut out = String::from("\"");
    for (i, c) in input.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_text_is_escaped_and_cut() {
        assert_eq!(shown("example.com"), "\"example.com\"");
        assert_eq!(
            shown("a\nb\u{1b}[31m\"é"),
            "\"a\\nb\\u{1b}[31m\\\"\\u{e9}\""
        );
        let long = "x".repeat(500);
        assert_eq!(shown(&long).chars().count(), 100 + 3);
    }
}
