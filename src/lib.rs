//! rumpnet
