//! Server-sent events over a [`LineReader`]: `event:` and `data:` fields, a blank line ends
//! a frame, `:` lines are comments (keep-alives).

use super::{LineReader, ProviderError};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    pub event: Option<String>,
    pub data: String,
}

pub struct SseReader {
    lines: LineReader,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            lines: LineReader::new(response),
        }
    }

    /// The next frame with data; `None` when the body ends.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, ProviderError> {
        let mut frame = Frame::default();
        let mut has_data = false;
        loop {
            let Some(line) = self.lines.next_line().await? else {
                return Ok(has_data.then_some(frame));
            };
            if line.is_empty() {
                if has_data {
                    return Ok(Some(frame));
                }
                frame = Frame::default();
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "event" => frame.event = Some(value.to_string()),
                "data" => {
                    if has_data {
                        frame.data.push('\n');
                    }
                    frame.data.push_str(value);
                    has_data = true;
                }
                _ => {}
            }
        }
    }
}
