//! `berth`: the terminal console for containers, with its own engine inside.
//!
//! Module map:
//! - `cli`: the command line (clap): the console by default, podman-style one-shot commands.
//! - `console`: the ratatui console (app state, keymap, views, the event loop).
//!
//! Before anything else, the runtime gets the first look at the arguments: `berth runtime …`
//! (the runc-like CLI) and the hidden helper entries the engine re-executes (container monitor,
//! exec helper) must start fast, without clap or an async runtime.
#![forbid(unsafe_code)]

mod cli;
mod console;
mod stdio;

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if let Some(code) = berth::runtime::entry(&args) {
        std::process::exit(code);
    }
    cli::main()
}
