//! Integration tests: image.
