//! Safe, streaming unpack of one layer tar into its own directory.
//!
//! Every path is resolved relative to an open directory fd of the layer root: parents with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`, so
//! no parent may be a symlink (one the same tar made earlier included) and nothing can resolve
//! outside the layer; leaves are created with `O_EXCL | O_NOFOLLOW`, `mkdirat`, `symlinkat`,
//! `mknodat`, `linkat` without `AT_SYMLINK_FOLLOW`. Names with `..` components and absolute
//! names are refused, and so are hard links whose target is outside the layer.
//!
//! OCI whiteouts are turned into overlayfs's own form, so a layer directory can be used as an
//! overlay lowerdir as is: `.wh.NAME` becomes a 0/0 character device `NAME`, and
//! `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory. Ownership, modes (setuid
//! included), mtimes, device nodes and xattrs (`SCHILY.xattr.*`) are kept; a layer may not set
//! `trusted.overlay.*` xattrs of its own.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{
    Mode, SFlag, fchmod, fstatat, futimens, makedev, mkdirat, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};
use tar::EntryType;

use super::error::{ImageError, Result};

/// The prefix of an OCI whiteout file name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The name of an OCI opaque-directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattr overlayfs reads to make a directory opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What an unpack wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnpackStats {
    /// Tar entries applied (whiteouts included).
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
}

/// How far a layer may expand: file content written past `floor` bytes may be at most `ratio`
/// times the compressed bytes read. Stops decompression bombs (a gzip stream expands up to
/// ~1000×) and sparse-file bombs (a few bytes declaring gigabytes of holes) before they fill
/// the disk; ordinary layers expand 2-10×, and a big, very compressible one stays allowed
/// below the floor.
///
/// When the layer's compressed size is known (the manifest lists it, and a pull refuses a blob
/// of any other size), the rule is also applied to what each file entry *declares* before a
/// byte of it is written: a bomb in one file is refused at its header, not after the floor's
/// gigabyte was written. The running check stays for when the size is not known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpansionLimit {
    pub floor: u64,
    pub ratio: u64,
}

impl ExpansionLimit {
    pub const DEFAULT: Self = Self {
        floor: 1 << 30,
        ratio: 200,
    };
}

/// The expansion limit and what it is measured against: the compressed bytes read so far.
struct Budget {
    limit: ExpansionLimit,
    consumed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The whole layer's compressed size, when known.
    compressed_size: Option<u64>,
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Unpacks the tar stream `reader` into `dest` (an existing, empty directory). `layer` names the
/// layer in errors. On error the directory is left partly written; the caller discards it.
pub fn unpack_layer<R: Read>(reader: R, dest: &Path, layer: &str) -> Result<UnpackStats> {
    unpack_layer_within(reader, dest, layer, None)
}

fn unpack_layer_within<R: Read>(
    reader: R,
    dest: &Path,
    layer: &str,
    budget: Option<Budget>,
) -> Result<UnpackStats> {
    let root = openat(
        nix::fcntl::AT_FDCWD,
        dest,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| ImageError::io("open layer dir", dest, e.into()))?;
    let mut u = Unpacker {
        root: File::from(root),
        layer: layer.to_owned(),
        parent_cache: None,
        dirs: Vec::new(),
        buf: vec![0u8; 256 * 1024],
        stats: UnpackStats::default(),
        euid: nix::unistd::geteuid().as_raw(),
        egid: nix::unistd::getegid().as_raw(),
        budget,
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| u.bad(format!("reading tar: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| u.bad(format!("reading tar: {e}")))?;
        u.apply(entry)?;
    }
    u.finish_dirs();
    Ok(u.stats)
}

/// Decompresses `src` as `compression` says, unpacks it into `dest` and returns the digest of
/// the uncompressed tar (the layer's diff id) with the stats. Decompression and hashing run on a
/// second thread, so a layer heavy in small files keeps two cores busy. `compressed_size` is
/// the size of the whole compressed stream when it is known (the manifest's): with it, a file
/// declaring more content than the [`ExpansionLimit`] allows is refused before it is written.
pub fn unpack_compressed(
    src: impl Read + Send,
    compression: super::layout::Compression,
    dest: &Path,
    layer: &str,
    compressed_size: Option<u64>,
) -> Result<(super::digest::Digest, UnpackStats)> {
    unpack_compressed_within(
        src,
        compression,
        dest,
        layer,
        compressed_size,
        ExpansionLimit::DEFAULT,
    )
}

/// [`unpack_compressed`] with another expansion limit.
pub fn unpack_compressed_within(
    src: impl Read + Send,
    compression: super::layout::Compression,
    dest: &Path,
    layer: &str,
    compressed_size: Option<u64>,
    limit: ExpansionLimit,
) -> Result<(super::digest::Digest, UnpackStats)> {
    use super::layout::Compression;
    let consumed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let src = Counting {
        inner: src,
        count: consumed.clone(),
    };
    let budget = Budget {
        limit,
        consumed,
        compressed_size,
    };
    let bad = |e: io::Error| ImageError::BadLayer {
        layer: layer.into(),
        reason: e.to_string(),
    };
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
        // Chunks the unpacker is done with come back to be filled again: no allocation and no
        // zeroing of a fresh 256 KiB buffer per chunk (5% of a big pull's CPU).
        let (free_tx, free_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT + 2);
        let producer = scope.spawn(move || -> io::Result<super::digest::Digest> {
            let mut dec: Box<dyn Read + Send + '_> = match compression {
                Compression::None => Box::new(src),
                Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(src)),
                Compression::Zstd => Box::new(zstd::Decoder::new(src)?),
            };
            let mut hasher = super::digest::Hasher::new();
            loop {
                let mut buf = free_rx.try_recv().unwrap_or_default();
                // A returned chunk may be short (the last one of an entry run); only its new
                // tail is zeroed.
                buf.resize(CHUNK, 0);
                let mut filled = 0;
                // Fill whole buffers: fewer, larger hand-overs.
                while filled < buf.len() {
                    match dec.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let msg = e.to_string();
                            let _ = tx.send(Err(e));
                            return Err(io::Error::other(msg));
                        }
                    }
                }
                if filled == 0 {
                    return Ok(hasher.finish());
                }
                buf.truncate(filled);
                hasher.update(&buf);
                if tx.send(Ok(buf)).is_err() {
                    // The unpacker stopped (its error is the one reported).
                    return Err(io::Error::other("unpacker stopped"));
                }
            }
        });
        let mut reader = ChunkReader {
            rx,
            free: free_tx,
            cur: Vec::new(),
            pos: 0,
        };
        let res = unpack_layer_within(&mut reader, dest, layer, Some(budget));
        if res.is_ok() {
            // Past the tar's end-of-archive: let the producer hash the rest of the stream.
            while let Ok(chunk) = reader.rx.recv() {
                if let Err(e) = chunk {
                    drop(reader);
                    let _ = producer.join();
                    return Err(bad(e));
                }
            }
        }
        drop(reader);
        let digest = producer
            .join()
            .map_err(|_| bad(io::Error::other("decompressor panicked")))?;
        let stats = res?;
        Ok((digest.map_err(bad)?, stats))
    })
}

/// Size of a decompressed chunk handed from the decompressor to the unpacker.
const CHUNK: usize = 256 * 1024;
/// Chunks queued between them.
const CHUNKS_IN_FLIGHT: usize = 8;

/// Reads the decompressed chunks the producer thread sends, and hands each back once read.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    free: std::sync::mpsc::SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(c)) => {
                    let done = std::mem::replace(&mut self.cur, c);
                    if done.capacity() >= CHUNK {
                        // Full (the producer stopped) or gone: the chunk is just dropped.
                        let _ = self.free.try_send(done);
                    }
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Splits a tar name into clean components, refusing absolute names and `..`.
pub fn clean_components(raw: &[u8]) -> std::result::Result<Vec<&OsStr>, String> {
    if raw.first() == Some(&b'/') {
        return Err("absolute path".into());
    }
    if raw.contains(&0) {
        return Err("NUL byte in name".into());
    }
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path contains a '..' component".into()),
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    Ok(out)
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: TimeSpec,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

struct Unpacker {
    root: File,
    layer: String,
    /// The last parent directory opened, by its clean relative path.
    parent_cache: Option<(PathBuf, Rc<File>)>,
    /// Directories whose mode and mtime are set once everything under them is written.
    dirs: Vec<(PathBuf, Meta)>,
    buf: Vec<u8>,
    stats: UnpackStats,
    euid: u32,
    egid: u32,
    budget: Option<Budget>,
}

fn how_beneath(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::RESOLVE_NO_XDEV,
        )
}

impl Unpacker {
    /// Refuses a layer that expands past its [`ExpansionLimit`] (`total`: content bytes so far).
    fn within_budget(&self, total: u64) -> Result<()> {
        let Some(b) = &self.budget else {
            return Ok(());
        };
        let read = b.consumed.load(std::sync::atomic::Ordering::Relaxed);
        if total > b.limit.floor && total / b.limit.ratio.max(1) > read {
            return Err(self.bad(format!(
                "expands to more than {}× its {read} compressed bytes past {} MiB of content (a decompression or sparse-file bomb?); refused",
                b.limit.ratio,
                b.limit.floor >> 20
            )));
        }
        Ok(())
    }

    /// Refuses, before it is written, a file entry whose declared size (`size`: the expanded
    /// size of a sparse entry) would take the layer past its [`ExpansionLimit`] measured against
    /// the whole layer's compressed size.
    fn declared_within_budget(&self, size: u64, raw: &[u8]) -> Result<()> {
        let Some(b) = &self.budget else {
            return Ok(());
        };
        let Some(compressed) = b.compressed_size else {
            return Ok(());
        };
        let total = self.stats.bytes.saturating_add(size);
        if total > b.limit.floor && total / b.limit.ratio.max(1) > compressed {
            return Err(self.bad(format!(
                "{}: declares {size} bytes of content, which takes the layer past {} MiB and more than {}× its {compressed} compressed bytes (a decompression or sparse-file bomb?); refused before writing it",
                String::from_utf8_lossy(raw),
                b.limit.floor >> 20,
                b.limit.ratio,
            )));
        }
        Ok(())
    }

    fn bad(&self, reason: String) -> ImageError {
        ImageError::BadLayer {
            layer: self.layer.clone(),
            reason,
        }
    }

    fn unsafe_entry(&self, entry: &[u8], reason: impl Into<String>) -> ImageError {
        ImageError::UnsafeEntry {
            layer: self.layer.clone(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            reason: reason.into(),
        }
    }

    fn io_err(&self, entry: &[u8], op: &'static str, e: impl Into<io::Error>) -> ImageError {
        ImageError::Io {
            op,
            path: PathBuf::from(format!(
                "{} (layer {})",
                String::from_utf8_lossy(entry),
                self.layer
            )),
            source: e.into(),
        }
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, name: &[u8]) -> Result<Meta> {
        let h = entry.header();
        let e = |what: &str, err: io::Error| {
            self.bad(format!(
                "{}: bad {what}: {err}",
                String::from_utf8_lossy(name)
            ))
        };
        let mut meta = Meta {
            mode: h.mode().map_err(|x| e("mode", x))? & 0o7777,
            // As Go's archive/tar does, an empty numeric field reads as 0.
            uid: h.uid().unwrap_or(0) as u32,
            gid: h.gid().unwrap_or(0) as u32,
            mtime: TimeSpec::new(h.mtime().unwrap_or(0) as i64, 0),
            xattrs: Vec::new(),
        };
        if let Some(pax) = entry.pax_extensions().map_err(|x| e("pax header", x))? {
            for ext in pax {
                let ext = ext.map_err(|x| e("pax header", x))?;
                let key = ext.key_bytes();
                let value = ext.value_bytes();
                if let Some(attr) = key.strip_prefix(b"SCHILY.xattr.") {
                    if attr.starts_with(b"trusted.overlay.") {
                        continue; // overlay's own metadata is ours to set, never the image's
                    }
                    meta.xattrs
                        .push((OsStr::from_bytes(attr).to_owned(), value.to_vec()));
                    continue;
                }
                let num = || std::str::from_utf8(value).ok();
                match key {
                    b"uid" => meta.uid = num().and_then(|v| v.parse().ok()).unwrap_or(meta.uid),
                    b"gid" => meta.gid = num().and_then(|v| v.parse().ok()).unwrap_or(meta.gid),
                    b"mtime" => {
                        if let Some(v) = num() {
                            let (s, frac) = v.split_once('.').unwrap_or((v, ""));
                            if let Ok(s) = s.parse::<i64>() {
                                let mut ns = 0i64;
                                for (i, d) in frac.bytes().take(9).enumerate() {
                                    ns += i64::from(d.wrapping_sub(b'0') % 10)
                                        * 10i64.pow(8 - i as u32);
                                }
                                meta.mtime = TimeSpec::new(s, ns);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(meta)
    }

    /// Opens (creating if missing) the directory `comps`, never following a symlink.
    fn open_parent(&mut self, comps: &[&OsStr], name: &[u8]) -> Result<Rc<File>> {
        let rel: PathBuf = comps.iter().collect();
        if let Some((p, f)) = &self.parent_cache
            && *p == rel
        {
            return Ok(f.clone());
        }
        let dir = if comps.is_empty() {
            self.root
                .try_clone()
                .map_err(|e| self.io_err(name, "dup", e))?
        } else {
            match openat2(
                &self.root,
                &rel,
                how_beneath(OFlag::O_DIRECTORY | OFlag::O_RDONLY),
            ) {
                Ok(fd) => File::from(fd),
                Err(Errno::ENOENT) => self.create_parents(comps, name)?,
                Err(Errno::ELOOP) | Err(Errno::EXDEV) => {
                    return Err(self.unsafe_entry(name, "a parent directory is a symlink"));
                }
                Err(Errno::ENOTDIR) => {
                    return Err(self.unsafe_entry(name, "a parent is not a directory"));
                }
                Err(e) => return Err(self.io_err(name, "open parent", e)),
            }
        };
        let dir = Rc::new(dir);
        self.parent_cache = Some((rel, dir.clone()));
        Ok(dir)
    }

    fn create_parents(&mut self, comps: &[&OsStr], name: &[u8]) -> Result<File> {
        let mut cur = self
            .root
            .try_clone()
            .map_err(|e| self.io_err(name, "dup", e))?;
        for c in comps {
            match mkdirat(&cur, *c, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(self.io_err(name, "mkdir parent", e)),
            }
            cur = match openat2(&cur, *c, how_beneath(OFlag::O_DIRECTORY | OFlag::O_RDONLY)) {
                Ok(fd) => File::from(fd),
                Err(Errno::ELOOP) | Err(Errno::EXDEV) => {
                    return Err(self.unsafe_entry(name, "a parent directory is a symlink"));
                }
                Err(Errno::ENOTDIR) => {
                    return Err(self.unsafe_entry(name, "a parent is not a directory"));
                }
                Err(e) => return Err(self.io_err(name, "open parent", e)),
            };
        }
        Ok(cur)
    }

    /// Removes whatever is at `name` in `dir` (recursively for a directory).
    fn remove_existing(&mut self, dir: &File, leaf: &OsStr, entry: &[u8]) -> Result<()> {
        match fstatat(dir, leaf, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(self.io_err(entry, "stat", e)),
            Ok(st) => {
                // Anything cached below or at this name may now be stale.
                self.parent_cache = None;
                if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR {
                    remove_dir_all_at(dir, leaf).map_err(|e| self.io_err(entry, "remove dir", e))
                } else {
                    unlinkat(dir, leaf, UnlinkatFlags::NoRemoveDir)
                        .map_err(|e| self.io_err(entry, "unlink", e))
                }
            }
        }
    }

    /// Runs `create` (an `*at` call making `leaf` in `dir`); when something is at the name
    /// already (EEXIST: an earlier entry of this layer, a symlink planted to redirect a
    /// write, which O_EXCL and the `*at` calls never follow), removes it and creates again.
    /// No stat up front for the names that are new, nearly all of them.
    fn replacing<T>(
        &mut self,
        dir: &File,
        leaf: &OsStr,
        raw: &[u8],
        create: impl Fn() -> nix::Result<T>,
    ) -> Result<nix::Result<T>> {
        match create() {
            Err(Errno::EEXIST) => {
                self.remove_existing(dir, leaf, raw)?;
                Ok(create())
            }
            r => Ok(r),
        }
    }

    fn apply<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let comps = clean_components(&raw).map_err(|r| self.unsafe_entry(&raw, r))?;
        let Some((leaf, parents)) = comps.split_last() else {
            // The layer root itself ("./"): its metadata belongs to the image root; skip.
            return Ok(());
        };
        let leaf = leaf.to_os_string();
        let parents: Vec<OsString> = parents.iter().map(|c| c.to_os_string()).collect();
        let parents_ref: Vec<&OsStr> = parents.iter().map(|c| c.as_os_str()).collect();
        self.stats.entries += 1;

        // Whiteouts.
        let leaf_bytes = leaf.as_bytes();
        if leaf_bytes == OPAQUE_MARKER.as_bytes() {
            let dir = self.open_parent(&parents_ref, &raw)?;
            xattr::FileExt::set_xattr(&*dir, OVERLAY_OPAQUE_XATTR, b"y")
                .map_err(|e| self.io_err(&raw, "set opaque xattr", e))?;
            return Ok(());
        }
        if let Some(hidden) = leaf_bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                return Ok(()); // other AUFS metadata (.wh..wh.plnk etc.): not content
            }
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(self.unsafe_entry(&raw, "whiteout of an invalid name"));
            }
            let hidden = OsStr::from_bytes(hidden);
            let dir = self.open_parent(&parents_ref, &raw)?;
            self.replacing(&dir, hidden, &raw, || {
                mknodat(&dir, hidden, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
            })?
            .map_err(|e| self.io_err(&raw, "mknod whiteout", e))?;
            return Ok(());
        }

        let meta = self.meta(&mut entry, &raw)?;
        let dir = self.open_parent(&parents_ref, &raw)?;
        match kind {
            EntryType::Directory => {
                match fstatat(&dir, leaf.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits() => {}
                    Ok(_) => {
                        self.remove_existing(&dir, &leaf, &raw)?;
                        self.mkdir(&dir, &leaf, &raw)?;
                    }
                    Err(Errno::ENOENT) => self.mkdir(&dir, &leaf, &raw)?,
                    Err(e) => return Err(self.io_err(&raw, "stat", e)),
                }
                let mut path: PathBuf = parents.iter().collect();
                path.push(&leaf);
                self.dirs.push((path, meta));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.declared_within_budget(entry.size(), &raw)?;
                let fd = self
                    .replacing(&dir, &leaf, &raw, || {
                        openat(
                            &dir,
                            leaf.as_os_str(),
                            OFlag::O_CREAT
                                | OFlag::O_EXCL
                                | OFlag::O_WRONLY
                                | OFlag::O_NOFOLLOW
                                | OFlag::O_CLOEXEC,
                            Mode::from_bits_truncate(0o600),
                        )
                    })?
                    .map_err(|e| self.io_err(&raw, "create", e))?;
                let mut file = File::from(fd);
                let mut written = 0u64;
                loop {
                    let n = match entry.read(&mut self.buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            return Err(self.bad(format!("{}: {e}", String::from_utf8_lossy(&raw))));
                        }
                    };
                    file.write_all(&self.buf[..n])
                        .map_err(|e| self.io_err(&raw, "write", e))?;
                    written += n as u64;
                    self.within_budget(self.stats.bytes + written)?;
                }
                self.stats.bytes += written;
                self.set_fd_meta(&file, &meta, &raw)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| {
                        self.bad(format!(
                            "{}: symlink without a target",
                            String::from_utf8_lossy(&raw)
                        ))
                    })?
                    .into_owned();
                self.replacing(&dir, &leaf, &raw, || {
                    symlinkat(OsStr::from_bytes(&target), &dir, leaf.as_os_str())
                })?
                .map_err(|e| self.io_err(&raw, "symlink", e))?;
                self.set_at_meta(&dir, &leaf, &meta, &raw, true)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| {
                        self.bad(format!(
                            "{}: hard link without a target",
                            String::from_utf8_lossy(&raw)
                        ))
                    })?
                    .into_owned();
                let tcomps = clean_components(&target)
                    .map_err(|r| self.unsafe_entry(&raw, format!("hard link target: {r}")))?;
                let Some((tleaf, tparents)) = tcomps.split_last() else {
                    return Err(self.unsafe_entry(&raw, "hard link to the layer root"));
                };
                let tleaf = tleaf.to_os_string();
                let tparents: Vec<OsString> = tparents.iter().map(|c| c.to_os_string()).collect();
                let tdir = match openat2(
                    &self.root,
                    &tparents.iter().collect::<PathBuf>(),
                    how_beneath(OFlag::O_DIRECTORY | OFlag::O_RDONLY),
                ) {
                    Ok(fd) => File::from(fd),
                    Err(Errno::ENOENT) if tparents.is_empty() => self
                        .root
                        .try_clone()
                        .map_err(|e| self.io_err(&raw, "dup", e))?,
                    Err(Errno::ELOOP) | Err(Errno::EXDEV) => {
                        return Err(
                            self.unsafe_entry(&raw, "hard link target goes through a symlink")
                        );
                    }
                    Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => {
                        return Err(self
                            .unsafe_entry(&raw, "hard link target does not exist in this layer"));
                    }
                    Err(e) => return Err(self.io_err(&raw, "open link target dir", e)),
                };
                match fstatat(&tdir, tleaf.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits() => {
                        return Err(self.unsafe_entry(&raw, "hard link to a directory"));
                    }
                    Ok(_) => {}
                    Err(_) => {
                        return Err(self
                            .unsafe_entry(&raw, "hard link target does not exist in this layer"));
                    }
                }
                if tparents == parents && tleaf == leaf {
                    return Ok(()); // a link to itself: nothing to do
                }
                self.replacing(&dir, &leaf, &raw, || {
                    linkat(
                        &tdir,
                        tleaf.as_os_str(),
                        &dir,
                        leaf.as_os_str(),
                        AtFlags::empty(),
                    )
                })?
                .map_err(|e| self.io_err(&raw, "link", e))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let sflag = match kind {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                self.replacing(&dir, &leaf, &raw, || {
                    mknodat(
                        &dir,
                        leaf.as_os_str(),
                        sflag,
                        Mode::from_bits_truncate(meta.mode),
                        makedev(u64::from(major), u64::from(minor)),
                    )
                })?
                .map_err(|e| self.io_err(&raw, "mknod", e))?;
                self.set_at_meta(&dir, &leaf, &meta, &raw, false)?;
            }
            other => {
                return Err(self.bad(format!(
                    "{}: unsupported tar entry type {other:?}",
                    String::from_utf8_lossy(&raw)
                )));
            }
        }
        Ok(())
    }

    fn mkdir(&mut self, dir: &File, leaf: &OsStr, raw: &[u8]) -> Result<()> {
        mkdirat(dir, leaf, Mode::from_bits_truncate(0o700))
            .map_err(|e| self.io_err(raw, "mkdir", e))
    }

    fn set_fd_meta(&self, f: &File, meta: &Meta, raw: &[u8]) -> Result<()> {
        // A new file already has our ids: no directory is setgid while we unpack (directory
        // modes are applied at the end), so skip the syscall when the entry wants exactly those.
        if meta.uid != self.euid || meta.gid != self.egid {
            fchown(
                f,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )
            .map_err(|e| self.io_err(raw, "chown", e))?;
        }
        for (k, v) in &meta.xattrs {
            xattr::FileExt::set_xattr(f, k, v).map_err(|e| self.io_err(raw, "set xattr", e))?;
        }
        // After chown, which clears setuid/setgid.
        fchmod(f, Mode::from_bits_truncate(meta.mode)).map_err(|e| self.io_err(raw, "chmod", e))?;
        futimens(f, &meta.mtime, &meta.mtime).map_err(|e| self.io_err(raw, "set mtime", e))
    }

    /// Ownership, xattrs and mtime of a symlink or device node, by name, never following it.
    fn set_at_meta(
        &self,
        dir: &File,
        leaf: &OsStr,
        meta: &Meta,
        raw: &[u8],
        symlink: bool,
    ) -> Result<()> {
        fchownat(
            dir,
            leaf,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.io_err(raw, "chown", e))?;
        if !meta.xattrs.is_empty() {
            // lsetxattr through the directory fd's /proc entry: the leaf is not followed.
            let path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(leaf);
            for (k, v) in &meta.xattrs {
                xattr::set(&path, k, v).map_err(|e| self.io_err(raw, "set xattr", e))?;
            }
        }
        if !symlink {
            // Device nodes and fifos: chmod through an O_PATH-free route is fchmodat, which
            // follows symlinks; the leaf was just created by us as a node, not a symlink.
            nix::sys::stat::fchmodat(
                dir,
                leaf,
                Mode::from_bits_truncate(meta.mode),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| self.io_err(raw, "chmod", e))?;
        }
        utimensat(
            dir,
            leaf,
            &meta.mtime,
            &meta.mtime,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| self.io_err(raw, "set mtime", e))
    }

    /// Directory ownership, modes and mtimes, deepest first so setting a child's time does not
    /// disturb its parent's. Each is reopened without following symlinks: a later entry may have
    /// replaced it, and then it is skipped.
    fn finish_dirs(&mut self) {
        let mut dirs = std::mem::take(&mut self.dirs);
        // Last entry for a path wins.
        let mut seen: HashMap<PathBuf, usize> = HashMap::new();
        for (i, (p, _)) in dirs.iter().enumerate() {
            seen.insert(p.clone(), i);
        }
        let mut keep: Vec<usize> = seen.into_values().collect();
        keep.sort_by_key(|&i| std::cmp::Reverse(dirs[i].0.components().count()));
        for i in keep {
            let (path, meta) = &mut dirs[i];
            let Ok(fd) = openat2(
                &self.root,
                &*path,
                how_beneath(OFlag::O_DIRECTORY | OFlag::O_RDONLY),
            ) else {
                continue;
            };
            let f = File::from(fd);
            let _ = fchown(
                &f,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            );
            for (k, v) in &meta.xattrs {
                let _ = xattr::FileExt::set_xattr(&f, k, v);
            }
            let _ = fchmod(&f, Mode::from_bits_truncate(meta.mode));
            let _ = futimens(&f, &meta.mtime, &meta.mtime);
        }
    }
}

/// Removes `name` under `dir` and everything below it, never following symlinks.
pub(crate) fn remove_dir_all_at(dir: &impl AsFd, name: &OsStr) -> io::Result<()> {
    let fd: OwnedFd = openat2(
        dir.as_fd(),
        name,
        how_beneath(OFlag::O_DIRECTORY | OFlag::O_RDONLY),
    )?;
    let sub = File::from(fd);
    let names: Vec<(OsString, bool)> = {
        let d = nix::dir::Dir::from_fd(sub.try_clone()?.into())?;
        let mut v = Vec::new();
        for e in d.into_iter() {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n == b"." || n == b".." {
                continue;
            }
            let is_dir = matches!(e.file_type(), Some(nix::dir::Type::Directory));
            v.push((OsString::from_vec(n.to_vec()), is_dir));
        }
        v
    };
    for (n, is_dir) in names {
        if is_dir {
            remove_dir_all_at(&sub, &n)?;
        } else {
            unlinkat(&sub, n.as_os_str(), UnlinkatFlags::NoRemoveDir)?;
        }
    }
    unlinkat(dir.as_fd(), name, UnlinkatFlags::RemoveDir)?;
    Ok(())
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;
