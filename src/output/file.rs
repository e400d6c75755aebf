//! Rotating NDJSON file output, Beats-style: events go to `path/filename`; when it
//! would exceed `rotate_every_kb` it is renamed `filename.1` (older files shift up),
//! and at most `number_of_files` files are kept.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use super::{Chunk, Delivery, Output};
use crate::config::FileOutput;

pub struct RotatingFile {
    dir: PathBuf,
    name: String,
    max_bytes: u64,
    keep: u32,
    file: BufWriter<File>,
    size: u64,
}

impl RotatingFile {
    pub fn new(cfg: &FileOutput) -> io::Result<RotatingFile> {
        let dir = PathBuf::from(&cfg.path);
        fs::create_dir_all(&dir)?;
        let name = cfg.filename.clone();
        let path = dir.join(&name);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            dir,
            name,
            max_bytes: cfg.rotate_every_kb.max(1) * 1024,
            keep: cfg.number_of_files.max(2),
            file: BufWriter::with_capacity(1 << 16, file),
            size,
        })
    }

    fn path(&self, n: u32) -> PathBuf {
        if n == 0 {
            self.dir.join(&self.name)
        } else {
            self.dir.join(format!("{}.{n}", self.name))
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let last = self.keep - 1;
        let _ = fs::remove_file(self.path(last));
        for n in (0..last).rev() {
            let from = self.path(n);
            if from.exists() {
                fs::rename(&from, self.path(n + 1))?;
            }
        }
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(self.path(0))?;
        self.file = BufWriter::with_capacity(1 << 16, f);
        self.size = 0;
        Ok(())
    }
}

impl Output for RotatingFile {
    fn name(&self) -> &'static str {
        "file"
    }

    fn write_batch(&mut self, chunk: &Chunk) -> io::Result<Delivery> {
        let ndjson = chunk.data.as_slice();
        if self.size + ndjson.len() as u64 <= self.max_bytes {
            self.file.write_all(ndjson)?;
            self.size += ndjson.len() as u64;
            return Ok(Delivery::written(chunk));
        }
        // Rotate on event boundaries so no line is split across files.
        for line in chunk.raw_lines() {
            if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
                self.rotate()?;
            }
            self.file.write_all(line)?;
            self.size += line.len() as u64;
        }
        Ok(Delivery::written(chunk))
    }

    fn flush(&mut self) -> io::Result<Delivery> {
        self.file.flush()?;
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

    #[test]
    fn rotates_and_keeps_n_files() {
        let dir = std::env::temp_dir().join(format!("wirebeat-file-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let cfg = FileOutput {
            enabled: true,
            path: dir.to_string_lossy().into_owned(),
            filename: "ev".into(),
            rotate_every_kb: 1,
            number_of_files: 3,
        };
        let mut f = RotatingFile::new(&cfg).unwrap();
        let line = format!("{{\"x\":\"{}\"}}\n", "a".repeat(300));
        // Two events per chunk: rotation cuts chunks between their lines.
        for _ in 0..6 {
            let chunk = Chunk::from_ndjson(line.repeat(2).into_bytes(), 2);
            assert_eq!(f.write_batch(&chunk).unwrap(), Delivery::written(&chunk));
        }
        assert_eq!(f.flush().unwrap(), Delivery::default());
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["ev", "ev.1", "ev.2"]);
        for n in &names {
            let text = fs::read_to_string(dir.join(n)).unwrap();
            assert!(text.len() <= 1024 && text.ends_with('\n'));
            for l in text.lines() {
                serde_json::from_str::<serde_json::Value>(l).unwrap();
            }
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
