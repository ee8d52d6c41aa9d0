//! Integration tests: console.
