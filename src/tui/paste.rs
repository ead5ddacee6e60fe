//! Pasted text, made safe to keep in a text field and to draw.
//!
//! With bracketed paste on, the terminal hands a paste over whole ([`crossterm::event::Event::Paste`])
//! instead of as keys, so a newline in it no longer presses Enter. What it holds is whatever
//! was copied: CR/LF line ends, tabs, and possibly terminal escape sequences (copied from a
//! coloured log, or planted on a web page). A field keeps text only: escape sequences are
//! dropped whole and every other control character is removed, so nothing pasted can reach
//! the terminal as a command when the field is drawn.

/// Spaces a pasted tab becomes: Tab is not text in these fields (it completes in the message
/// box), and a raw tab would be drawn at a width the layout cannot know.
const TAB: &str = "    ";

/// Text for a multi-line field (the message box): line ends become `\n`, tabs spaces, and
/// escape sequences and other control characters are removed.
pub fn multi_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                // CRLF and a lone CR (old Mac, some terminals) are one line break.
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\n' => out.push('\n'),
            '\t' => out.push_str(TAB),
            '\u{1b}' => skip_escape(&mut chars),
            // The 8-bit CSI and OSC introducers start a sequence just as ESC [ and ESC ] do.
            '\u{9b}' => skip_until_final(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Text for a one-line field (prompts, the palette, the memory search): as [`multi_line`],
/// with surrounding line breaks trimmed and each inner one a space.
pub fn single_line(text: &str) -> String {
    multi_line(text)
        .trim_matches('\n')
        .split('\n')
        .collect::<Vec<_>>()
        .join(" ")
}

/// After an ESC: skip the rest of the sequence it starts (ECMA-48 forms: CSI, OSC and the
/// other string controls, or a single following character).
fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.next() {
        Some('[') => skip_until_final(chars),
        Some(']' | 'P' | 'X' | '^' | '_') => skip_string(chars),
        // Intermediate bytes (ESC ( B, ESC # 8): up to and including the final byte.
        Some(c) if (' '..='/').contains(&c) => {
            for c in chars.by_ref() {
                if !(' '..='/').contains(&c) {
                    break;
                }
            }
        }
        // ESC and one character (ESC c, ESC 7, ...), or a lone ESC at the end.
        _ => {}
    }
}

/// A control sequence: parameters and intermediates up to a final byte in `@`..=`~`.
fn skip_until_final(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('@'..='~').contains(&c) {
            return;
        }
    }
}

/// A string control (OSC, DCS, ...): up to BEL, ST (ESC \) or the 8-bit ST.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

/// `text` cut to at most `max_bytes`, on a character boundary.
pub fn truncate_bytes(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_become_newlines_and_tabs_spaces() {
        assert_eq!(multi_line("a\r\nb\rc\nd\te"), "a\nb\nc\nd    e");
    }

    #[test]
    fn escape_sequences_are_dropped_whole() {
        let pasted = "red \u{1b}[31mtext\u{1b}[0m, \u{1b}]0;owned\u{7}title, \
                      \u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\, clear\u{1b}[2J\u{1b}c, \
                      8-bit \u{9b}1;2Hcsi, dcs\u{1b}Pq#0\u{1b}\\, charset\u{1b}(B, bell\u{7}, del\u{7f}";
        let kept = multi_line(pasted);
        assert_eq!(
            kept,
            "red text, title, link, clear, 8-bit csi, dcs, charset, bell, del"
        );
        assert!(!kept.chars().any(char::is_control));
    }

    #[test]
    fn a_cut_sequence_at_the_end_takes_nothing_after_it() {
        assert_eq!(multi_line("ok\u{1b}["), "ok");
        assert_eq!(multi_line("ok\u{1b}]0;never closed"), "ok");
        assert_eq!(multi_line("ok\u{1b}"), "ok");
    }

    #[test]
    fn single_line_fields_get_spaces_for_inner_breaks() {
        assert_eq!(
            single_line("first\r\nsecond\nthird\n"),
            "first second third"
        );
        assert_eq!(single_line("\nword\n"), "word");
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_bytes("aé", 2), "a");
        assert_eq!(truncate_bytes("abc", 5), "abc");
    }
}
