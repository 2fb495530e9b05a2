"""Tag lookups served from moto's per-resource tag table instead of a scan of the whole table.

Not an AWS behaviour: a cost. moto 5.2.5 keeps an EC2 backend's tags in one dict,
`TagBackend.tags` (resource id -> {key: value}), but reads one resource's tags
(`TaggedEC2Resource.get_tags`, moto/ec2/models/core.py) through
`describe_tags(filters={"resource-id": [id]})` (moto/ec2/models/tags.py), which copies the whole
table and matches every resource id in it against a pattern built from the id. Every tag filter
(`tag:<key>`, `tag-key`, `tag-value`) on DescribeVolumes, DescribeSnapshots, DescribeImages and
DescribeInstances, and every resource rendered in a response, does that once per resource, so one
tag-filtered DescribeVolumes costs O(volumes x tagged resources): a sweep at 500 per page took
0.9 s at 500 volumes and 64 s at 3,000 (README, "Tag lookups"), so the controller's benchmark
measured moto.

`get_tags` here reads `backend.tags.get(id)` directly: O(that resource's tags). The answer is
the one moto's scan gave, field for field and in the same order:
- the same dicts `{"resource_id", "key", "value", "resource_type"}`, resource_type from
  `EC2_PREFIX_TO_RESOURCE` ("" for an unknown prefix), in the resource's tag insertion order;
- the same table, so CreateTags, DeleteTags, tags given at creation (TagSpecifications,
  `add_tags`) and the layer's own tag changes are seen at once; moto never drops a deleted
  resource's tags from the table (DescribeTags still lists them), and a deleted resource is simply
  no longer listed by its Describe call, so no tag filter can return it; both stay as they were;
- filter semantics are untouched: `tag:<key>`, `tag-key`, `tag-value` and their wildcards are
  still evaluated by moto's own helpers (`get_filter_value`, `tag_filter_matches`) on this list;
- `.get` never inserts into the table (it is a defaultdict; moto's scan did not insert either);
- an id containing a wildcard character (`*`, `?`, `[`; no EC2 id does) and a backend without a
  dict table keep moto's own scan, since there the pattern match could differ from equality.
DescribeTags itself keeps moto's scan (it is one call answering for every resource).

Counters (for tests that count work instead of timing it), under GET /_emulator/tag-lookups:
`indexed` lookups served by the table, `scans` of the whole table (moto's describe_tags, from
DescribeTags or a fallback) and `rows_visited` (one per lookup, the table's resource count per
scan). DELETE zeroes them; so does POST /_emulator/reset.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.tags import TagBackend
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

from .. import control

_WILDCARDS = frozenset("*?[")
_orig: dict[str, Any] = {}
_counts = {"indexed": 0, "scans": 0, "rows_visited": 0}


def get_tags(self: Any) -> list[dict[str, str]]:
    rid = self.id
    if not rid:
        return []
    table = getattr(self.ec2_backend, "tags", None)
    if not isinstance(table, dict) or not isinstance(rid, str) or _WILDCARDS.intersection(rid):
        return _orig["get_tags"](self)
    _counts["indexed"] += 1
    _counts["rows_visited"] += 1
    tags = table.get(rid)
    if not tags:
        return []
    resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(rid), "")
    return [{"resource_id": rid, "key": k, "value": v, "resource_type": resource_type}
            for k, v in tags.items()]


def describe_tags(self: Any, filters: Any = None) -> list[dict[str, str]]:
    _counts["scans"] += 1
    _counts["rows_visited"] += len(self.tags)
    return _orig["describe_tags"](self, filters=filters)


def _endpoint(method: str, payload: object) -> dict:
    if method == "DELETE":
        reset()
    elif method != "GET":
        raise ValueError(f"tag-lookups takes GET or DELETE, not {method}")
    return dict(_counts)


def install() -> None:
    _orig["get_tags"] = TaggedEC2Resource.get_tags
    _orig["describe_tags"] = TagBackend.describe_tags
    TaggedEC2Resource.get_tags = get_tags
    TagBackend.describe_tags = describe_tags
    control.register("tag-lookups", _endpoint)


def reset() -> None:
    for key in _counts:
        _counts[key] = 0
