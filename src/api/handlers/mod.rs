//! The dispatcher's handlers, one file per part of the engine.

mod image;
