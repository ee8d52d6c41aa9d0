//! Unit tests of the layer unpacker with hand-made (and hostile) tars. They chown and mknod, so
//! they need root like the engine.

use super::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

/// Builds a tar, writing names raw so that hostile names (`..`, absolute) survive.
#[derive(Default)]
struct Tar {
    out: Vec<u8>,
}

impl Tar {
    fn header(
        &mut self,
        name: &str,
        kind: EntryType,
        size: u64,
        link: Option<&str>,
        mode: u32,
    ) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        {
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                gnu.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h
    }
    fn push(&mut self, mut h: tar::Header, data: &[u8]) {
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
    }
    fn file(mut self, name: &str, data: &[u8]) -> Self {
        let h = self.header(name, EntryType::Regular, data.len() as u64, None, 0o644);
        self.push(h, data);
        self
    }
    fn dir(mut self, name: &str) -> Self {
        let h = self.header(name, EntryType::Directory, 0, None, 0o755);
        self.push(h, &[]);
        self
    }
    fn symlink(mut self, name: &str, target: &str) -> Self {
        let h = self.header(name, EntryType::Symlink, 0, Some(target), 0o777);
        self.push(h, &[]);
        self
    }
    fn hardlink(mut self, name: &str, target: &str) -> Self {
        let h = self.header(name, EntryType::Link, 0, Some(target), 0o644);
        self.push(h, &[]);
        self
    }
    fn raw(mut self, h: tar::Header, data: &[u8]) -> Self {
        self.push(h, data);
        self
    }
    fn finish(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0u8, 1024));
        self.out
    }
}

struct Scene {
    _tmp: tempfile::TempDir,
    layer: PathBuf,
    outside: PathBuf,
}

fn scene() -> Scene {
    let tmp = tempfile::tempdir().unwrap();
    // layer dir two levels down, so `../..` from it is still inside the temp dir we inspect.
    let layer = tmp.path().join("a/b/layer");
    std::fs::create_dir_all(&layer).unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("victim"), b"original").unwrap();
    Scene {
        _tmp: tmp,
        layer,
        outside,
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Every file under `dir`, relative.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn assert_refused(s: &Scene, tar: Vec<u8>, entry: &str) {
    let tmp_root = s
        .layer
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let before = listing(&tmp_root);
    let err = unpack_layer(&tar[..], &s.layer, "test").expect_err("must be refused");
    match &err {
        ImageError::UnsafeEntry { entry: e, .. } => assert_eq!(e, entry, "{err}"),
        other => panic!("expected UnsafeEntry for {entry}, got {other}"),
    }
    // Nothing changed outside the layer dir.
    let after: Vec<String> = listing(&tmp_root)
        .into_iter()
        .filter(|p| !p.starts_with("a/b/layer/"))
        .collect();
    let before: Vec<String> = before
        .into_iter()
        .filter(|p| !p.starts_with("a/b/layer/"))
        .collect();
    assert_eq!(
        before, after,
        "files appeared or vanished outside the layer"
    );
    assert_eq!(
        std::fs::read(s.outside.join("victim")).unwrap(),
        b"original"
    );
}

#[test]
fn refuses_dotdot() {
    let s = scene();
    assert_refused(
        &s,
        Tar::default().file("../../escaped", b"x").finish(),
        "../../escaped",
    );
    assert_refused(
        &s,
        Tar::default().file("ok/../../x", b"x").finish(),
        "ok/../../x",
    );
}

#[test]
fn refuses_absolute() {
    let s = scene();
    let abs = format!("{}/abs", s.outside.display());
    assert_refused(&s, Tar::default().file(&abs, b"x").finish(), &abs);
}

#[test]
fn refuses_write_through_earlier_symlink() {
    let s = scene();
    let out = s.outside.display().to_string();
    let tar = Tar::default()
        .symlink("evil", &out)
        .file("evil/victim", b"pwned")
        .finish();
    assert_refused(&s, tar, "evil/victim");
    let s = scene();
    let tar = Tar::default()
        .symlink("up", "../../..")
        .file("up/outside/new", b"pwned")
        .finish();
    assert_refused(&s, tar, "up/outside/new");
    // A directory entry through a symlink, too.
    let s = scene();
    let tar = Tar::default().symlink("d", &out).dir("d/sub").finish();
    assert_refused(&s, tar, "d/sub");
}

#[test]
fn refuses_hardlinks_out() {
    let s = scene();
    let victim = format!("{}/victim", s.outside.display());
    assert_refused(&s, Tar::default().hardlink("h", &victim).finish(), "h");
    let s = scene();
    assert_refused(
        &s,
        Tar::default()
            .hardlink("h", "../../../outside/victim")
            .finish(),
        "h",
    );
    let s = scene();
    let out = s.outside.display().to_string();
    let tar = Tar::default()
        .symlink("s", &out)
        .hardlink("h", "s/victim")
        .finish();
    assert_refused(&s, tar, "h");
}

#[test]
fn refuses_whiteout_through_symlink() {
    let s = scene();
    let out = s.outside.display().to_string();
    let tar = Tar::default()
        .symlink("s", &out)
        .file("s/.wh.victim", b"")
        .finish();
    assert_refused(&s, tar, "s/.wh.victim");
}

#[test]
fn unpacks_everything_kept() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let s = scene();
    let mut t = Tar::default()
        .dir("./")
        .dir("etc")
        .file("etc/passwd", b"root:x:0:0\n");
    let mut h = t.header("bin/su", EntryType::Regular, 3, None, 0o4755);
    h.set_uid(1000);
    h.set_gid(1001);
    t = t.raw(h, b"elf");
    t = t
        .symlink("bin/sh", "/bin/busybox")
        .hardlink("bin/su2", "bin/su");
    let mut h = t.header("dev/null", EntryType::Char, 0, None, 0o666);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    t = t.raw(h, &[]);
    t = t
        .file("etc/.wh.gone", b"")
        .dir("var")
        .file("var/.wh..wh..opq", b"");
    let tar = t.finish();
    let stats = unpack_layer(&tar[..], &s.layer, "test").unwrap();
    assert_eq!(stats.bytes, 11 + 3);
    let l = &s.layer;
    assert_eq!(
        std::fs::read(l.join("etc/passwd")).unwrap(),
        b"root:x:0:0\n"
    );
    let su = std::fs::metadata(l.join("bin/su")).unwrap();
    assert_eq!((su.uid(), su.gid()), (1000, 1001));
    assert_eq!(
        su.permissions().mode() & 0o7777,
        0o4755,
        "setuid kept after chown"
    );
    assert_eq!(su.mtime(), 1_600_000_000);
    assert_eq!(
        std::fs::read_link(l.join("bin/sh")).unwrap(),
        PathBuf::from("/bin/busybox")
    );
    let su2 = std::fs::metadata(l.join("bin/su2")).unwrap();
    assert_eq!(su2.ino(), su.ino(), "hard link shares the inode");
    let null = std::fs::symlink_metadata(l.join("dev/null")).unwrap();
    assert_eq!(null.rdev(), makedev(1, 3));
    let wh = std::fs::symlink_metadata(l.join("etc/gone")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &wh.file_type()
    ));
    assert_eq!(wh.rdev(), 0, "whiteout is a 0/0 char device");
    assert!(!l.join("etc/.wh.gone").exists());
    assert_eq!(
        xattr::get(l.join("var"), OVERLAY_OPAQUE_XATTR)
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    assert!(!l.join("var/.wh..wh..opq").exists());
    let etc = std::fs::metadata(l.join("etc")).unwrap();
    assert_eq!(
        etc.mtime(),
        1_600_000_000,
        "dir mtime set after its children"
    );
}

#[test]
fn pax_xattrs_and_later_entry_replaces_earlier() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let s = scene();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_entry_type(EntryType::Regular);
    b.append_pax_extensions([
        ("SCHILY.xattr.user.note", &b"hello"[..]),
        ("SCHILY.xattr.trusted.overlay.redirect", &b"/etc"[..]),
    ])
    .unwrap();
    b.append_data(&mut h, "f", &b"v1"[..]).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_size(0);
    h.set_entry_type(EntryType::Symlink);
    h.set_mode(0o777);
    b.append_link(&mut h, "f2", "f").unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_size(2);
    h.set_mode(0o600);
    h.set_entry_type(EntryType::Regular);
    // A later entry of the same name replaces the symlink, and does not write through it.
    b.append_data(&mut h, "f2", &b"v2"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    unpack_layer(&tar[..], &s.layer, "test").unwrap();
    assert_eq!(
        xattr::get(s.layer.join("f"), "user.note")
            .unwrap()
            .as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(
        xattr::get(s.layer.join("f"), "trusted.overlay.redirect").unwrap(),
        None
    );
    assert_eq!(std::fs::read(s.layer.join("f")).unwrap(), b"v1");
    assert_eq!(std::fs::read(s.layer.join("f2")).unwrap(), b"v2");
    assert!(
        !std::fs::symlink_metadata(s.layer.join("f2"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_later_entry_of_the_same_name_replaces_whatever_is_there() {
    let s = scene();
    let out = s.outside.display().to_string();
    let tar = Tar::default()
        .file("f", b"v1")
        .file("f", b"v2")
        .symlink("s", "a")
        .symlink("s", "b")
        .dir("d")
        .file("d/child", b"c")
        .file("d", b"now a file")
        .file("t", b"was a file")
        .symlink("t", "f")
        // A symlink out, then a file of its name: the file replaces the link, nothing outside.
        .symlink("victim", &format!("{out}/victim"))
        .file("victim", b"inside")
        .finish();
    unpack_layer(&tar[..], &s.layer, "test").unwrap();
    assert_eq!(std::fs::read(s.layer.join("f")).unwrap(), b"v2");
    assert_eq!(
        std::fs::read_link(s.layer.join("s")).unwrap(),
        Path::new("b")
    );
    assert_eq!(std::fs::read(s.layer.join("d")).unwrap(), b"now a file");
    assert_eq!(
        std::fs::read_link(s.layer.join("t")).unwrap(),
        Path::new("f")
    );
    assert_eq!(std::fs::read(s.layer.join("victim")).unwrap(), b"inside");
    assert_eq!(
        std::fs::read(s.outside.join("victim")).unwrap(),
        b"original"
    );
}

#[test]
fn clean_components_rules() {
    assert_eq!(
        clean_components(b"./a//b/./c").unwrap(),
        vec!["a", "b", "c"]
    );
    assert!(clean_components(b"/a").is_err());
    assert!(clean_components(b"a/../b").is_err());
    assert!(clean_components(b"./").unwrap().is_empty());
}

#[test]
fn gnu_sparse_files_unpack_to_their_content() {
    let src = tempfile::tempdir().unwrap();
    let f = src.path().join("sparse");
    {
        use std::io::{Seek, SeekFrom};
        let mut file = File::create(&f).unwrap();
        file.write_all(b"head").unwrap();
        file.seek(SeekFrom::Start(3 << 20)).unwrap();
        file.write_all(b"tail").unwrap();
    }
    let out = std::process::Command::new("tar")
        .args(["--sparse", "--format=gnu", "-C"])
        .arg(src.path())
        .args(["-cf", "-", "sparse"])
        .output()
        .expect("GNU tar");
    assert!(out.status.success());
    let s = scene();
    unpack_layer(&out.stdout[..], &s.layer, "test").unwrap();
    assert_eq!(
        std::fs::read(s.layer.join("sparse")).unwrap(),
        std::fs::read(&f).unwrap()
    );
}

/// A small limit, so the tests need megabytes rather than gigabytes.
const SMALL_LIMIT: ExpansionLimit = ExpansionLimit {
    floor: 1 << 20,
    ratio: 200,
};

/// Unpacks `data` as a layer named "bomb" into a fresh scene under [`SMALL_LIMIT`], with its
/// compressed size given or not, expecting the refusal; the scene, to look at what is left.
fn expect_bomb_refused(
    data: &[u8],
    compression: crate::image::layout::Compression,
    compressed_size: Option<u64>,
) -> Scene {
    let s = scene();
    let res = unpack_compressed_within(
        data,
        compression,
        &s.layer,
        "bomb",
        compressed_size,
        SMALL_LIMIT,
    );
    match res {
        Err(ImageError::BadLayer { layer, reason }) => {
            assert_eq!(layer, "bomb");
            assert!(reason.contains("bomb"), "{reason}");
        }
        other => panic!("expected a BadLayer refusal, got {other:?}"),
    }
    s
}

#[test]
fn a_gzip_bomb_is_refused_once_it_expands_past_the_limit() {
    use crate::image::layout::Compression;
    use std::io::Write;
    // 16 MiB of zeros: gzip makes ~16 KiB of it (about 1000×).
    let tar = Tar::default().file("zeros", &vec![0u8; 16 << 20]).finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() * 200 < 16 << 20, "the fixture is a bomb");

    // Its compressed size unknown: the running check stops it near the floor, not at the end.
    let s = expect_bomb_refused(&gz, Compression::Gzip, None);
    let written = std::fs::metadata(s.layer.join("zeros")).unwrap().len();
    assert!(
        written < 4 << 20,
        "{written} bytes written before the refusal"
    );

    // Its compressed size known (as in a pull): refused at the entry's header, nothing written.
    let s = expect_bomb_refused(&gz, Compression::Gzip, Some(gz.len() as u64));
    assert!(!s.layer.join("zeros").exists(), "nothing of it was written");

    // The same layer under the default limit (floor 1 GiB) is an ordinary, compressible one.
    let s = scene();
    let (_, stats) = unpack_compressed(
        &gz[..],
        Compression::Gzip,
        &s.layer,
        "bomb",
        Some(gz.len() as u64),
    )
    .expect("allowed");
    assert_eq!(stats.bytes, 16 << 20);
}

#[test]
fn a_bomb_spread_over_many_files_is_refused_at_the_file_that_crosses_the_limit() {
    use crate::image::layout::Compression;
    use std::io::Write;
    // Eight files of 512 KiB of zeros: the third takes the layer past the 1 MiB floor.
    let zeros = vec![0u8; 512 << 10];
    let mut t = Tar::default();
    for i in 0..8 {
        t = t.file(&format!("z{i}"), &zeros);
    }
    let tar = t.finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let s = expect_bomb_refused(&gz, Compression::Gzip, Some(gz.len() as u64));
    assert!(s.layer.join("z1").exists());
    assert!(!s.layer.join("z2").exists(), "refused before writing z2");
}

#[test]
fn a_sparse_file_declaring_gigabytes_of_holes_is_refused() {
    use crate::image::layout::Compression;
    // An old-style GNU sparse entry: 512 bytes of data at the end of 64 GiB of holes.
    let mut h = tar::Header::new_gnu();
    {
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..6].copy_from_slice(b"sparse");
        gnu.sparse[0].set_offset((64 << 30) - 512);
        gnu.sparse[0].set_length(512);
        gnu.set_real_size(64 << 30);
    }
    h.set_entry_type(EntryType::GNUSparse);
    h.set_size(512);
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    let tar = Tar::default().raw(h, &[7u8; 512]).finish();

    let s = expect_bomb_refused(&tar, Compression::None, None);
    let size = std::fs::metadata(s.layer.join("sparse")).unwrap().len();
    assert!(size < 4 << 20, "{size} bytes written before the refusal");

    // With the layer's size known, its header is enough: refused before the file exists.
    let s = expect_bomb_refused(&tar, Compression::None, Some(tar.len() as u64));
    assert!(!s.layer.join("sparse").exists());
}
