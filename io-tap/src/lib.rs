//! rumpnet tap backend (being written)
