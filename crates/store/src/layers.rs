//! Unpacked layers, each once, in `layers/<chain-id hex>/diff`, stacked by
//! overlayfs. Every layer also has a short link `layers/l/<26 chars>` →
//! `../<hex>/diff` (its name in `<hex>/link`): overlay's mount options must
//! fit in one page, and relative short names let 128-layer images mount.
//!
//! A layer is unpacked into `layers/tmp-*` and renamed into place whole, so
//! a crash never leaves a half layer under its ChainID; start-up removes
//! leftovers and restores missing links. A layer's directory does not
//! depend on its parents (whiteouts are recorded, not applied), so the
//! layers of an image unpack in parallel.

use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use berth_image::media::{sniff_compression, Compression};
use berth_image::Digest;

use crate::blobs::sync_dir;
use crate::error::{Result, StoreError};
use crate::unpack::{self, UnpackOptions, Unpacked};

/// The file in a layer directory noting its unpacked size.
const SIZE_FILE: &str = "size";

/// Prefix of layer directories being built or removed.
const TMP_PREFIX: &str = "tmp-";
/// Length of a short link name.
const LINK_LEN: usize = 26;
/// Overlay parses its options from one page.
const PAGE: usize = 4096;

/// The layer directories.
#[derive(Debug, Clone)]
pub struct LayerStore {
    dir: PathBuf,
    opts: UnpackOptions,
}

impl LayerStore {
    /// Opens (creating) `<root>/layers` and repairs interrupted work.
    pub fn open(root: &Path, opts: UnpackOptions) -> Result<Self> {
        let dir = root.join("layers");
        fs::create_dir_all(dir.join("l")).map_err(|e| StoreError::io("creating", &dir, e))?;
        spread_subdirectories(&dir);
        let store = Self { dir, opts };
        store.repair()?;
        Ok(store)
    }

    fn repair(&self) -> Result<()> {
        let entries =
            fs::read_dir(&self.dir).map_err(|e| StoreError::io("listing", &self.dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP_PREFIX) {
                // A scratch layer a crash left mounted: its mount goes
                // first, or the removal would walk into its lowers' view.
                let _ = crate::overlay::unmount(&entry.path().join("merged"));
                remove_tree(&entry.path())?;
            } else if name != "l" {
                self.ensure_link(&name)?;
            }
        }
        let links = self.dir.join("l");
        for entry in fs::read_dir(&links)
            .map_err(|e| StoreError::io("listing", &links, e))?
            .flatten()
        {
            if fs::metadata(entry.path()).is_err() {
                let _ = fs::remove_file(entry.path()); // dangling: its layer is gone
            }
        }
        Ok(())
    }

    /// The directory of a layer (whether or not it exists).
    pub fn layer_dir(&self, chain: &Digest) -> PathBuf {
        self.dir.join(chain.hex())
    }

    /// The unpacked content of a layer.
    pub fn diff_dir(&self, chain: &Digest) -> PathBuf {
        self.layer_dir(chain).join("diff")
    }

    /// Whether the layer is unpacked.
    pub fn contains(&self, chain: &Digest) -> bool {
        self.layer_dir(chain).join("link").is_file()
    }

    /// The unpacked size noted when the layer was unpacked from a blob.
    pub fn unpacked_size(&self, chain: &Digest) -> Option<u64> {
        fs::read_to_string(self.layer_dir(chain).join(SIZE_FILE))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn link_name(hex: &str) -> String {
        let h = Digest::sha256(format!("link {hex}").as_bytes());
        h.hex()[..LINK_LEN].to_ascii_uppercase()
    }

    fn ensure_link(&self, hex: &str) -> Result<()> {
        let short = Self::link_name(hex);
        let link = self.dir.join("l").join(&short);
        match std::os::unix::fs::symlink(format!("../{hex}/diff"), &link) {
            // There already: its name and target are the layer's own (two
            // builds' stages may install the same layer at once).
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other.map_err(|e| StoreError::io("creating link", &link, e)),
        }
    }

    /// Unpacks a layer blob (gzip, zstd or plain, told by its first bytes)
    /// as `chain`; its uncompressed stream must hash to `diff_id`. A layer
    /// already unpacked is left alone.
    pub fn create(
        &self,
        chain: &Digest,
        diff_id: &Digest,
        blob: impl Read,
    ) -> Result<Option<Unpacked>> {
        if self.contains(chain) {
            return Ok(None);
        }
        let tmp = self.temp_dir()?;
        let diff = tmp.path().join("diff");
        fs::create_dir(&diff).map_err(|e| StoreError::io("creating", &diff, e))?;
        let name = format!("{diff_id}");
        let unpacked = unpack::unpack(
            &name,
            decompress(blob).map_err(|e| StoreError::io("reading layer", &name, e))?,
            &diff,
            self.opts,
        )?;
        if unpacked.diff_id != *diff_id {
            return Err(StoreError::DigestMismatch {
                what: format!("layer {diff_id} (uncompressed)"),
                expected: diff_id.to_string(),
                actual: unpacked.diff_id.to_string(),
            });
        }
        // Kept with the layer: whoever records it later (a pull unpacks
        // before it records; two loads may race) knows its size.
        let size_file = tmp.path().join(SIZE_FILE);
        fs::write(&size_file, unpacked.size.to_string())
            .map_err(|e| StoreError::io("writing", &size_file, e))?;
        self.install(tmp, chain)?;
        Ok(Some(unpacked))
    }

    /// A temp layer directory (removed at start-up if a crash leaves it).
    pub(crate) fn temp_dir(&self) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempdir_in(&self.dir)
            .map_err(|e| StoreError::io("creating a temp dir in", &self.dir, e))
    }

    /// Moves a finished temp layer under its ChainID and links it.
    pub(crate) fn install(&self, tmp: tempfile::TempDir, chain: &Digest) -> Result<()> {
        let hex = chain.hex();
        let link_file = tmp.path().join("link");
        fs::write(&link_file, Self::link_name(hex))
            .map_err(|e| StoreError::io("writing", &link_file, e))?;
        let dest = self.layer_dir(chain);
        let from = tmp.keep();
        if let Err(e) = fs::rename(&from, &dest) {
            remove_tree(&from)?;
            // Another writer installed the same layer first: same content.
            if !self.contains(chain) {
                return Err(StoreError::io("installing layer", dest, e));
            }
        }
        self.ensure_link(hex)?;
        sync_dir(&self.dir)
    }

    /// Removes a layer: renamed away first so a crash never leaves a half
    /// layer under its ChainID.
    pub fn remove(&self, chain: &Digest) -> Result<()> {
        let dir = self.layer_dir(chain);
        let link = self.dir.join("l").join(Self::link_name(chain.hex()));
        let _ = fs::remove_file(&link);
        let doomed = self.dir.join(format!("{TMP_PREFIX}rm-{}", chain.hex()));
        match fs::rename(&dir, &doomed) {
            Ok(()) => remove_tree(&doomed),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("removing layer", dir, e)),
        }
    }

    /// Every layer directory present, by ChainID.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let entries =
            fs::read_dir(&self.dir).map_err(|e| StoreError::io("listing", &self.dir, e))?;
        Ok(entries
            .flatten()
            .filter_map(|e| {
                format!("sha256:{}", e.file_name().to_string_lossy())
                    .parse()
                    .ok()
            })
            .collect())
    }

    /// Overlay's `lowerdir=` value for a stack given bottom first, in
    /// overlay's order (top first), relative to the layers directory.
    pub fn lowerdir(&self, chains: &[Digest]) -> String {
        let links: Vec<String> = chains
            .iter()
            .rev()
            .map(|c| format!("l/{}", Self::link_name(c.hex())))
            .collect();
        links.join(":")
    }

    /// Mounts the stack (bottom first) at `target`: with `upper` (and its
    /// work dir) a writable container root, without a read-only view.
    pub fn mount(
        &self,
        chains: &[Digest],
        upper: Option<(&Path, &Path)>,
        target: &Path,
    ) -> Result<()> {
        crate::overlay::mount(
            &self.dir,
            &self.lowerdir(chains),
            chains.len(),
            upper,
            target,
            PAGE,
            false,
        )
    }

    /// [`Self::mount`] with an upper that is never synced (overlay's
    /// `volatile`): a scratch layer or a build step's root, which a crash
    /// discards anyway (its diff is hashed and its blob synced when it is
    /// committed), or the root of a container removed when it exits.
    /// Unmounting a synced overlay flushes the whole file system below
    /// it, whatever other writes are pending there.
    ///
    /// A volatile mount leaves `work/work/incompat/volatile`, and overlay
    /// refuses the work dir again while it is there, as the upper may have
    /// lost writes in a crash. Such uppers do not outlive a crash (their
    /// containers go when the daemon starts), so a marker found here is
    /// from a clean unmount and goes.
    pub fn mount_volatile(
        &self,
        chains: &[Digest],
        upper: (&Path, &Path),
        target: &Path,
    ) -> Result<()> {
        let marker = upper.1.join("work/incompat/volatile");
        match std::fs::remove_dir_all(&marker) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("removing", marker, e)),
        }
        crate::overlay::mount(
            &self.dir,
            &self.lowerdir(chains),
            chains.len(),
            Some(upper),
            target,
            PAGE,
            true,
        )
    }
}

impl LayerStore {
    /// Mounts a read-only view of `top` (a container's upper dir, its
    /// whiteouts included) over the stack (bottom first) at `target`: what
    /// the container sees, without being its root mount.
    pub fn mount_view(&self, chains: &[Digest], top: &Path, target: &Path) -> Result<()> {
        let lowerdir = if chains.is_empty() {
            top.display().to_string()
        } else {
            format!("{}:{}", top.display(), self.lowerdir(chains))
        };
        crate::overlay::mount(
            &self.dir,
            &lowerdir,
            chains.len() + 1,
            None,
            target,
            PAGE,
            false,
        )
    }
}

/// A reader that decompresses what its first bytes say is compressed:
/// media types in archives are missing or wrong often enough.
pub fn decompress<'a>(blob: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::with_capacity(1 << 20, blob);
    let head = buffered.fill_buf()?;
    Ok(match sniff_compression(head) {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
    })
}

/// Removes a directory tree berth made.
/// Marks `dir` as the top of unrelated directory trees (`FS_TOPDIR_FL`,
/// `chattr +T`), so ext4 places each layer in a block group of its own
/// choosing instead of next to the last one. Why: on ext4 without a journal
/// the inode allocator skips, one by one and from the start of the group on
/// every allocation, each inode freed in the last minute; a layer of
/// thousands of files written where a prune just freed thousands was
/// quadratic (a COPY of 1,800 files: 1.3-1.6 s, 0.6-0.7 s spread, see
/// docs/PERFORMANCE.md). Best effort: other filesystems ignore or refuse
/// the flag, and nothing depends on it.
fn spread_subdirectories(dir: &Path) {
    let set = || -> io::Result<()> {
        let fd = rustix::fs::open(
            dir,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        let flags = rustix::fs::ioctl_getflags(&fd)?;
        if !flags.contains(rustix::fs::IFlags::TOPDIR) {
            rustix::fs::ioctl_setflags(&fd, flags | rustix::fs::IFlags::TOPDIR)?;
        }
        Ok(())
    };
    if let Err(e) = set() {
        tracing::debug!(dir = %dir.display(), error = %e, "no TOPDIR flag for the layer store");
    }
}

fn remove_tree(p: &Path) -> Result<()> {
    match fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io("removing", p, e)),
    }
}
