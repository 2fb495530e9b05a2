//! Every end-to-end test, linked into one test binary.
//!
//! One binary rather than one per file: each binary links the AWS SDK and kube, so a dozen
//! of them cost a dozen links and gigabytes of disk. The tests of one binary share one
//! control plane (`e2e::control_plane::shared`) and isolate themselves by namespace, each
//! with its own AWS emulator and controller process.

mod admission;
mod ami_image;
mod ami_image_details;
mod ami_image_scale;
mod api_connections;
mod aws_layer;
mod bench;
mod chart_helm;
mod chart_rbac;
mod container_image;
mod controller_skeleton;
mod ebs_volume_attachments;
mod ebs_volume_lifecycle;
mod ebs_volume_safety;
mod ebs_volume_smoke;
mod examples;
mod gitops_health;
mod iam_policy;
mod leader_election;
mod migration;
mod observability;
mod observer_reads;
mod pipeline;
mod plan_command;
mod rate_deferral;
mod shards;
mod tenancy;
mod testbed;
mod write_budget;
