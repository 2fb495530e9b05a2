//! Tags as the SDK carries them. The ownership tags and the tag diffs are pure values in
//! [`crate::plan::tags`]; re-exported here for the code that tags and sweeps.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};

pub use crate::plan::tags::*;

/// SDK tags from a map.
pub fn to_sdk_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Observed tags from SDK tags (tags without a key are dropped).
pub fn from_sdk_tags(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default())))
        .collect()
}

/// The TagSpecification that tags `resource_type` at creation.
pub fn tag_specification(
    resource_type: ResourceType,
    tags: &BTreeMap<String, String>,
) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource_type)
        .set_tags(Some(to_sdk_tags(tags)))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_specification_carries_every_tag() {
        let tags = BTreeMap::from([("team".to_owned(), "a".to_owned())]);
        let spec = tag_specification(ResourceType::Volume, &tags);
        assert_eq!(spec.resource_type(), Some(&ResourceType::Volume));
        assert_eq!(from_sdk_tags(spec.tags()), Tags::from(&tags));
    }
}
