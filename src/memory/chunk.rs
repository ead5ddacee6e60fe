//! Markdown-aware chunking, line by line, so a file of any size is chunked in bounded memory.
//!
//! A chunk never spans two sections: a heading closes the chunk before it, and every chunk
//! carries the headings above it as context. Within a section, blocks (paragraphs, lists,
//! fenced code) are packed up to the token budget; consecutive chunks share about
//! `overlap` tokens so a sentence cut at a boundary is still found whole in one of them.
//! Tokens are counted as whitespace-separated words, a close enough proxy for ~400 tokens.
//!
//! An embedder that reads a bounded window (MiniLM: 256 word pieces) gives a [`TokenFit`]:
//! chunks are then also cut so that heading path and text fit that window in the embedder's
//! own tokens, because whatever lies past the window never reaches the chunk's vector.

use std::collections::VecDeque;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct RawChunk {
    /// Outermost heading first.
    pub headings: Vec<String>,
    pub text: String,
    /// 1-based, inclusive.
    pub line_start: u32,
    pub line_end: u32,
}

impl RawChunk {
    pub fn heading_path(&self) -> Option<String> {
        (!self.headings.is_empty()).then(|| self.headings.join(" › "))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ChunkOptions {
    pub tokens: usize,
    pub overlap: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        Self {
            tokens: 400,
            overlap: 80,
        }
    }
}

/// An embedder's window: at most `window` tokens as `count` counts them reach a vector.
/// `count` must be additive over whitespace-joined text (WordPiece is: it never merges across
/// whitespace), so a chunk's count is the sum of its lines'.
#[derive(Clone)]
pub struct TokenFit {
    pub window: usize,
    pub count: Arc<dyn Fn(&str) -> usize + Send + Sync>,
}

/// One line of the current chunk, with its word count and its embedder token count.
struct Piece {
    line: u32,
    text: String,
    words: usize,
    tokens: usize,
}

pub struct Chunker {
    options: ChunkOptions,
    fit: Option<TokenFit>,
    /// Embedder tokens the body of a chunk may use under the current headings.
    token_budget: usize,
    headings: Vec<(usize, String)>,
    pieces: VecDeque<Piece>,
    words: usize,
    tokens: usize,
    /// Pieces carried over from the previous chunk as overlap; a chunk made only of those
    /// says nothing new and is not emitted.
    carried: usize,
    in_fence: Option<String>,
}

impl Chunker {
    pub fn new(options: ChunkOptions) -> Self {
        Self::fitted(options, None)
    }

    /// A chunker whose chunks also fit `fit`'s window (see the module docs).
    pub fn fitted(options: ChunkOptions, fit: Option<TokenFit>) -> Self {
        let tokens = options.tokens.max(8);
        let mut chunker = Self {
            options: ChunkOptions {
                tokens,
                overlap: options.overlap.min(tokens / 2),
            },
            fit,
            token_budget: usize::MAX,
            headings: Vec::new(),
            pieces: VecDeque::new(),
            words: 0,
            tokens: 0,
            carried: 0,
            in_fence: None,
        };
        chunker.update_token_budget();
        chunker
    }

    /// The heading path is embedded with every chunk (`heading\ntext`), so it takes its share
    /// of the window; a very deep path still leaves the body half of it.
    fn update_token_budget(&mut self) {
        self.token_budget = match &self.fit {
            None => usize::MAX,
            Some(fit) => {
                let path: Vec<&str> = self.headings.iter().map(|(_, h)| h.as_str()).collect();
                let heading = if path.is_empty() {
                    0
                } else {
                    (fit.count)(&path.join(" › "))
                };
                fit.window
                    .saturating_sub(heading)
                    .max(fit.window / 2)
                    .max(1)
            }
        };
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.fit.as_ref().map_or(0, |fit| (fit.count)(text))
    }

    /// Feed the next line (1-based `line_no`, without its newline); returns chunks completed.
    pub fn push_line(&mut self, line_no: u32, line: &str) -> Vec<RawChunk> {
        let mut out = Vec::new();
        let trimmed = line.trim_start();
        if let Some(fence) = &self.in_fence {
            if trimmed.starts_with(fence.as_str()) {
                self.in_fence = None;
            }
        } else if let Some(fence) = fence_marker(trimmed) {
            self.in_fence = Some(fence);
        } else if let Some((level, title)) = heading(line) {
            out.extend(self.flush(false));
            self.headings.retain(|(l, _)| *l < level);
            self.headings.push((level, title));
            self.update_token_budget();
            return out;
        }
        // A single line longer than the budget is cut at word boundaries.
        let mut rest = line;
        loop {
            let (piece, remainder, tokens) = self.next_piece(rest);
            let words = piece.split_whitespace().count();
            let over =
                |c: &Self| c.words + words > c.options.tokens || c.tokens + tokens > c.token_budget;
            if over(self) && self.pieces.len() > self.carried {
                out.extend(self.flush(true));
            }
            // Overlap is a convenience; the window is not: drop carried lines that would
            // push this one past it.
            while self.carried > 0 && self.tokens + tokens > self.token_budget {
                if let Some(dropped) = self.pieces.pop_front() {
                    self.words -= dropped.words;
                    self.tokens -= dropped.tokens;
                }
                self.carried -= 1;
            }
            self.words += words;
            self.tokens += tokens;
            self.pieces.push_back(Piece {
                line: line_no,
                text: piece.to_string(),
                words,
                tokens,
            });
            match remainder {
                Some(r) => rest = r,
                None => break,
            }
        }
        // Blank lines end a block: a good place to cut once the budget is nearly used.
        if line.trim().is_empty()
            && (self.words * 10 >= self.options.tokens * 9
                || self.tokens.saturating_mul(10) >= self.token_budget.saturating_mul(9))
        {
            out.extend(self.flush(true));
        }
        out
    }

    /// The longest prefix of `rest` within the word budget and, with a fit, the token budget;
    /// the rest of the line; and the prefix's token count. A single word longer than the
    /// window is kept whole (its vector is then truncated, which `memory status` counts).
    fn next_piece<'l>(&self, rest: &'l str) -> (&'l str, Option<&'l str>, usize) {
        let mut max_words = self.options.tokens;
        loop {
            let (piece, remainder) = split_words(rest, max_words);
            let tokens = self.count_tokens(piece);
            let words = piece.split_whitespace().count();
            if tokens <= self.token_budget || words <= 1 {
                return (piece, remainder, tokens);
            }
            // Shrink in proportion (words vary in pieces), at least by one word.
            max_words = (words * self.token_budget / tokens).clamp(1, words - 1);
        }
    }

    /// The last chunk, if anything is left.
    pub fn finish(&mut self) -> Option<RawChunk> {
        self.flush(false)
    }

    fn flush(&mut self, keep_overlap: bool) -> Option<RawChunk> {
        // Blank lines after the overlap add no words: such a chunk would repeat the last one.
        let has_new = self.pieces.iter().skip(self.carried).any(|p| p.words > 0);
        let chunk = has_new.then(|| self.current()).flatten();
        if keep_overlap {
            let mut kept = 0;
            let mut kept_tokens = 0;
            let mut keep_from = self.pieces.len();
            // With a window, overlap takes at most half of it, so each chunk says mostly
            // new things.
            while keep_from > 0
                && kept < self.options.overlap
                && kept_tokens + self.pieces[keep_from - 1].tokens <= self.token_budget / 2
            {
                keep_from -= 1;
                kept += self.pieces[keep_from].words;
                kept_tokens += self.pieces[keep_from].tokens;
            }
            // Never carry the whole chunk over: that would repeat it forever.
            keep_from = keep_from.max(1).min(self.pieces.len());
            self.pieces.drain(..keep_from);
            self.carried = self.pieces.len();
            self.words = self.pieces.iter().map(|p| p.words).sum();
            self.tokens = self.pieces.iter().map(|p| p.tokens).sum();
        } else {
            self.pieces.clear();
            self.carried = 0;
            self.words = 0;
            self.tokens = 0;
        }
        chunk
    }

    fn current(&self) -> Option<RawChunk> {
        let first = self.pieces.iter().position(|p| p.words > 0)?;
        let last = self.pieces.iter().rposition(|p| p.words > 0)?;
        let mut text = String::new();
        let mut previous_line = None;
        for piece in self.pieces.range(first..=last) {
            if previous_line.is_some() {
                text.push(if previous_line == Some(piece.line) {
                    ' '
                } else {
                    '\n'
                });
            }
            text.push_str(&piece.text);
            previous_line = Some(piece.line);
        }
        Some(RawChunk {
            headings: self.headings.iter().map(|(_, h)| h.clone()).collect(),
            text,
            line_start: self.pieces[first].line,
            line_end: self.pieces[last].line,
        })
    }
}

/// Chunk a whole string; for notes and tests (files go through [`Chunker`] line by line).
pub fn chunk_text(text: &str, options: ChunkOptions) -> Vec<RawChunk> {
    chunk_text_fitted(text, options, None)
}

/// [`chunk_text`] with chunks that also fit an embedder's window.
pub fn chunk_text_fitted(
    text: &str,
    options: ChunkOptions,
    fit: Option<TokenFit>,
) -> Vec<RawChunk> {
    let mut chunker = Chunker::fitted(options, fit);
    let mut chunks = Vec::new();
    for (i, line) in text.lines().enumerate() {
        chunks.extend(chunker.push_line(u32::try_from(i + 1).unwrap_or(u32::MAX), line));
    }
    chunks.extend(chunker.finish());
    chunks
}

fn heading(line: &str) -> Option<(usize, String)> {
    let level = line.bytes().take_while(|b| *b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &line[level..];
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None; // "#tag", not a heading
    }
    let title = rest.trim().trim_end_matches('#').trim();
    (!title.is_empty()).then(|| (level, title.to_string()))
}

fn fence_marker(trimmed: &str) -> Option<String> {
    ["```", "~~~"]
        .into_iter()
        .find(|f| trimmed.starts_with(f))
        .map(str::to_string)
}

/// The longest prefix of `line` with at most `max_words` words, and the rest if any.
fn split_words(line: &str, max_words: usize) -> (&str, Option<&str>) {
    let mut words = 0;
    let mut in_word = false;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            in_word = false;
        } else if !in_word {
            in_word = true;
            words += 1;
            if words > max_words {
                return (line[..i].trim_end(), Some(&line[i..]));
            }
        }
    }
    (line, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(n: usize, prefix: &str) -> String {
        (0..n)
            .map(|i| format!("{prefix}{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn headings_become_context_and_split_sections() {
        let text = "# Projects\nintro line\n## Alpha\nalpha details\n## Beta\nbeta details\n";
        let chunks = chunk_text(text, ChunkOptions::default());
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0].heading_path().as_deref(), Some("Projects"));
        assert_eq!(
            chunks[1].heading_path().as_deref(),
            Some("Projects › Alpha")
        );
        assert_eq!(chunks[1].text, "alpha details");
        assert_eq!((chunks[1].line_start, chunks[1].line_end), (4, 4));
        assert_eq!(chunks[2].heading_path().as_deref(), Some("Projects › Beta"));
    }

    #[test]
    fn long_sections_are_split_with_overlap() {
        let lines: Vec<String> = (0..100).map(|i| words(10, &format!("l{i}w"))).collect();
        let chunks = chunk_text(
            &lines.join("\n"),
            ChunkOptions {
                tokens: 100,
                overlap: 20,
            },
        );
        assert!(chunks.len() >= 10, "{}", chunks.len());
        for pair in chunks.windows(2) {
            let count = pair[0].text.split_whitespace().count();
            assert!(count <= 100, "{count}");
            // The next chunk starts inside the previous one: the overlap.
            assert!(pair[1].line_start <= pair[0].line_end);
            assert!(pair[1].line_start > pair[0].line_start);
        }
        assert_eq!(chunks.last().map(|c| c.line_end), Some(100));
    }

    #[test]
    fn a_huge_single_line_is_cut_at_words() {
        let chunks = chunk_text(
            &words(1000, "w"),
            ChunkOptions {
                tokens: 100,
                overlap: 10,
            },
        );
        assert!(chunks.len() >= 10);
        assert!(
            chunks
                .iter()
                .all(|c| c.text.split_whitespace().count() <= 100)
        );
        assert!(chunks.iter().all(|c| (c.line_start, c.line_end) == (1, 1)));
        assert!(chunks.last().is_some_and(|c| c.text.ends_with("w999")));
    }

    #[test]
    fn hash_tags_and_fenced_hashes_are_not_headings() {
        let text = "#rust is fun\n```sh\n# a comment\n```\nafter";
        let chunks = chunk_text(text, ChunkOptions::default());
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].headings.is_empty());
        assert!(chunks[0].text.contains("# a comment"));
    }

    /// Found by the `markdown_chunk` fuzz target: the overlap carried past a blank line, then
    /// followed by nothing but another blank line, came out again as a chunk of its own.
    #[test]
    fn overlap_followed_by_blank_lines_is_not_repeated() {
        // 15 of 16 words, then a blank line: a cut, keeping the second line as overlap.
        let text = format!("{}\n{}\n\n\n## Next\nafter", words(8, "a"), words(7, "b"));
        let options = ChunkOptions {
            tokens: 16,
            overlap: 4,
        };
        let texts: Vec<String> = chunk_text(&text, options)
            .into_iter()
            .map(|c| c.text)
            .collect();
        assert_eq!(
            texts,
            [
                format!("{}\n{}", words(8, "a"), words(7, "b")),
                "after".into()
            ]
        );
    }

    #[test]
    fn empty_and_heading_only_text_make_no_chunks() {
        assert!(chunk_text("", ChunkOptions::default()).is_empty());
        assert!(chunk_text("# Title\n\n## Sub\n", ChunkOptions::default()).is_empty());
    }

    /// A counter like WordPiece's: long words are several tokens.
    fn pieces_fit(window: usize) -> TokenFit {
        TokenFit {
            window,
            count: Arc::new(|text: &str| {
                text.split_whitespace().map(|w| w.len().div_ceil(4)).sum()
            }),
        }
    }

    #[test]
    fn with_a_window_every_chunk_and_its_headings_fit_it_and_nothing_is_lost() {
        let fit = pieces_fit(60);
        let count = fit.count.clone();
        // Words of 6 and 10 letters: 2 and 3 tokens each, so 100 words would be ~250 tokens.
        let lines: Vec<String> = (0..30)
            .map(|i| format!("line{i:03} {}", "longerwords shortw ".repeat(5)))
            .collect();
        let text = format!("# Heading words here\n{}", lines.join("\n"));
        let chunks = chunk_text_fitted(&text, ChunkOptions::default(), Some(fit));
        assert!(chunks.len() > 5, "{}", chunks.len());
        for chunk in &chunks {
            let embedded = format!(
                "{}\n{}",
                chunk.heading_path().unwrap_or_default(),
                chunk.text
            );
            assert!(
                count(&embedded) <= 60,
                "{} tokens: {embedded}",
                count(&embedded)
            );
        }
        for i in 0..30 {
            let marker = format!("line{i:03}");
            assert!(
                chunks.iter().any(|c| c.text.contains(&marker)),
                "{marker} lost"
            );
        }
        // Without the fit the word budget alone makes one chunk of all 40 lines.
        assert_eq!(chunk_text(&text, ChunkOptions::default()).len(), 1);
    }

    #[test]
    fn with_a_window_a_long_line_is_cut_to_it_and_a_giant_word_stays_whole() {
        let fit = pieces_fit(20);
        let count = fit.count.clone();
        let giant = "x".repeat(200);
        let text = format!("{} {giant} tail", words(100, "word"));
        let chunks = chunk_text_fitted(&text, ChunkOptions::default(), Some(fit));
        for chunk in &chunks {
            if !chunk.text.contains(&giant) {
                assert!(count(&chunk.text) <= 20, "{}", chunk.text);
            }
        }
        assert!(chunks.iter().any(|c| c.text == giant));
        assert!(chunks.iter().any(|c| c.text.contains("word99")));
        assert!(chunks.last().is_some_and(|c| c.text.ends_with("tail")));
    }
}
