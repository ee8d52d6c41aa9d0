//! Hot paths of the engine worth a micro-benchmark: layer unpack and seccomp compilation.
//!
//! `cargo bench -p berth --bench engine`. Unpacks go to a fresh directory on tmpfs
//! (`/dev/shm`) so the figures are berth's CPU work, not this machine's disk.

use berth::image::layout::Compression;
use berth::image::unpack::{unpack_compressed, unpack_layer};
use berth::security::CapSet;
use berth::security::seccomp::{Arch, KernelVersion, Profile};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::io::Write;

/// A layer like a distribution's: `files` files in 40 directories, sizes cycling through
/// 200 B .. 64 KiB, text-like content, plus a symlink every 16 files.
fn layer_tar(files: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs = Vec::new();
    for d in 0..40 {
        let name = format!("usr/lib/pkg-{d:02}/");
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, &name, std::io::empty()).unwrap();
        dirs.push(name);
    }
    let sizes = [200usize, 1_500, 4_096, 9_000, 20_000, 65_536];
    let words = ["alpha ", "beta ", "gamma ", "delta\n", "epsilon ", "zeta "];
    for i in 0..files {
        let size = sizes[i % sizes.len()];
        let mut data = Vec::with_capacity(size);
        let mut k = i;
        while data.len() < size {
            data.extend_from_slice(words[k % words.len()].as_bytes());
            k = k.wrapping_mul(31).wrapping_add(7);
        }
        data.truncate(size);
        let name = format!("{}f{i:05}", dirs[i % dirs.len()]);
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(size as u64);
        b.append_data(&mut h, &name, data.as_slice()).unwrap();
        if i % 16 == 0 {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            b.append_link(&mut h, format!("{name}.link"), format!("f{i:05}"))
                .unwrap();
        }
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn fresh_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-bench-unpack-")
        .tempdir_in("/dev/shm")
        .expect("a temp dir on /dev/shm")
}

fn unpack(c: &mut Criterion) {
    let tar = layer_tar(2_000);
    let gz = gzip(&tar);
    let mut g = c.benchmark_group("unpack");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(tar.len() as u64));
    g.bench_function("tar_2000_files", |b| {
        b.iter_batched(
            fresh_dir,
            |d| {
                black_box(unpack_layer(tar.as_slice(), d.path(), "bench").unwrap());
                d
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("gzip_tar_2000_files", |b| {
        b.iter_batched(
            fresh_dir,
            |d| {
                black_box(
                    unpack_compressed(gz.as_slice(), Compression::Gzip, d.path(), "bench", None)
                        .unwrap(),
                );
                d
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn seccomp(c: &mut Criterion) {
    let arch = Arch::native().expect("a supported architecture");
    let kernel = KernelVersion::running();
    let mut g = c.benchmark_group("seccomp");
    g.bench_function("compile_default_profile_docker_caps", |b| {
        b.iter(|| {
            black_box(
                Profile::default_profile()
                    .compile(arch, CapSet::docker_default(), kernel)
                    .unwrap(),
            )
        })
    });
    g.bench_function("compile_default_profile_all_caps", |b| {
        b.iter(|| {
            black_box(
                Profile::default_profile()
                    .compile(arch, CapSet::all(), kernel)
                    .unwrap(),
            )
        })
    });
    // What a container start pays on a cache miss: the default profile for Docker's 14 caps.
    g.bench_function("default_program_docker_caps", |b| {
        b.iter(|| {
            black_box(
                Profile::default_profile()
                    .compile(arch, CapSet::docker_default(), kernel)
                    .unwrap(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, unpack, seccomp);
criterion_main!(benches);
