//! Writes the seed corpora of the fuzz targets (`wirebeat::fuzzing::seeds`), built
//! from the committed fixtures, under `<dir>/<target>/` (one file per seed, named by
//! its position). Run by scripts/fuzz-seeds.sh:
//!
//!     cargo run --features test-support --example fuzz_seeds -- fuzz/corpus

use std::path::{Path, PathBuf};

fn main() -> std::io::Result<()> {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: fuzz_seeds <corpus-dir>");
        std::process::exit(2);
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (target, seeds) in wirebeat::fuzzing::seeds::all(root) {
        let d = dir.join(target);
        std::fs::create_dir_all(&d)?;
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i:04}")), s)?;
        }
        println!("{target}: {} seeds", seeds.len());
    }
    Ok(())
}
