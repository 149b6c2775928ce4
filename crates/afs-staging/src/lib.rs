//! Azure Files for aci-worker.

pub mod auth;
