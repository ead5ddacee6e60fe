//! Text before speech: long replies are spoken in pieces cut where a sentence ends, so the
//! first audio comes quickly and no synthesizer gets a wall of text.

/// Split `text` into pieces of at most `max_chars` characters, at sentence ends when one is
/// within reach, else at a space, else anywhere (one very long word).
pub fn segments(text: &str, max_chars: usize) -> Vec<String> {
    let max_chars = max_chars.max(1);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while !rest.is_empty() {
        if rest.chars().count() <= max_chars {
            out.push(rest.to_string());
            break;
        }
        let window_end = rest
            .char_indices()
            .nth(max_chars)
            .map_or(rest.len(), |(i, _)| i);
        let window = &rest[..window_end];
        let cut = sentence_end(window)
            .or_else(|| window.rfind(' ').filter(|&i| i > 0))
            .unwrap_or(window_end);
        let (piece, tail) = rest.split_at(cut);
        let piece = piece.trim();
        if !piece.is_empty() {
            out.push(piece.to_string());
        }
        rest = tail.trim_start();
    }
    out
}

/// The byte offset just past the last sentence end (`.`, `!`, `?`, `…` or a newline-like
/// break followed by a space) in `window`, if any.
fn sentence_end(window: &str) -> Option<usize> {
    let bytes = window.as_bytes();
    window
        .char_indices()
        .filter(|&(i, c)| {
            matches!(c, '.' | '!' | '?' | '…' | ';')
                && bytes.get(i + c.len_utf8()).is_some_and(|b| *b == b' ')
        })
        .map(|(i, c)| i + c.len_utf8())
        .next_back()
}

/// Pieces to speak one after another: the first sentence alone, so the first audio waits for
/// one sentence only, then pieces of at most `max_chars` as [`segments`] cuts them.
pub fn speech_pieces(text: &str, max_chars: usize) -> Vec<String> {
    let max_chars = max_chars.max(1);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let window_end = text
        .char_indices()
        .nth(max_chars)
        .map_or(text.len(), |(i, _)| i);
    let Some(cut) = first_sentence_end(&text[..window_end]) else {
        return segments(&text, max_chars);
    };
    let (first, rest) = text.split_at(cut);
    let mut out = vec![first.trim().to_string()];
    out.extend(segments(rest, max_chars));
    out
}

/// Like [`sentence_end`], the first one instead of the last.
fn first_sentence_end(window: &str) -> Option<usize> {
    let bytes = window.as_bytes();
    window
        .char_indices()
        .find(|&(i, c)| {
            matches!(c, '.' | '!' | '?' | '…' | ';')
                && bytes.get(i + c.len_utf8()).is_some_and(|b| *b == b' ')
        })
        .map(|(i, c)| i + c.len_utf8())
}

/// `text` cut to at most `max_chars` at a sentence end (or a space), for faces that speak
/// whatever the last reply was.
pub fn clip(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    segments(text, max_chars)
        .into_iter()
        .next()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_sentence_ends_within_the_limit() {
        let text = "One two three. Four five six! Seven eight nine? Ten.";
        let parts = segments(text, 32);
        assert_eq!(
            parts,
            vec!["One two three. Four five six!", "Seven eight nine? Ten."]
        );
        assert!(parts.iter().all(|p| p.chars().count() <= 32));
    }

    #[test]
    fn no_sentence_end_cuts_at_a_space_and_long_words_anywhere() {
        assert_eq!(segments("aaa bbb ccc", 8), vec!["aaa bbb", "ccc"]);
        assert_eq!(segments("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        // Multi-byte characters are counted as characters and never split.
        assert_eq!(segments("ééééé", 2), vec!["éé", "éé", "é"]);
    }

    #[test]
    fn speech_starts_with_the_first_sentence_alone() {
        let text = "Done. The build passed and the tests ran. Next I will tag the release.";
        assert_eq!(
            speech_pieces(text, 48),
            vec![
                "Done.",
                "The build passed and the tests ran.",
                "Next I will tag the release."
            ]
        );
        // No sentence end within reach: pieces as `segments` cuts them.
        assert_eq!(speech_pieces("aaa bbb ccc", 8), vec!["aaa bbb", "ccc"]);
        assert_eq!(
            speech_pieces("One sentence only.", 400),
            vec!["One sentence only."]
        );
        assert!(speech_pieces("  ", 10).is_empty());
    }

    #[test]
    fn whitespace_is_collapsed_and_short_text_is_one_piece() {
        assert_eq!(segments("  hi\n\nthere  ", 100), vec!["hi there"]);
        assert!(segments("   ", 10).is_empty());
        assert_eq!(clip("First. Second one here.", 10), "First.");
    }
}
