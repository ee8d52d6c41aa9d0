//! The console's frame time with 1,000 containers (issue 10's target: ≤ 2 ms a frame).
//!
//! `cargo bench -p berth-ui --bench console`. The console modules are compiled in from
//! `ui/src/console` (the ui crate has no library target); a frame is what the event loop does
//! for one key or one refreshed list: `App::update`, then `Terminal::draw` of the `View` into a
//! ratatui `TestBackend` (layout, widgets, the buffer diff), at the usual terminal sizes.

#[allow(dead_code, unused_imports)]
#[path = "../ui/src/console/mod.rs"]
mod console;

use berth::api::{ContainerId, ContainerState, ContainerSummary, PortMapping, StatsSample};
use console::{App, Msg, Theme, View, keys::default_keymap};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::hint::black_box;

const NOW: i64 = 1_800_000_000;

/// `n` containers in the states and shapes a busy machine has.
fn containers(n: usize) -> Vec<ContainerSummary> {
    let states = [
        ContainerState::Running,
        ContainerState::Exited,
        ContainerState::Created,
        ContainerState::Running,
        ContainerState::Paused,
    ];
    (0..n)
        .map(|i| {
            let state = states[i % states.len()];
            let exited = state == ContainerState::Exited;
            ContainerSummary {
                id: ContainerId(format!("{i:08x}{}", "ab".repeat(28))),
                name: format!("service-{i:04}-{}", ["web", "db", "cache", "worker"][i % 4]),
                image: format!("registry.example:5000/team/app-{}:v{}", i % 37, i % 5),
                command: format!("/usr/local/bin/app --port {} --workers {}", 8000 + i, i % 8),
                created: NOW - 86_400 - i as i64 * 60,
                state,
                started_at: Some(NOW - 3_600 - i as i64),
                finished_at: exited.then_some(NOW - 60),
                exit_code: exited.then_some((i % 3) as i32),
                oom_killed: false,
                pid: (state == ContainerState::Running).then_some(10_000 + i as u32),
                ports: if i % 3 == 0 {
                    vec![PortMapping {
                        host_ip: Some("0.0.0.0".into()),
                        host_port: 30_000 + (i % 20_000) as u16,
                        container_port: 80,
                        protocol: "tcp".into(),
                    }]
                } else {
                    vec![]
                },
            }
        })
        .collect()
}

/// One CPU/memory sample per live container, as `ContainerStatsAll` answers; `round` moves the
/// values so every row's text changes.
fn usage(list: &[ContainerSummary], round: u64) -> Vec<StatsSample> {
    list.iter()
        .filter(|c| c.state.is_alive())
        .enumerate()
        .map(|(i, c)| StatsSample {
            id: c.id.clone(),
            cpu_percent: ((i as u64 * 7 + round * 13) % 400) as f64 / 3.0,
            memory_bytes: 10_000_000 + (i as u64 * 104_729 + round * 1_000_003) % 500_000_000,
            memory_limit: (i % 2 == 0).then_some(1 << 30),
            ..Default::default()
        })
        .collect()
}

fn app(w: u16, h: u16, list: Vec<ContainerSummary>) -> App {
    let mut app = App::new("/var/lib/berth", default_keymap(), w, h);
    app.now = NOW;
    let samples = usage(&list, 0);
    app.update(Msg::Containers(Ok(list)));
    app.update(Msg::Usage(Ok(samples)));
    app.update(Msg::Images(Ok(vec![])));
    app.update(Msg::Audit(Ok(vec![])));
    app
}

fn draw(t: &mut Terminal<TestBackend>, app: &App) {
    let theme = Theme { color: true };
    t.draw(|f| f.render_widget(View { app, theme }, f.area()))
        .expect("drawing into a TestBackend");
}

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn frames(c: &mut Criterion) {
    let list = containers(1000);
    let mut g = c.benchmark_group("console");
    for (w, h) in [(160u16, 48u16), (80, 24)] {
        // a key press: the selection moves (down the list, then back up), one frame is drawn
        let mut a = app(w, h, list.clone());
        let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
        draw(&mut t, &a);
        let mut i = 0usize;
        g.bench_function(format!("frame_1000_containers_{w}x{h}"), |b| {
            b.iter(|| {
                i += 1;
                let down = (i / 999).is_multiple_of(2);
                a.update(key(if down { KeyCode::Down } else { KeyCode::Up }));
                draw(&mut t, black_box(&a));
            })
        });
    }
    // an engine event made the console fetch the list again: take the new list (filter, sort,
    // keep the selection), then draw
    let mut a = app(160, 48, list.clone());
    let mut t = Terminal::new(TestBackend::new(160, 48)).expect("terminal");
    g.bench_function("refresh_1000_containers_160x48", |b| {
        b.iter_batched(
            || list.clone(),
            |l| {
                a.update(Msg::Containers(Ok(l)));
                draw(&mut t, black_box(&a));
            },
            BatchSize::SmallInput,
        )
    });
    // a new CPU/memory sample of every running container while the list is sorted by CPU,
    // busiest first: take the sample (re-sort, keep the selection), then draw
    let mut a = app(160, 48, list.clone());
    for _ in 0..5 {
        a.update(key(KeyCode::Char('o')));
    }
    a.update(key(KeyCode::Char('O')));
    let mut t = Terminal::new(TestBackend::new(160, 48)).expect("terminal");
    let mut round = 0u64;
    g.bench_function("usage_sample_1000_containers_cpu_sorted_160x48", |b| {
        b.iter_batched(
            || {
                round += 1;
                usage(&list, round)
            },
            |u| {
                a.update(Msg::Usage(Ok(u)));
                draw(&mut t, black_box(&a));
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
