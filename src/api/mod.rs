//! The API layer.
