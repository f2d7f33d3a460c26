//! Extracts the first ```rust block of the README's "## Embedding" section into
//! `$OUT_DIR/snippet.rs`, which `main.rs` includes.

fn main() {
    let readme = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    println!("cargo:rerun-if-changed={readme}");
    let text = std::fs::read_to_string(readme).expect("README.md");
    let section = text
        .split_once("\n## Embedding\n")
        .expect("README has an Embedding section")
        .1;
    let code = section
        .split_once("```rust\n")
        .expect("the Embedding section has a rust block")
        .1
        .split_once("\n```")
        .expect("the block ends")
        .0;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("snippet.rs"), code).expect("write snippet.rs");
}
