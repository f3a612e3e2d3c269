//! Embeds every fixtures/*.json template in the binary, so `events` works from any directory.
use std::fmt::Write;

fn main() {
    println!("cargo:rerun-if-changed=fixtures");
    let mut names: Vec<String> = std::fs::read_dir("fixtures")
        .expect("fixtures/ exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    let mut code = String::from("pub static EMBEDDED: &[(&str, &str)] = &[\n");
    for name in names {
        let event_type = name.trim_end_matches(".json");
        let path = format!(
            "{}/fixtures/{name}",
            std::env::var("CARGO_MANIFEST_DIR").unwrap()
        );
        writeln!(code, "    ({event_type:?}, include_str!({path:?})),").unwrap();
    }
    code.push_str("];\n");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("fixtures.rs");
    std::fs::write(out, code).unwrap();
}
