fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if let Some(code) = berth::runtime::entry(&args) {
        std::process::exit(code);
    }
}
