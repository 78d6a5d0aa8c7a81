//! SPEKE 1.0 and 2.0/2.1 profiles.
