//! The `«` `»` marks memory search puts around query terms in a snippet, and finding those
//! terms again in a whole chunk, for highlighting.

/// Split text at `«` `»` marks: `(piece, marked)` in order, marks removed.
pub fn marked_spans(text: &str) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut current = String::new();
    let mut marked = false;
    for c in text.chars() {
        match c {
            '«' | '»' => {
                if !current.is_empty() {
                    out.push((std::mem::take(&mut current), marked));
                }
                marked = c == '«';
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push((current, marked));
    }
    out
}

/// The terms a snippet marks, lowercased, to find them again in the whole chunk.
pub fn marked_terms(snippet: &str) -> Vec<String> {
    let mut terms: Vec<String> = marked_spans(snippet)
        .into_iter()
        .filter(|(_, marked)| *marked)
        .map(|(t, _)| t.to_lowercase())
        .filter(|t| !t.trim().is_empty())
        .collect();
    terms.sort();
    terms.dedup();
    terms
}

/// Split text where any of `terms` occurs (case-insensitively): `(piece, is_term)`.
pub fn term_spans(text: &str, terms: &[String]) -> Vec<(String, bool)> {
    if terms.is_empty() {
        return vec![(text.to_string(), false)];
    }
    let chars: Vec<char> = text.chars().collect();
    let lower: Vec<char> = chars
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    let terms: Vec<Vec<char>> = terms.iter().map(|t| t.chars().collect()).collect();
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut plain = String::new();
    let mut i = 0;
    while i < chars.len() {
        let hit = terms
            .iter()
            .filter(|t| !t.is_empty() && lower[i..].starts_with(t))
            .map(Vec::len)
            .max();
        match hit {
            Some(len) => {
                if !plain.is_empty() {
                    out.push((std::mem::take(&mut plain), false));
                }
                out.push((chars[i..i + len].iter().collect(), true));
                i += len;
            }
            None => {
                plain.push(chars[i]);
                i += 1;
            }
        }
    }
    if !plain.is_empty() {
        out.push((plain, false));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_split_and_stripped() {
        assert_eq!(
            marked_spans("Ada «Lovelace» wrote «notes»."),
            vec![
                ("Ada ".to_string(), false),
                ("Lovelace".to_string(), true),
                (" wrote ".to_string(), false),
                ("notes".to_string(), true),
                (".".to_string(), false),
            ]
        );
        assert_eq!(marked_spans("no marks"), vec![("no marks".into(), false)]);
        assert_eq!(marked_terms("«Ada» and «ada» «x»"), vec!["ada", "x"]);
    }

    #[test]
    fn terms_are_found_again_in_the_whole_text() {
        let spans = term_spans("Ada met ADA.", &["ada".into()]);
        assert_eq!(
            spans,
            vec![
                ("Ada".to_string(), true),
                (" met ".to_string(), false),
                ("ADA".to_string(), true),
                (".".to_string(), false),
            ]
        );
    }
}
