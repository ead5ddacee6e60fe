//! Server-sent events: `event:` and `data:` fields, a blank line ends a frame, `:` lines are
//! comments (keep-alives). Lines end in `\r\n`, `\n` or a lone `\r`.
//!
//! [`SseParser`] turns lines into frames without any I/O; [`SseReader`] drives it from a
//! response body through a [`LineReader`].

use super::ProviderError;
use super::lines::{LineEnds, LineReader};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    pub event: Option<String>,
    pub data: String,
}

/// Frames from lines. Frames without data (keep-alives, a lone `event:`) are not reported.
#[derive(Debug, Default)]
pub struct SseParser {
    frame: Frame,
    has_data: bool,
    started: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Take the next line (without its end); a frame when the line completes one.
    pub fn line(&mut self, line: &str) -> Option<Frame> {
        // A byte order mark may start the stream; it is not part of the first field name.
        let line = if self.started {
            line
        } else {
            self.started = true;
            line.strip_prefix('\u{feff}').unwrap_or(line)
        };
        if line.is_empty() {
            let frame = std::mem::take(&mut self.frame);
            return std::mem::take(&mut self.has_data).then_some(frame);
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.frame.event = Some(value.to_string()),
            "data" => {
                if self.has_data {
                    self.frame.data.push('\n');
                }
                self.frame.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        None
    }

    /// At the end of the body: the frame in progress, when it has data (a server that closes
    /// without the final blank line still delivered it).
    pub fn finish(&mut self) -> Option<Frame> {
        let frame = std::mem::take(&mut self.frame);
        std::mem::take(&mut self.has_data).then_some(frame)
    }
}

pub struct SseReader {
    lines: LineReader,
    parser: SseParser,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self::from_lines(LineReader::new(response, LineEnds::Any))
    }

    /// The same reader over a body in memory, delivered in `chunks` (tests and fuzzing).
    pub fn from_chunks(chunks: impl IntoIterator<Item = Vec<u8>>) -> Self {
        Self::from_lines(LineReader::from_chunks(chunks, LineEnds::Any))
    }

    fn from_lines(lines: LineReader) -> Self {
        Self {
            lines,
            parser: SseParser::new(),
        }
    }

    /// The next frame with data; `None` when the body ends.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, ProviderError> {
        while let Some(line) = self.lines.next_line().await? {
            if let Some(frame) = self.parser.line(&line) {
                return Ok(Some(frame));
            }
        }
        Ok(self.parser.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(lines: &[&str]) -> Vec<Frame> {
        let mut parser = SseParser::new();
        let mut out: Vec<Frame> = lines.iter().filter_map(|l| parser.line(l)).collect();
        out.extend(parser.finish());
        out
    }

    fn frame(event: Option<&str>, data: &str) -> Frame {
        Frame {
            event: event.map(str::to_string),
            data: data.to_string(),
        }
    }

    #[test]
    fn fields_comments_and_multi_line_data() {
        let got = frames(&[
            "\u{feff}: hello",
            "event: delta",
            "data: one",
            "data:two",
            "id: 7",
            "",
            "",
            "event: ping",
            "",
            "data",
            "",
            "data: tail",
        ]);
        assert_eq!(
            got,
            [
                frame(Some("delta"), "one\ntwo"),
                frame(None, ""),
                frame(None, "tail")
            ]
        );
    }
}
