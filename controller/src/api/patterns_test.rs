//! Every field that names a Region, an Availability Zone or a KMS key, in every kind, carries
//! the one shared pattern from `common` (the admission tests check the patterns themselves
//! against the real apiserver, with examples of every form).

use serde_json::Value;

use super::common::{AVAILABILITY_ZONE_PATTERN, KMS_KEY_PATTERN, REGION_PATTERN};
use super::crds;

/// The pattern every field of this name must carry, if it is one of the shared ones.
fn expected_pattern(field: &str) -> Option<&'static str> {
    match field {
        "region" | "sourceRegion" => Some(REGION_PATTERN),
        "availabilityZone" => Some(AVAILABILITY_ZONE_PATTERN),
        "kmsKeyId" => Some(KMS_KEY_PATTERN),
        _ => None,
    }
}

/// `(path, pattern)` of every property with one of the shared names under `schema`.
fn named_fields(schema: &Value, path: &str, found: &mut Vec<(String, Option<String>)>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            let child_path = format!("{path}.{name}");
            if expected_pattern(name).is_some() {
                let pattern = child
                    .get("pattern")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                found.push((child_path.clone(), pattern));
            }
            named_fields(child, &child_path, found);
        }
    }
    if let Some(items) = schema.get("items") {
        named_fields(items, &format!("{path}[]"), found);
    }
}

fn spec_fields() -> Vec<(String, Option<String>)> {
    let mut found = Vec::new();
    for (file, crd) in crds() {
        let crd = serde_json::to_value(&crd).unwrap_or_default();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        named_fields(spec, &format!("{file}:spec"), &mut found);
    }
    found
}

#[test]
fn every_region_zone_and_kms_key_field_carries_the_shared_pattern() {
    let wrong: Vec<_> = spec_fields()
        .into_iter()
        .filter(|(path, pattern)| {
            let field = path.rsplit('.').next().unwrap_or_default();
            pattern.as_deref() != expected_pattern(field)
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "fields without their shared pattern: {wrong:#?}"
    );
}

#[test]
fn the_shared_patterns_cover_the_fields_of_all_three_kinds() {
    let paths: Vec<String> = spec_fields().into_iter().map(|(p, _)| p).collect();
    for expected in [
        "ebsvolumes.yaml:spec.region",
        "ebsvolumes.yaml:spec.availabilityZone",
        "ebsvolumes.yaml:spec.kmsKeyId",
        "amiimages.yaml:spec.region",
        "amiimages.yaml:spec.source.copy.sourceRegion",
        "amiimages.yaml:spec.source.copy.kmsKeyId",
        "encryptedvolumemigrations.yaml:spec.region",
        "encryptedvolumemigrations.yaml:spec.kmsKeyId",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} not found among {paths:#?}"
        );
    }
}

#[test]
fn the_patterns_are_anchored_and_free_of_look_around() {
    // The apiserver matches with Go's RE2: no look-ahead or look-behind, and an unanchored
    // pattern would accept any string that merely contains a valid name.
    for pattern in [REGION_PATTERN, AVAILABILITY_ZONE_PATTERN, KMS_KEY_PATTERN] {
        assert!(
            pattern.starts_with('^') && pattern.ends_with('$'),
            "{pattern}"
        );
        assert!(!pattern.contains("(?"), "{pattern}");
        assert!(!pattern.contains(char::is_whitespace), "{pattern}");
    }
}
