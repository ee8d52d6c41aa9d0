//! Not a test: the pull benchmark's driver (tests/image/bench/pull-bench.sh runs it through the
//! release test binary, one fresh store per run). Ignored unless asked for.

use berth::image::{ImageStore, Reference};

/// Pulls `$BERTH_BENCH_REF` into a fresh store at `$BERTH_BENCH_ROOT`, printing the time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark driver, run by tests/image/bench/pull-bench.sh"]
async fn bench_pull_once() {
    let reference = std::env::var("BERTH_BENCH_REF").expect("BERTH_BENCH_REF");
    let root = std::env::var("BERTH_BENCH_ROOT").expect("BERTH_BENCH_ROOT");
    let t0 = std::time::Instant::now();
    let store = ImageStore::open(std::path::Path::new(&root)).unwrap();
    // A timeline of phase changes per layer, to see the critical path.
    let last = std::sync::Mutex::new(std::collections::HashMap::new());
    let progress = move |u: berth::image::ProgressUpdate| {
        let mut last = last.lock().unwrap();
        if last.insert(u.layer.clone(), u.phase) != Some(u.phase) {
            eprintln!(
                "{:>8.3} s  {}  {:?}",
                t0.elapsed().as_secs_f64(),
                u.layer.short(),
                u.phase
            );
        }
    };
    let id = store
        .pull(&Reference::parse(&reference).unwrap(), None, progress)
        .await
        .unwrap();
    eprintln!("pulled {id} in {:.3} s", t0.elapsed().as_secs_f64());
}
