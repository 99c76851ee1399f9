//! Drives the image store from the command line for `bench/image_store.py`:
//! the library's load, save and export without a daemon in the way.
//!
//! ```text
//! store_bench ROOT load ARCHIVE
//! store_bench ROOT save docker|oci OUT NAME...
//! store_bench ROOT export NAME OUT
//! ```

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{bail, Context, Result};
use berth_image::archive::Format;
use berth_store::{Store, StoreOptions};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, op, rest @ ..] = args.as_slice() else {
        bail!("usage: store_bench ROOT load ARCHIVE | save FORMAT OUT NAME... | export NAME OUT");
    };
    let store =
        Store::open(Path::new(root), StoreOptions::default()).context("opening the store")?;
    match (op.as_str(), rest) {
        ("load", [archive]) => {
            let file = File::open(archive).with_context(|| format!("opening {archive}"))?;
            for img in store.load(std::io::BufReader::with_capacity(1 << 20, file))? {
                println!("{} {:?}", img.id, img.tags);
            }
        }
        ("save", [format, out, names @ ..]) => {
            let format = match format.as_str() {
                "docker" => Format::Docker,
                "oci" => Format::Oci,
                other => bail!("unknown format {other}"),
            };
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let file = File::create(out).with_context(|| format!("creating {out}"))?;
            store.save(&names, format, BufWriter::with_capacity(1 << 20, file))?;
        }
        ("export", [name, out]) => {
            let file = File::create(out).with_context(|| format!("creating {out}"))?;
            store.export(name, BufWriter::with_capacity(1 << 20, file))?;
        }
        _ => bail!("unknown operation or wrong arguments: {op}"),
    }
    Ok(())
}
