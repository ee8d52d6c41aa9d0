//! The dispatcher's handlers, one file per part of the engine.

mod build;
pub(crate) mod container;
pub(crate) mod image;
pub(crate) mod network;
pub(crate) mod volume;
