//! Console output: NDJSON on stdout, or indented JSON for humans (`pretty`).

use std::io::{self, Write};

use super::{Chunk, Delivery, Output};

pub struct Console {
    out: Box<dyn Write + Send>,
    pretty: bool,
}

impl Console {
    pub fn stdout(pretty: bool) -> Console {
        Console {
            out: Box::new(io::BufWriter::with_capacity(1 << 16, io::stdout())),
            pretty,
        }
    }

    pub fn to_writer(out: Box<dyn Write + Send>, pretty: bool) -> Console {
        Console { out, pretty }
    }
}

impl Output for Console {
    fn name(&self) -> &'static str {
        "console"
    }

    fn write_batch(&mut self, chunk: &Chunk) -> io::Result<Delivery> {
        if !self.pretty {
            self.out.write_all(&chunk.data)?;
            return Ok(Delivery::written(chunk));
        }
        for (line, _) in chunk.events() {
            match serde_json::from_slice::<serde_json::Value>(line) {
                Ok(v) => {
                    serde_json::to_writer_pretty(&mut self.out, &v)?;
                    self.out.write_all(b"\n")?;
                }
                Err(_) => {
                    self.out.write_all(line)?;
                    self.out.write_all(b"\n")?;
                }
            }
        }
        Ok(Delivery::written(chunk))
    }

    fn flush(&mut self) -> io::Result<Delivery> {
        self.out.flush()?;
        Ok(Delivery::default())
    }

    /// Live capture trickles events: write them out while idle rather than at exit.
    fn tick(&mut self) -> io::Result<Delivery> {
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn pretty_reindents_each_event() {
        let s = Shared::default();
        let mut c = Console::to_writer(Box::new(s.clone()), true);
        let chunk = Chunk::from_ndjson(b"{\"a\":1}\n{\"b\":{\"c\":2}}\n".to_vec(), 2);
        let d = c.write_batch(&chunk).unwrap();
        assert_eq!(
            (d.published, d.requests, d.bytes),
            (2, 1, chunk.data.len() as u64)
        );
        let text = String::from_utf8(s.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "{\n  \"a\": 1\n}\n{\n  \"b\": {\n    \"c\": 2\n  }\n}\n"
        );
    }
}
