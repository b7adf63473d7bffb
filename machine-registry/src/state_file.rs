//! Machine state files: machined's environment-file format (written atomically by
//! [`AtomicDir`](crate::atomic_dir::AtomicDir)).
//!
//! `/run/systemd/machines/NAME` is read by libsystemd (`sd_machine_get_class()`,
//! `sd_machine_get_ifindices()`, `sd_get_machine_names()`), so the format follows
//! `env_file_fputs_assignment()`: a value is double-quoted when it contains whitespace, a
//! control character or a shell metacharacter, and inside quotes `"`, `\`, `` ` `` and `$` are
//! backslash-escaped.

use std::collections::HashMap;

const HEADER: &str = "# This is private data. Do not parse.\n";

/// Serializes `KEY=VALUE` pairs; `None` values are left out.
pub fn format(entries: &[(&str, Option<String>)]) -> String {
    let mut text = String::from(HEADER);
    for (key, value) in entries {
        if let Some(value) = value {
            text.push_str(key);
            text.push('=');
            push_value(&mut text, value);
            text.push('\n');
        }
    }
    text
}

fn needs_quotes(value: &str) -> bool {
    value.chars().any(|c| {
        c.is_control()
            || matches!(
                c,
                ' ' | '"'
                    | '\\'
                    | '`'
                    | '$'
                    | '*'
                    | '?'
                    | '['
                    | '\''
                    | '('
                    | ')'
                    | '<'
                    | '>'
                    | '|'
                    | '&'
                    | ';'
                    | '!'
            )
    })
}

fn push_value(text: &mut String, value: &str) {
    if !needs_quotes(value) {
        text.push_str(value);
        return;
    }
    text.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '`' | '$') {
            text.push('\\');
        }
        text.push(c);
    }
    text.push('"');
}

/// Parses an environment file into a map (a later assignment of a key wins).
pub fn parse(text: &str) -> HashMap<String, String> {
    parse_pairs(text).into_iter().collect()
}

/// Parses an environment file in order: `KEY=VALUE` lines, `#` and `;` comments, double- or
/// single-quoted values (which may span lines), backslash escapes. Unknown keys are kept; the
/// caller ignores what it does not know.
pub fn parse_pairs(text: &str) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            None => return entries,
            Some('#' | ';') => {
                chars.by_ref().find(|&c| c == '\n');
                continue;
            }
            Some(_) => {}
        }
        let mut key = String::new();
        let mut has_value = false;
        for c in chars.by_ref() {
            match c {
                '=' => {
                    has_value = true;
                    break;
                }
                '\n' => break,
                c => key.push(c),
            }
        }
        if has_value {
            let value = parse_value(&mut chars);
            entries.push((key.trim().to_owned(), value));
        }
    }
}

fn parse_value(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    let mut value = String::new();
    let mut quote = None;
    // The length of `value` without its trailing unquoted, unescaped whitespace.
    let mut kept = 0;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\n') => break,
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                if let Some(escaped) = chars.next()
                    && escaped != '\n'
                {
                    value.push(escaped);
                    kept = value.len();
                }
            }
            (None, c) if is_blank(c) => value.push(c),
            (_, c) => {
                value.push(c);
                kept = value.len();
            }
        }
    }
    value.truncate(kept);
    value
}

/// What systemd trims around unquoted values (its `WHITESPACE`; a newline ends the line).
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_only_when_needed_and_round_trip() {
        let awkward = "a \"quoted\" $HOME `x` \\ path\nline two";
        let text = format(&[
            ("NAME", Some("demo".into())),
            ("ROOT", Some("/var/lib/machines/demo".into())),
            ("SERVICE", Some(awkward.into())),
            ("NETIF", Some("5 7".into())),
            ("ID", None),
        ]);
        assert!(text.starts_with(HEADER));
        assert!(text.contains("\nNAME=demo\n"));
        assert!(text.contains("\nNETIF=\"5 7\"\n"));
        assert!(!text.contains("ID="));
        let parsed = parse(&text);
        assert_eq!(parsed["NAME"], "demo");
        assert_eq!(parsed["ROOT"], "/var/lib/machines/demo");
        assert_eq!(parsed["SERVICE"], awkward);
        assert_eq!(parsed["NETIF"], "5 7");
        assert_eq!(parsed.len(), 4);
    }

    #[test]
    fn machined_files_parse() {
        let machined = "# This is private data. Do not parse.\nNAME=test1\nSCOPE=machine-test1.scope\n\
                        LEADER=1234\nCLASS=container\nNETIF=\" 5 7\"\nREALTIME=1700000000000000\n";
        let parsed = parse(machined);
        assert_eq!(parsed["SCOPE"], "machine-test1.scope");
        assert_eq!(parsed["NETIF"], " 5 7");
        assert_eq!(parsed["REALTIME"], "1700000000000000");
    }

    /// Found by fuzzing (`state_file`): a quoted value lost its trailing whitespace, and an
    /// unquoted one its trailing Unicode whitespace (such as U+00A0), so a machine's
    /// `SERVICE` or `ROOT` came back changed after a restart.
    #[test]
    fn fuzz_trailing_whitespace_survives_a_round_trip() {
        for value in ["a ", "a b\n", "\t", "/srv/x\u{a0}", "x\u{2028}"] {
            let text = format(&[("SERVICE", Some(value.into()))]);
            assert_eq!(parse(&text)["SERVICE"], value, "{text:?}");
        }
        let parsed = parse("A=x  \nB=\"y \"  \nC=z\\ \nD=\"w\n");
        assert_eq!(
            (&*parsed["A"], &*parsed["B"], &*parsed["C"], &*parsed["D"]),
            ("x", "y ", "z ", "w\n")
        );
    }
}
