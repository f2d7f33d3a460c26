//! The README's Embedding snippet, exactly as the README shows it.

include!(concat!(env!("OUT_DIR"), "/snippet.rs"));
