//! Thin syscall wrappers: the only place in berth where `unsafe` is allowed.
