//! Every list, map and string a user writes is bounded, so the apiserver can cost the CEL
//! rules and no manifest can grow without limit.

use serde_json::Value;

use super::crds;

/// Paths of user-writable schema nodes that have no bound.
fn unbounded(schema: &Value, path: &str, found: &mut Vec<String>) {
    let Some(node) = schema.as_object() else {
        return;
    };
    let has = |k: &str| node.contains_key(k);
    match node.get("type").and_then(Value::as_str) {
        Some("string") if !has("maxLength") && !has("enum") && !has("format") => {
            found.push(path.to_owned())
        }
        Some("array") if !has("maxItems") => found.push(path.to_owned()),
        Some("object") if has("additionalProperties") && !has("maxProperties") => {
            found.push(path.to_owned())
        }
        _ => {}
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            unbounded(child, &format!("{path}.{name}"), found);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = node.get(key) {
            unbounded(child, &format!("{path}[]"), found);
        }
    }
}

#[test]
fn every_spec_list_map_and_string_is_bounded() {
    let mut found = Vec::new();
    for (file, crd) in crds() {
        let crd = serde_json::to_value(&crd).unwrap_or_default();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert!(spec.is_object(), "{file} has no spec schema");
        unbounded(spec, &format!("{file}:spec"), &mut found);
    }
    assert!(found.is_empty(), "unbounded fields: {found:#?}");
}

#[test]
fn crds_in_the_repository_match_the_rust_types() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (file, crd) in crds() {
        let expected = [
            (
                root.join("crds").join(file),
                super::crd_yaml(&crd).unwrap_or_default(),
            ),
            (
                root.join("charts/ec2-reconciler/templates/crds").join(file),
                super::chart_crd_yaml(&crd).unwrap_or_default(),
            ),
        ];
        for (path, generated) in expected {
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                generated == committed,
                "{} is out of date with controller/src/api: run `make crds` and commit the result",
                path.display()
            );
        }
    }
}
