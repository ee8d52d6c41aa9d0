//! `berth`: the terminal console for containers, with its own engine inside.
//!
//! Module map:
//! - `cli`: the command line (clap): the console by default, podman-style one-shot commands.
//! - `console`: the ratatui console (app state, keymap, views, the event loop).
#![forbid(unsafe_code)]

mod cli;
mod console;

fn main() -> std::process::ExitCode {
    cli::main()
}
