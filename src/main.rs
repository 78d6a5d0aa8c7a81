//! The `cpixd` command line.

fn main() {}
