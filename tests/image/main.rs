//! Integration tests: the image manager against a real `docker-registry` on 127.0.0.1
//! (`BERTH_TEST_REGISTRY`, default 127.0.0.1:5055), with fixtures built offline from
//! busybox-static and pushed with skopeo.

#[path = "../support/images.rs"]
mod images;
#[path = "../support/registry.rs"]
mod registry;
#[path = "../support/mod.rs"]
mod support;

mod archive;
mod bench;
mod bombs;
mod cli;
mod crash;
mod escapes;
mod fixtures;
mod login;
mod lying_registry;
mod pull;
mod smallfs;
mod store_ops;
