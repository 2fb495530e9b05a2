//! `kubectl explain` says something useful about every field a user writes: each spec
//! property of the three kinds carries a description (the Rust doc comment it comes from).

use serde_json::Value;

use super::crds;

/// Paths of spec properties without a description.
fn undescribed(schema: &Value, path: &str, found: &mut Vec<String>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            let child_path = format!("{path}.{name}");
            let described = child
                .get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.trim().is_empty());
            if !described {
                found.push(child_path.clone());
            }
            undescribed(child, &child_path, found);
        }
    }
    if let Some(items) = schema.get("items") {
        undescribed(items, &format!("{path}[]"), found);
    }
}

#[test]
fn every_spec_field_of_every_kind_has_a_description() {
    let mut found = Vec::new();
    for (file, crd) in crds() {
        let crd = serde_json::to_value(&crd).unwrap_or_default();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert!(spec.is_object(), "{file} has no spec schema");
        undescribed(spec, &format!("{file}:spec"), &mut found);
    }
    assert!(
        found.is_empty(),
        "fields `kubectl explain` would show without a word: {found:#?}"
    );
}
