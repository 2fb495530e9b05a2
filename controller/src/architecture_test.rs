//! The layers of ARCHITECTURE.md, enforced: a `use` (or path) that points up fails here.
//!
//! Arrows point down: main -> runtime -> reconcile -> {plan, aws, api}; aws -> the pure
//! values of plan (`plan::observed`, `plan::tags`); plan -> api only.

use std::path::{Path, PathBuf};

/// A layer's source folder and the paths its code may never name.
const RULES: &[(&str, &[&str])] = &[
    (
        "api",
        &[
            "crate::aws",
            "crate::plan",
            "crate::reconcile",
            "crate::runtime",
            "kube::Client",
            "aws_sdk",
        ],
    ),
    (
        "plan",
        &[
            "crate::aws",
            "crate::reconcile",
            "crate::runtime",
            "kube::Client",
            "kube::Api",
            "aws_sdk",
            "tokio",
        ],
    ),
    (
        "aws",
        &[
            "crate::reconcile",
            "crate::runtime",
            "crate::plan::core",
            "crate::plan::ebs_volume",
        ],
    ),
    ("reconcile", &["crate::runtime"]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every line of `layer` that names a forbidden path, as `file:line: text`.
fn violations(src: &Path, layer: &str, forbidden: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&src.join(layer), &mut files);
    assert!(!files.is_empty(), "no source files under {layer}/");
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if forbidden.iter().any(|f| code.contains(f)) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn no_layer_imports_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found: Vec<String> = RULES
        .iter()
        .flat_map(|(layer, forbidden)| violations(&src, layer, forbidden))
        .collect();
    assert!(
        found.is_empty(),
        "imports against the layering in ARCHITECTURE.md:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_finds_a_forbidden_import() {
    let dir = std::env::temp_dir().join(format!("arch-test-{}", std::process::id()));
    let layer = dir.join("plan");
    std::fs::create_dir_all(&layer).unwrap_or_default();
    std::fs::write(
        layer.join("bad.rs"),
        "use crate::aws::client::Ec2;\n// crate::runtime in a comment is fine\n",
    )
    .unwrap_or_default();
    let found = violations(&dir, "plan", &["crate::aws", "crate::runtime"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].ends_with("bad.rs:1: use crate::aws::client::Ec2;"),
        "{found:?}"
    );
}
