//! The image manager.
