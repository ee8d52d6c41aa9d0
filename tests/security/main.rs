//! Integration tests: security.
