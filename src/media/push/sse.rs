//! The `text/event-stream` wire format, read incrementally: bytes in, whole events out.
//! Pure, so a stream cut anywhere (mid-line, mid-UTF-8) reads the same as one in one piece.
//!
//! Only what the media servers and their plugins send is kept: `event:` and `data:` lines
//! (several `data:` lines join with `\n`); `id:`, `retry:` and `:` comments are read and
//! dropped. A line longer than the cap is an error: a stream that never ends a line is not
//! an event stream, and must not grow our memory.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` name; `message` when the frame names none (the SSE default).
    pub name: String,
    pub data: String,
}

/// A line exceeded [`Reader::MAX_LINE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

/// Accumulates bytes until events are complete.
#[derive(Debug, Default)]
pub struct Reader {
    /// Bytes of the line being read (not yet ended by `\n`).
    line: Vec<u8>,
    name: Option<String>,
    data: Option<String>,
    /// A `\r` ended the last line; a `\n` right after it belongs to it.
    after_cr: bool,
}

impl Reader {
    /// Longest line kept: Plex's largest notifications are a few kilobytes.
    pub const MAX_LINE: usize = 1024 * 1024;

    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `bytes`; returns the events they completed, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Event>, LineTooLong> {
        let mut events = Vec::new();
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.end_line(&line) {
                        events.push(event);
                    }
                }
                _ => {
                    self.after_cr = false;
                    if self.line.len() >= Self::MAX_LINE {
                        return Err(LineTooLong);
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(events)
    }

    /// One whole line: a field, or (empty) the end of an event.
    fn end_line(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            let data = self.data.take();
            let name = self.name.take();
            // A frame without data dispatches nothing (the SSE rule); a name alone is kept
            // as an event with empty data, which is how some servers send pings.
            return match (name, data) {
                (None, None) => None,
                (name, data) => Some(Event {
                    name: name.filter(|n| !n.is_empty()).unwrap_or_else(|| "message".to_owned()),
                    data: data.unwrap_or_default(),
                }),
            };
        }
        let line = String::from_utf8_lossy(line);
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((&line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.name = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(reader: &mut Reader, input: &[u8]) -> Vec<Event> {
        reader.feed(input).unwrap()
    }

    fn event(name: &str, data: &str) -> Event {
        Event { name: name.into(), data: data.into() }
    }

    #[test]
    fn frames_in_every_line_ending_and_split_anywhere_read_the_same() {
        let stream = "event: ping\ndata: {}\n\n: a comment\nevent: playing\r\ndata: {\"a\":1}\r\n\r\nid: 7\ndata: one\ndata: two\n\n";
        let expected =
            vec![event("ping", "{}"), event("playing", "{\"a\":1}"), event("message", "one\ntwo")];
        assert_eq!(all(&mut Reader::new(), stream.as_bytes()), expected);
        for cut in 0..stream.len() {
            let mut reader = Reader::new();
            let mut got = all(&mut reader, &stream.as_bytes()[..cut]);
            got.extend(all(&mut reader, &stream.as_bytes()[cut..]));
            assert_eq!(got, expected, "cut at {cut}");
        }
    }

    #[test]
    fn a_name_without_data_is_an_empty_event_and_blank_lines_alone_are_nothing() {
        let mut reader = Reader::new();
        assert_eq!(all(&mut reader, b"\n\n\nevent: ping\n\n"), vec![event("ping", "")]);
        assert_eq!(all(&mut reader, b"data:no-space\n\n"), vec![event("message", "no-space")]);
    }

    #[test]
    fn an_endless_line_is_refused_not_buffered() {
        let mut reader = Reader::new();
        let chunk = vec![b'x'; 64 * 1024];
        let mut refused = false;
        for _ in 0..=(Reader::MAX_LINE / chunk.len()) {
            if reader.feed(&chunk).is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused);
    }

    #[test]
    fn invalid_utf8_is_read_lossily() {
        let mut reader = Reader::new();
        let got = all(&mut reader, b"event: x\ndata: \xff\xfe\n\n");
        assert_eq!(got[0].name, "x");
        assert!(got[0].data.contains('\u{fffd}'));
    }
}
