//! Push to a registry.
