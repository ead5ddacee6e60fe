//! Streamed bodies cut into lines, for SSE and NDJSON.
//!
//! [`LineSplitter`] holds no I/O: bytes go in as they arrive, in chunks of any size and cut
//! anywhere (inside a `\r\n` pair or a UTF-8 sequence), and the lines that come out are the
//! same for every cutting. [`LineReader`] feeds it from a response body.

use std::collections::VecDeque;

use super::{FailureClass, ProviderError, classify};

/// Which bytes end a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnds {
    /// `\n`, with one `\r` before it dropped. NDJSON: a lone `\r` is whitespace inside JSON,
    /// not a line end.
    Lf,
    /// `\r\n`, `\n` or a lone `\r`, as server-sent events define them.
    Any,
}

/// A byte stream, delivered in arbitrary chunks, cut into lines (without their ends). Lines
/// are decoded as UTF-8 with invalid sequences replaced; line ends are ASCII, so a sequence
/// is never cut by one.
#[derive(Debug)]
pub struct LineSplitter {
    ends: LineEnds,
    buffer: Vec<u8>,
    /// Start of the unread part of `buffer` (the part before it is compacted away lazily).
    start: usize,
    /// How far past `start` is known to hold no line end.
    scanned: usize,
    /// The last line ended with `\r` (`LineEnds::Any`): a `\n` that follows belongs to it.
    after_cr: bool,
}

impl LineSplitter {
    pub fn new(ends: LineEnds) -> Self {
        Self {
            ends,
            buffer: Vec::new(),
            start: 0,
            scanned: 0,
            after_cr: false,
        }
    }

    /// Append the next chunk of the body.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.buffer.len() {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as a line: the length of the line in progress.
    pub fn pending(&self) -> usize {
        self.buffer.len() - self.start
    }

    /// The next complete line, if one has arrived.
    pub fn next_line(&mut self) -> Option<String> {
        if self.after_cr && self.start < self.buffer.len() {
            self.after_cr = false;
            if self.buffer[self.start] == b'\n' {
                self.start += 1;
            }
        }
        let unread = &self.buffer[self.start..];
        let found = match self.ends {
            LineEnds::Lf => unread[self.scanned..].iter().position(|b| *b == b'\n'),
            LineEnds::Any => unread[self.scanned..]
                .iter()
                .position(|b| *b == b'\n' || *b == b'\r'),
        };
        let Some(found) = found else {
            self.scanned = unread.len();
            return None;
        };
        let end = self.scanned + found;
        let mut line = &unread[..end];
        if unread[end] == b'\r' {
            // Only `LineEnds::Any` stops at a `\r`.
            self.after_cr = true;
        } else if self.ends == LineEnds::Lf
            && let Some(stripped) = line.strip_suffix(b"\r")
        {
            line = stripped;
        }
        let text = String::from_utf8_lossy(line).into_owned();
        self.start += end + 1;
        self.scanned = 0;
        Some(text)
    }

    /// At the end of the body: the last line when it had no line end. Call once complete
    /// lines are exhausted ([`next_line`](Self::next_line) returned `None`).
    pub fn finish(&mut self) -> Option<String> {
        let rest = &self.buffer[self.start..];
        let rest = match self.ends {
            LineEnds::Lf => rest.strip_suffix(b"\r").unwrap_or(rest),
            LineEnds::Any => rest,
        };
        let line = (!rest.is_empty()).then(|| String::from_utf8_lossy(rest).into_owned());
        self.buffer.clear();
        self.start = 0;
        self.scanned = 0;
        line
    }
}

/// A line longer than this is not a protocol line: refuse it rather than grow without bound.
pub const MAX_LINE: usize = 4 * 1024 * 1024;

/// Where a body's chunks come from.
enum Source {
    Http(reqwest::Response),
    /// A body already in memory, in the chunks it is to arrive in (tests and fuzzing).
    Memory(VecDeque<Vec<u8>>),
}

impl Source {
    async fn chunk(&mut self) -> Result<Option<Vec<u8>>, ProviderError> {
        match self {
            Source::Http(response) => match response.chunk().await {
                Ok(chunk) => Ok(chunk.map(|c| c.to_vec())),
                Err(e) => Err(ProviderError::new(
                    FailureClass::StreamInterrupted,
                    format!("the reply stream broke off: {}", classify::describe(&e)),
                )),
            },
            Source::Memory(chunks) => Ok(chunks.pop_front()),
        }
    }
}

/// A response body cut into lines as it arrives.
pub struct LineReader {
    source: Source,
    lines: LineSplitter,
    done: bool,
}

impl LineReader {
    pub fn new(response: reqwest::Response, ends: LineEnds) -> Self {
        Self::with_source(Source::Http(response), ends)
    }

    /// The same reader over a body in memory, delivered in `chunks`.
    pub fn from_chunks(chunks: impl IntoIterator<Item = Vec<u8>>, ends: LineEnds) -> Self {
        Self::with_source(Source::Memory(chunks.into_iter().collect()), ends)
    }

    fn with_source(source: Source, ends: LineEnds) -> Self {
        Self {
            source,
            lines: LineSplitter::new(ends),
            done: false,
        }
    }

    /// The next line without its end; `None` at the end of the body.
    pub async fn next_line(&mut self) -> Result<Option<String>, ProviderError> {
        loop {
            if let Some(line) = self.lines.next_line() {
                return Ok(Some(line));
            }
            if self.done {
                return Ok(self.lines.finish());
            }
            if self.lines.pending() > MAX_LINE {
                return Err(ProviderError::format("a stream line is longer than 4 MiB"));
            }
            match self.source.chunk().await? {
                Some(chunk) => self.lines.push(&chunk),
                None => self.done = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(ends: LineEnds, chunks: &[&[u8]]) -> Vec<String> {
        let mut splitter = LineSplitter::new(ends);
        let mut lines = Vec::new();
        for chunk in chunks {
            splitter.push(chunk);
            lines.extend(std::iter::from_fn(|| splitter.next_line()));
        }
        lines.extend(splitter.finish());
        lines
    }

    #[test]
    fn any_line_end_counts_once_even_when_cut_between_cr_and_lf() {
        let want = ["a", "b", "c", "", "d"];
        assert_eq!(split(LineEnds::Any, &[b"a\r\nb\rc\n\nd"]), want);
        assert_eq!(
            split(LineEnds::Any, &[b"a\r", b"\nb\r", b"c\n", b"\nd"]),
            want
        );
        // A `\r` at the very end is a line end with nothing after it.
        assert_eq!(split(LineEnds::Any, &[b"a\r"]), ["a"]);
        assert_eq!(split(LineEnds::Any, &[b"a\r", b"", b"\r"]), ["a", ""]);
    }

    #[test]
    fn lf_mode_keeps_lone_cr_and_strips_crlf() {
        assert_eq!(
            split(LineEnds::Lf, &[b"{\"a\":\r1}\r", b"\n{}"]),
            ["{\"a\":\r1}", "{}"]
        );
        assert_eq!(split(LineEnds::Lf, &[b"x\r"]), ["x"]);
    }

    #[test]
    fn utf8_cut_across_chunks_survives() {
        let text = "héllo\nwörld";
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(
                split(LineEnds::Any, &[a, b]),
                ["héllo", "wörld"],
                "cut at {cut}"
            );
        }
    }

    #[tokio::test]
    async fn reader_refuses_an_endless_line() {
        let chunk = vec![b'x'; 1024 * 1024];
        let mut reader = LineReader::from_chunks(vec![chunk; 6], LineEnds::Lf);
        let error = reader.next_line().await.unwrap_err();
        assert_eq!(error.class, FailureClass::Format);
    }
}
