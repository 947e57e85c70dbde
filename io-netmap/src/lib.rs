//! rumpnet netmap backend (being written)
