//! Bad specs are rejected at `kubectl apply` by the real kube-apiserver (schema and CEL
//! rules), each with a message that says what to fix.

use std::io::Write;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use e2e::control_plane::{self, ControlPlane};

fn plane() -> Result<&'static ControlPlane> {
    control_plane::shared()
}

/// A fresh namespace for one test.
fn namespace(prefix: &str) -> Result<String> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let out = plane()?.kubectl(&["create", "namespace", &name]).output()?;
    anyhow::ensure!(
        out.status.success(),
        "creating namespace: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(name)
}

/// Runs `kubectl apply -f -` with the manifest on stdin.
fn apply(namespace: &str, manifest: &str) -> Result<Output> {
    let mut child = plane()?
        .kubectl(&["apply", "-n", namespace, "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting kubectl")?;
    child
        .stdin
        .take()
        .context("kubectl stdin")?
        .write_all(manifest.as_bytes())?;
    Ok(child.wait_with_output()?)
}

fn manifest(kind: &str, name: &str, spec: &str) -> String {
    let spec = spec
        .trim()
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "apiVersion: ec2.reconciler.dev/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n{spec}\n"
    )
}

fn assert_accepted(namespace: &str, manifest: &str) -> Result<()> {
    let out = apply(namespace, manifest)?;
    anyhow::ensure!(
        out.status.success(),
        "expected acceptance of\n{manifest}\nbut: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn assert_rejected(namespace: &str, manifest: &str, expected: &str) -> Result<()> {
    let out = apply(namespace, manifest)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(
        !out.status.success(),
        "expected rejection of\n{manifest}\nbut it was accepted"
    );
    anyhow::ensure!(
        stderr.contains(expected),
        "rejection of\n{manifest}\nsaid\n{stderr}\nwhich lacks {expected:?}"
    );
    Ok(())
}

/// A spec is rejected when created.
fn rejected_on_create(kind: &str, spec: &str, expected: &str) -> Result<()> {
    let ns = namespace("reject")?;
    assert_rejected(&ns, &manifest(kind, "subject", spec), expected)
}

/// A spec is accepted, and the change to it is rejected.
fn rejected_on_update(kind: &str, before: &str, after: &str, expected: &str) -> Result<()> {
    let ns = namespace("immutable")?;
    assert_accepted(&ns, &manifest(kind, "subject", before))?;
    assert_rejected(&ns, &manifest(kind, "subject", after), expected)
}

const GP3: &str = "availabilityZone: us-east-1a\nsizeGiB: 100";

fn ebs(extra: &str) -> String {
    format!("{GP3}\n{extra}")
}

// --- what is accepted, so the rejections below fail for the reason they name ------------

#[test]
fn a_valid_volume_of_every_type_is_accepted() -> Result<()> {
    let ns = namespace("valid")?;
    let specs = [
        (
            "gp3",
            "volumeType: gp3\navailabilityZone: us-east-1a\nsizeGiB: 200\niops: 6000\nthroughputMiBps: 500",
        ),
        (
            "gp2",
            "volumeType: gp2\navailabilityZone: us-east-1a\nsizeGiB: 20",
        ),
        (
            "io1",
            "volumeType: io1\navailabilityZone: us-east-1a\nsizeGiB: 100\niops: 5000\nmultiAttachEnabled: true",
        ),
        (
            "io2",
            "volumeType: io2\navailabilityZone: us-east-1a\nsizeGiB: 100\niops: 64000",
        ),
        (
            "st1",
            "volumeType: st1\navailabilityZone: us-east-1a\nsizeGiB: 500",
        ),
        (
            "sc1",
            "volumeType: sc1\navailabilityZone: us-east-1a\nsizeGiB: 500",
        ),
        (
            "standard",
            "volumeType: standard\navailabilityZone: us-east-1a\nsizeGiB: 10",
        ),
        (
            "adopted",
            "volumeId: vol-0123456789abcdef0\nmanagementPolicy: ObserveOnly",
        ),
        (
            "from-snapshot",
            "availabilityZone: us-east-1a\nsnapshotId: snap-0123456789abcdef0\nencrypted: true\nkmsKeyId: alias/ebs",
        ),
    ];
    for (name, spec) in specs {
        assert_accepted(&ns, &manifest("EbsVolume", name, spec))?;
    }
    Ok(())
}

#[test]
fn sixteen_attachments_with_multi_attach_are_accepted() -> Result<()> {
    let ns = namespace("sixteen")?;
    assert_accepted(
        &ns,
        &manifest("EbsVolume", "shared", &io2_with_attachments(16)),
    )
}

fn io2_with_attachments(n: usize) -> String {
    let mut spec = String::from(
        "volumeType: io2\navailabilityZone: us-east-1a\nsizeGiB: 100\niops: 1000\nmultiAttachEnabled: true\nattachments:",
    );
    for i in 0..n {
        spec.push_str(&format!("\n- instanceId: i-{i:017x}\n  device: /dev/sdf"));
    }
    spec
}

// --- EbsVolume: rejected when created ----------------------------------------------------

#[test]
fn an_unknown_volume_type_is_rejected() -> Result<()> {
    rejected_on_create(
        "EbsVolume",
        &ebs("volumeType: gp9"),
        r#"Unsupported value: "gp9""#,
    )
}

#[test]
fn iops_on_gp2_st1_sc1_and_standard_are_rejected() -> Result<()> {
    for t in ["gp2", "st1", "sc1", "standard"] {
        let spec =
            format!("volumeType: {t}\navailabilityZone: us-east-1a\nsizeGiB: 500\niops: 3000");
        rejected_on_create(
            "EbsVolume",
            &spec,
            "iops can only be set for gp3, io1 and io2 volumes",
        )?;
    }
    Ok(())
}

#[test]
fn io1_and_io2_without_iops_are_rejected() -> Result<()> {
    for t in ["io1", "io2"] {
        rejected_on_create(
            "EbsVolume",
            &ebs(&format!("volumeType: {t}")),
            "io1 and io2 volumes require iops",
        )?;
    }
    Ok(())
}

#[test]
fn throughput_on_anything_but_gp3_is_rejected() -> Result<()> {
    rejected_on_create(
        "EbsVolume",
        &ebs("volumeType: io2\niops: 1000\nthroughputMiBps: 250"),
        "throughputMiBps can only be set for gp3 volumes",
    )
}

#[test]
fn sizes_outside_the_types_range_are_rejected() -> Result<()> {
    rejected_on_create(
        "EbsVolume",
        "availabilityZone: us-east-1a\nsizeGiB: 70000",
        "sizeGiB for gp3 must be 1 to 65536",
    )?;
    rejected_on_create(
        "EbsVolume",
        "availabilityZone: us-east-1a\nsizeGiB: 0",
        "sizeGiB for gp3 must be 1 to 65536",
    )?;
    rejected_on_create(
        "EbsVolume",
        "volumeType: st1\navailabilityZone: us-east-1a\nsizeGiB: 100",
        "sizeGiB for st1 must be 125 to 16384",
    )?;
    rejected_on_create(
        "EbsVolume",
        "volumeType: standard\navailabilityZone: us-east-1a\nsizeGiB: 2000",
        "sizeGiB for standard must be 1 to 1024",
    )
}

#[test]
fn iops_outside_the_types_range_or_ratio_are_rejected() -> Result<()> {
    rejected_on_create(
        "EbsVolume",
        &ebs("volumeType: io1\niops: 70000"),
        "iops for io1 must be 100 to 64000",
    )?;
    rejected_on_create(
        "EbsVolume",
        &ebs("iops: 2000"),
        "iops for gp3 must be 3000 to 80000",
    )?;
    rejected_on_create(
        "EbsVolume",
        "volumeType: io1\navailabilityZone: us-east-1a\nsizeGiB: 10\niops: 1000",
        "iops for io1 may be at most 50 per GiB",
    )
}

#[test]
fn throughput_outside_range_or_above_a_quarter_of_iops_is_rejected() -> Result<()> {
    rejected_on_create(
        "EbsVolume",
        &ebs("iops: 16000\nthroughputMiBps: 3000"),
        "throughputMiBps for gp3 must be 125 to 2000",
    )?;
    rejected_on_create(
        "EbsVolume",
        &ebs("throughputMiBps: 1000"),
        "throughputMiBps may be at most a quarter of iops",
    )
}

#[test]
fn multi_attach_on_anything_but_io1_and_io2_is_rejected() -> Result<()> {
    rejected_on_create(
        "EbsVolume",
        &ebs("multiAttachEnabled: true"),
        "multiAttachEnabled is only possible for io1 and io2 volumes",
    )
}

#[test]
fn more_than_one_attachment_without_multi_attach_is_rejected() -> Result<()> {
    let spec = ebs(
        "attachments:\n- instanceId: i-0123456789abcdef0\n  device: /dev/sdf\n- instanceId: i-0123456789abcdef1\n  device: /dev/sdg",
    );
    rejected_on_create(
        "EbsVolume",
        &spec,
        "attaching to more than one instance needs multiAttachEnabled",
    )
}

#[test]
fn more_than_sixteen_attachments_are_rejected() -> Result<()> {
    rejected_on_create(
        "EbsVolume",
        &io2_with_attachments(17),
        "must have at most 16 items",
    )
}

#[test]
fn a_kms_key_without_encryption_is_rejected() -> Result<()> {
    rejected_on_create(
        "EbsVolume",
        &ebs("kmsKeyId: alias/ebs"),
        "kmsKeyId needs encrypted: true",
    )
}

#[test]
fn tags_with_the_reserved_aws_prefix_are_rejected() -> Result<()> {
    rejected_on_create(
        "EbsVolume",
        &ebs("tags:\n  aws:cloudformation:stack-name: x"),
        "must not start with 'aws:'",
    )
}

#[test]
fn more_tags_than_aws_allows_after_ownership_tags_are_rejected() -> Result<()> {
    let allowed = ec2_reconciler::api::limits::MAX_USER_TAGS;
    let tags = (0..=allowed)
        .map(|i| format!("\n  key{i}: v"))
        .collect::<String>();
    rejected_on_create(
        "EbsVolume",
        &ebs(&format!("tags:{tags}")),
        &format!("must have at most {allowed} items"),
    )
}

#[test]
fn a_volume_without_zone_or_size_is_rejected() -> Result<()> {
    rejected_on_create(
        "EbsVolume",
        "sizeGiB: 10",
        "availabilityZone is required to create a volume",
    )?;
    rejected_on_create(
        "EbsVolume",
        "availabilityZone: us-east-1a",
        "sizeGiB is required to create a volume",
    )
}

// --- EbsVolume: rejected when changed ----------------------------------------------------

#[test]
fn shrinking_a_volume_is_rejected() -> Result<()> {
    rejected_on_update(
        "EbsVolume",
        GP3,
        "availabilityZone: us-east-1a\nsizeGiB: 50",
        "sizeGiB can only grow",
    )
}

#[test]
fn changing_the_availability_zone_is_rejected() -> Result<()> {
    rejected_on_update(
        "EbsVolume",
        GP3,
        "availabilityZone: us-east-1b\nsizeGiB: 100",
        "availabilityZone cannot change after creation",
    )
}

#[test]
fn changing_encryption_or_its_key_is_rejected() -> Result<()> {
    rejected_on_update(
        "EbsVolume",
        GP3,
        &ebs("encrypted: true"),
        "encrypted cannot change after creation",
    )?;
    rejected_on_update(
        "EbsVolume",
        &ebs("encrypted: true\nkmsKeyId: alias/one"),
        &ebs("encrypted: true\nkmsKeyId: alias/two"),
        "kmsKeyId cannot change after creation",
    )
}

#[test]
fn changing_snapshot_region_or_volume_id_is_rejected() -> Result<()> {
    rejected_on_update(
        "EbsVolume",
        &ebs("snapshotId: snap-0123456789abcdef0"),
        &ebs("snapshotId: snap-0123456789abcdef1"),
        "snapshotId cannot change after creation",
    )?;
    rejected_on_update(
        "EbsVolume",
        &ebs("region: us-east-1"),
        &format!("{GP3}\nregion: us-west-2"),
        "region cannot change after creation",
    )?;
    rejected_on_update(
        "EbsVolume",
        "volumeId: vol-0123456789abcdef0",
        "volumeId: vol-0123456789abcdef1",
        "volumeId cannot change after creation",
    )
}

#[test]
fn growing_a_volume_and_changing_its_performance_is_accepted() -> Result<()> {
    let ns = namespace("grow")?;
    assert_accepted(&ns, &manifest("EbsVolume", "v", GP3))?;
    assert_accepted(
        &ns,
        &manifest(
            "EbsVolume",
            "v",
            "availabilityZone: us-east-1a\nsizeGiB: 200\niops: 6000\nthroughputMiBps: 400",
        ),
    )
}

// --- AmiImage -------------------------------------------------------------------------------

const FROM_INSTANCE: &str =
    "name: web-2026-11\nsource:\n  instance:\n    instanceId: i-0123456789abcdef0";
const FROM_COPY: &str = "name: web-2026-11\nsource:\n  copy:\n    sourceImageId: ami-0123456789abcdef0\n    sourceRegion: eu-west-1\n    encrypted: true";

#[test]
fn an_ami_of_each_source_is_accepted() -> Result<()> {
    let ns = namespace("ami-valid")?;
    assert_accepted(&ns, &manifest("AmiImage", "from-instance", FROM_INSTANCE))?;
    assert_accepted(&ns, &manifest("AmiImage", "from-copy", FROM_COPY))?;
    let snapshots = "name: web-from-snapshots\nsource:\n  snapshots:\n    architecture: x86_64\n    rootDeviceName: /dev/xvda\n    blockDeviceMappings:\n    - deviceName: /dev/xvda\n      snapshotId: snap-0123456789abcdef0";
    assert_accepted(&ns, &manifest("AmiImage", "from-snapshots", snapshots))?;
    let manifest_source = "name: web-instance-store\nsource:\n  manifest:\n    imageLocation: my-bucket/images/web.manifest.xml";
    assert_accepted(&ns, &manifest("AmiImage", "from-manifest", manifest_source))
}

#[test]
fn an_ami_without_a_source_is_rejected() -> Result<()> {
    rejected_on_create("AmiImage", "name: web-2026-11", "set exactly one source")
}

#[test]
fn an_ami_with_two_sources_is_rejected() -> Result<()> {
    let spec = format!(
        "{FROM_INSTANCE}\n  copy:\n    sourceImageId: ami-0123456789abcdef0\n    sourceRegion: eu-west-1"
    );
    rejected_on_create("AmiImage", &spec, "set exactly one source")
}

#[test]
fn changing_an_amis_name_or_source_is_rejected() -> Result<()> {
    rejected_on_update(
        "AmiImage",
        FROM_INSTANCE,
        &FROM_INSTANCE.replace("web-2026-11", "web-2026-12"),
        "name cannot change after creation",
    )?;
    rejected_on_update(
        "AmiImage",
        FROM_INSTANCE,
        &FROM_INSTANCE.replace("i-0123456789abcdef0", "i-0123456789abcdef1"),
        "source cannot change after creation",
    )
}

#[test]
fn a_root_device_missing_from_the_mappings_is_rejected() -> Result<()> {
    let spec = "name: web-from-snapshots\nsource:\n  snapshots:\n    rootDeviceName: /dev/xvda\n    blockDeviceMappings:\n    - deviceName: /dev/xvdb\n      snapshotId: snap-0123456789abcdef0";
    rejected_on_create(
        "AmiImage",
        spec,
        "rootDeviceName must be one of blockDeviceMappings",
    )
}

#[test]
fn adopting_an_ami_by_id_needs_no_name_but_making_one_does() -> Result<()> {
    let ns = namespace("ami-adopt")?;
    assert_accepted(
        &ns,
        &manifest("AmiImage", "adopted", "imageId: ami-0123456789abcdef0"),
    )?;
    rejected_on_create(
        "AmiImage",
        "source:\n  instance:\n    instanceId: i-0123456789abcdef0",
        "name is required to make an image",
    )
}

/// An AMI registered from a root snapshot and one more mapping (`extra`, YAML fields of
/// the mapping after its device name), with `attributes` among the source's fields.
fn ami_mapping(extra: &str, attributes: &str) -> String {
    let extra = extra
        .lines()
        .map(|l| format!("\n      {l}"))
        .collect::<String>();
    let attributes = attributes
        .lines()
        .map(|l| format!("\n    {l}"))
        .collect::<String>();
    format!(
        "name: web-mapped\nsource:\n  snapshots:\n    rootDeviceName: /dev/xvda{attributes}\n    blockDeviceMappings:\n    - deviceName: /dev/xvda\n      snapshotId: snap-0123456789abcdef0\n    - deviceName: /dev/xvdb{extra}"
    )
}

#[test]
fn ami_mappings_obey_the_volume_limits_table_on_both_sides_of_each_edge() -> Result<()> {
    accepted_all(
        "AmiImage",
        &[
            ami_mapping("sizeGiB: 1", ""),
            ami_mapping("sizeGiB: 16384", ""),
            ami_mapping(
                "volumeType: gp3\nsizeGiB: 20\niops: 3000\nthroughputMiBps: 750",
                "",
            ),
            ami_mapping(
                "volumeType: gp3\nsizeGiB: 160\niops: 80000\nthroughputMiBps: 2000",
                "",
            ),
            ami_mapping("volumeType: io2\nsizeGiB: 4\niops: 4000", ""),
            ami_mapping("volumeType: io1\nsizeGiB: 4\niops: 100", ""),
            ami_mapping("volumeType: st1\nsizeGiB: 125", ""),
            ami_mapping("volumeType: standard\nsizeGiB: 1024", ""),
            ami_mapping("sizeGiB: 10\nencrypted: true", ""),
            ami_mapping("snapshotId: snap-0123456789abcdef1\nvolumeType: sc1", ""),
        ],
    )?;
    rejected_each(
        "AmiImage",
        &[
            (
                ami_mapping("sizeGiB: 16385", ""),
                "sizeGiB for gp2 must be 1 to 16384".into(),
            ),
            (
                ami_mapping("volumeType: io2\nsizeGiB: 4\niops: 4001", ""),
                "iops for io2 may be at most 1000 per GiB".into(),
            ),
            (
                ami_mapping("volumeType: io1\nsizeGiB: 10", ""),
                "io1 and io2 volumes require iops".into(),
            ),
            (
                ami_mapping("volumeType: gp3\nsizeGiB: 20\niops: 2999", ""),
                "iops for gp3 must be 3000 to 80000".into(),
            ),
            (
                ami_mapping(
                    "volumeType: gp3\nsizeGiB: 20\niops: 3000\nthroughputMiBps: 751",
                    "",
                ),
                "throughputMiBps may be at most a quarter of iops".into(),
            ),
            (
                ami_mapping("sizeGiB: 20\niops: 3000", ""),
                "iops can only be set for gp3, io1 and io2 volumes".into(),
            ),
            (
                ami_mapping(
                    "volumeType: io2\nsizeGiB: 20\niops: 3000\nthroughputMiBps: 125",
                    "",
                ),
                "throughputMiBps can only be set for gp3 volumes".into(),
            ),
            (
                ami_mapping("volumeType: st1\nsizeGiB: 124", ""),
                "sizeGiB for st1 must be 125 to 16384".into(),
            ),
            (
                ami_mapping("volumeType: standard\nsizeGiB: 1025", ""),
                "sizeGiB for standard must be 1 to 1024".into(),
            ),
            (
                ami_mapping("volumeType: gp3", ""),
                "a mapping without snapshotId is a new empty volume: it needs sizeGiB".into(),
            ),
            (
                ami_mapping("snapshotId: snap-0123456789abcdef1\nencrypted: true", ""),
                "encrypted applies only to a mapping without snapshotId".into(),
            ),
        ],
    )
}

#[test]
fn nitro_tpm_and_uefi_data_need_their_boot_modes() -> Result<()> {
    accepted_all(
        "AmiImage",
        &[
            ami_mapping(
                "sizeGiB: 8",
                "bootMode: uefi\ntpmSupport: v2.0\nimdsSupport: v2.0\nuefiData: QUJDRA==",
            ),
            ami_mapping("sizeGiB: 8", "bootMode: uefi-preferred\nuefiData: QUJD"),
            ami_mapping("sizeGiB: 8", "imdsSupport: v2.0"),
        ],
    )?;
    rejected_each(
        "AmiImage",
        &[
            (
                ami_mapping("sizeGiB: 8", "tpmSupport: v2.0"),
                "tpmSupport needs bootMode: uefi".into(),
            ),
            (
                ami_mapping("sizeGiB: 8", "bootMode: uefi-preferred\ntpmSupport: v2.0"),
                "tpmSupport needs bootMode: uefi".into(),
            ),
            (
                ami_mapping("sizeGiB: 8", "bootMode: legacy-bios\nuefiData: QUJDRA=="),
                "uefiData needs bootMode uefi or uefi-preferred".into(),
            ),
            (
                ami_mapping("sizeGiB: 8", "bootMode: uefi\nuefiData: not*base64"),
                "spec.source.snapshots.uefiData in body should match".into(),
            ),
            (
                ami_mapping("sizeGiB: 8", "imdsSupport: v1.0"),
                "Unsupported value: \"v1.0\"".into(),
            ),
        ],
    )
}

fn ami_timed_copy(minutes: &str) -> String {
    format!("{FROM_COPY}\n    completionDurationMinutes: {minutes}")
}

#[test]
fn a_time_based_copy_takes_15_minute_steps_up_to_48_hours() -> Result<()> {
    accepted_all("AmiImage", &["15", "30", "2880"].map(ami_timed_copy))?;
    rejected_each(
        "AmiImage",
        &[
            (
                ami_timed_copy("0"),
                "should be greater than or equal to 15".into(),
            ),
            (
                ami_timed_copy("20"),
                "completionDurationMinutes goes in 15-minute steps".into(),
            ),
            (
                ami_timed_copy("2895"),
                "should be less than or equal to 2880".into(),
            ),
        ],
    )
}

#[test]
fn an_encrypted_copy_cannot_be_made_public_but_an_unencrypted_one_can() -> Result<()> {
    let public = "\nlaunchPermissions:\n  public: true";
    accepted_all(
        "AmiImage",
        &[format!(
            "{}{public}",
            FROM_COPY.replace("encrypted: true", "encrypted: false")
        )],
    )?;
    rejected_on_create(
        "AmiImage",
        &format!("{FROM_COPY}{public}"),
        "an encrypted image cannot be made public",
    )
}

fn ami_selector(owner: &str) -> String {
    format!(
        "name: web-2026-11\nsource:\n  copy:\n    sourceRegion: eu-west-1\n    sourceImageSelector:\n      owners: [{}]\n      namePattern: web-*",
        quoted(owner)
    )
}

#[test]
fn every_owners_alias_of_describe_images_is_accepted_and_nothing_else() -> Result<()> {
    let owners = [
        "self",
        "amazon",
        "aws-marketplace",
        "aws-backup-vault",
        "123456789012",
    ]
    .map(ami_selector);
    accepted_all("AmiImage", &owners)?;
    let bad = [
        "aws",
        "amazon-linux",
        "12345678901",
        "1234567890123",
        "Self",
    ]
    .map(|o| {
        (
            ami_selector(o),
            pattern_mismatch("spec.source.copy.sourceImageSelector.owners[0]", o),
        )
    });
    rejected_each("AmiImage", &bad)
}

const ORGANIZATION_ARN: &str = "arn:aws:organizations::123456789012:organization/o-exampleorgid";
const OU_ARN: &str =
    "arn:aws-us-gov:organizations::123456789012:ou/o-exampleorgid/ou-ab12-cdefgh34";

fn ami_shared(field: &str, arn: &str) -> String {
    format!(
        "{FROM_INSTANCE}\nlaunchPermissions:\n  {field}: [{}]",
        quoted(arn)
    )
}

#[test]
fn organization_and_ou_arns_each_accept_only_their_own_form() -> Result<()> {
    accepted_all(
        "AmiImage",
        &[
            ami_shared("organizationArns", ORGANIZATION_ARN),
            ami_shared("organizationalUnitArns", OU_ARN),
            ami_shared(
                "organizationArns",
                "arn:aws-cn:organizations::123456789012:organization/o-a1b2c3d4e5",
            ),
        ],
    )?;
    let bad = [
        ("organizationArns", OU_ARN),
        ("organizationalUnitArns", ORGANIZATION_ARN),
        (
            "organizationArns",
            "arn:aws:organizations::123456789012:organization/o-short",
        ),
        (
            "organizationalUnitArns",
            "arn:aws:organizations::123456789012:ou/o-exampleorgid/r-ab12",
        ),
        (
            "organizationArns",
            "arn:aws:iam::123456789012:organization/o-exampleorgid",
        ),
    ]
    .map(|(field, arn)| {
        (
            ami_shared(field, arn),
            pattern_mismatch(&format!("spec.launchPermissions.{field}[0]"), arn),
        )
    });
    rejected_each("AmiImage", &bad)
}

// --- EncryptedVolumeMigration ----------------------------------------------------------------

const BY_REF: &str = "source:\n  volumeRef:\n    name: data";

#[test]
fn a_migration_without_a_source_is_rejected() -> Result<()> {
    rejected_on_create(
        "EncryptedVolumeMigration",
        "source: {}",
        "set exactly one of source.volumeRef or source.volumeId",
    )?;
    rejected_on_create(
        "EncryptedVolumeMigration",
        "keepSnapshots: true",
        "source: Required value",
    )
}

#[test]
fn a_migration_with_two_sources_is_rejected() -> Result<()> {
    rejected_on_create(
        "EncryptedVolumeMigration",
        &format!("{BY_REF}\n  volumeId: vol-0123456789abcdef0"),
        "set exactly one of source.volumeRef or source.volumeId",
    )
}

#[test]
fn a_migrations_spec_cannot_change_once_started() -> Result<()> {
    let ns = namespace("evm")?;
    let name = "encrypt-data";
    assert_accepted(&ns, &manifest("EncryptedVolumeMigration", name, BY_REF))?;
    // Before it starts, the spec may still be corrected.
    assert_accepted(
        &ns,
        &manifest(
            "EncryptedVolumeMigration",
            name,
            &format!("{BY_REF}\nkeepSnapshots: true"),
        ),
    )?;
    let started = plane()?
        .kubectl(&[
            "patch",
            "-n",
            &ns,
            "encryptedvolumemigration",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Snapshotting"}}"#,
        ])
        .output()?;
    anyhow::ensure!(
        started.status.success(),
        "marking started: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    assert_rejected(
        &ns,
        &manifest(
            "EncryptedVolumeMigration",
            name,
            &format!("{BY_REF}\nkeepSnapshots: false"),
        ),
        "the spec of a migration cannot change once it has started",
    )
}

// --- examples ----------------------------------------------------------------------------------

#[test]
fn every_example_is_accepted() -> Result<()> {
    let ns = namespace("examples")?;
    let dir = e2e::paths::repo_root().join("examples");
    let mut applied = 0;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            assert_accepted(&ns, &std::fs::read_to_string(&path)?)
                .with_context(|| path.display().to_string())?;
            applied += 1;
        }
    }
    anyhow::ensure!(
        applied >= 4,
        "only {applied} examples found in {}",
        dir.display()
    );
    Ok(())
}

// --- names of AWS things: Regions, zones and KMS keys ---------------------------------------
//
// The patterns live in `ec2_reconciler::api::common`; these are the forms AWS documents,
// in every partition, and lookalikes AWS would refuse.

/// Region names of every partition, the newest included.
const REGIONS: [&str; 12] = [
    "us-east-1",
    "us-gov-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "us-iso-east-1",
    "us-isob-east-1",
    "us-isof-south-1",
    "eu-isoe-west-1",
    "eusc-de-east-1",
    "ap-southeast-7",
    "mx-central-1",
    "il-central-1",
];

/// Not Region names: uppercase, cut short, run together, empty, a trailing dash, a zone.
const NOT_REGIONS: [&str; 8] = [
    "US-EAST-1",
    "us-east",
    "useast1",
    "",
    "us-east-1-",
    "us-east-1a",
    "use1-az1",
    "aws-global",
];

/// Zone names: Availability Zones, Local Zones and Wavelength Zones.
const ZONES: [&str; 9] = [
    "us-east-1a",
    "eusc-de-east-1a",
    "us-gov-west-1b",
    "cn-north-1a",
    "us-west-2-lax-1a",
    "us-east-1-bos-1a",
    "us-east-1-nyc-2a",
    "us-east-1-wl1-bos-wlz-1",
    "ap-northeast-1-wl1-nrt-wlz-1",
];

/// Not zone names: zone ids, a bare Region, uppercase, cut short, garbage.
const NOT_ZONES: [&str; 9] = [
    "use1-az1",
    "usw2-lax1-az1",
    "use1-wl1-bos-wlz1",
    "us-east-1",
    "US-EAST-1A",
    "us-west-2-lax-1",
    "us-east-1-wl1-bos-wlz",
    "not-a-zone",
    "",
];

const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
const MRK_ID: &str = "mrk-1234abcd12ab34cd56ef1234567890ab";
const PARTITIONS: [&str; 8] = [
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-f",
    "aws-iso-e",
    "aws-eusc",
];

/// Every documented form of a KMS key reference, in every partition.
fn kms_keys() -> Vec<String> {
    let mut keys = vec![
        KEY_ID.to_owned(),
        MRK_ID.to_owned(),
        "alias/ExampleAlias".to_owned(),
        "alias/aws/ebs".to_owned(),
        "alias/team_a/data-1".to_owned(),
    ];
    for p in PARTITIONS {
        keys.push(format!("arn:{p}:kms:us-east-2:111122223333:key/{KEY_ID}"));
        keys.push(format!(
            "arn:{p}:kms:eusc-de-east-1:111122223333:key/{MRK_ID}"
        ));
        keys.push(format!(
            "arn:{p}:kms:us-east-2:111122223333:alias/ExampleAlias"
        ));
    }
    keys
}

/// Not KMS key references AWS accepts.
fn not_kms_keys() -> Vec<String> {
    [
        "k1".to_owned(),
        KEY_ID.to_uppercase(),
        KEY_ID[..35].to_owned(),
        "mrk-1234".to_owned(),
        "ExampleAlias".to_owned(),
        "alias/".to_owned(),
        "alias/has space".to_owned(),
        format!("key/{KEY_ID}"),
        format!("arn:aws:kms:us-east-2:1111222233:key/{KEY_ID}"),
        "arn:aws:kms:us-east-2:111122223333:key/k1".to_owned(),
        format!("arn:aws:kms::111122223333:key/{KEY_ID}"),
        format!("arn:aws-moon:kms:us-east-2:111122223333:key/{KEY_ID}"),
        format!("arn:aws:s3:us-east-2:111122223333:key/{KEY_ID}"),
        "arn:aws:kms:us-east-2:111122223333:alias/".to_owned(),
    ]
    .to_vec()
}

/// A YAML scalar for any string (a JSON string is valid YAML).
fn quoted(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

/// Every spec is accepted: applied together, as objects `ok-0`, `ok-1`, ... of one namespace.
fn accepted_all(kind: &str, specs: &[String]) -> Result<()> {
    let ns = namespace("accept")?;
    let manifests = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| manifest(kind, &format!("ok-{i}"), spec))
        .collect::<Vec<_>>()
        .join("---\n");
    assert_accepted(&ns, &manifests)
}

/// Every spec is rejected, each with its own expected message: applied together, as objects
/// `bad-0`, `bad-1`, ... of one namespace, none of which may exist afterwards.
fn rejected_each(kind: &str, cases: &[(String, String)]) -> Result<()> {
    let ns = namespace("reject")?;
    let manifests = cases
        .iter()
        .enumerate()
        .map(|(i, (spec, _))| manifest(kind, &format!("bad-{i}"), spec))
        .collect::<Vec<_>>()
        .join("---\n");
    let out = apply(&ns, &manifests)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(
        !out.status.success(),
        "expected every object to be rejected, but all were accepted:\n{manifests}"
    );
    let created = plane()?
        .kubectl(&["get", kind, "-n", &ns, "-o", "name"])
        .output()?;
    anyhow::ensure!(
        created.status.success() && created.stdout.is_empty(),
        "some were accepted: {}{}",
        String::from_utf8_lossy(&created.stdout),
        String::from_utf8_lossy(&created.stderr)
    );
    for (i, (spec, expected)) in cases.iter().enumerate() {
        let object = format!("\"bad-{i}\" is invalid");
        anyhow::ensure!(
            stderr
                .lines()
                .any(|l| l.contains(&object) && l.contains(expected.as_str())),
            "the rejection of bad-{i}\n{spec}\nlacks {expected:?}:\n{stderr}"
        );
    }
    Ok(())
}

/// The apiserver's message for a value that does not match a field's pattern.
fn pattern_mismatch(path: &str, value: &str) -> String {
    format!(
        "{path}: Invalid value: {}: {path} in body should match",
        quoted(value)
    )
}

fn ami_copy(region: &str, source_region: &str, kms: Option<&str>) -> String {
    let kms = kms.map_or(String::new(), |k| format!("\n    kmsKeyId: {}", quoted(k)));
    format!(
        "region: {}\nname: web-2026-11\nsource:\n  copy:\n    sourceImageId: ami-0123456789abcdef0\n    sourceRegion: {}\n    encrypted: true{kms}",
        quoted(region),
        quoted(source_region)
    )
}

#[test]
fn regions_of_every_partition_are_accepted_by_every_kind() -> Result<()> {
    let volumes = REGIONS
        .iter()
        .map(|r| format!("region: {r}\navailabilityZone: {r}a\nsizeGiB: 10"))
        .collect::<Vec<_>>();
    accepted_all("EbsVolume", &volumes)?;
    let images = REGIONS
        .iter()
        .map(|r| ami_copy(r, r, None))
        .collect::<Vec<_>>();
    accepted_all("AmiImage", &images)?;
    let migrations = REGIONS
        .iter()
        .map(|r| format!("region: {r}\n{BY_REF}"))
        .collect::<Vec<_>>();
    accepted_all("EncryptedVolumeMigration", &migrations)
}

#[test]
fn strings_that_are_not_region_names_are_rejected_by_every_kind() -> Result<()> {
    let volumes = NOT_REGIONS
        .iter()
        .map(|r| {
            (
                format!("region: {}\nvolumeId: vol-0123456789abcdef0", quoted(r)),
                pattern_mismatch("spec.region", r),
            )
        })
        .collect::<Vec<_>>();
    rejected_each("EbsVolume", &volumes)?;
    let images = NOT_REGIONS
        .iter()
        .flat_map(|r| {
            [
                (
                    ami_copy(r, "eu-west-1", None),
                    pattern_mismatch("spec.region", r),
                ),
                (
                    ami_copy("us-east-1", r, None),
                    pattern_mismatch("spec.source.copy.sourceRegion", r),
                ),
            ]
        })
        .collect::<Vec<_>>();
    rejected_each("AmiImage", &images)?;
    let migrations = NOT_REGIONS
        .iter()
        .map(|r| {
            (
                format!("region: {}\n{BY_REF}", quoted(r)),
                pattern_mismatch("spec.region", r),
            )
        })
        .collect::<Vec<_>>();
    rejected_each("EncryptedVolumeMigration", &migrations)
}

#[test]
fn availability_local_and_wavelength_zone_names_are_accepted() -> Result<()> {
    let volumes = ZONES
        .iter()
        .map(|z| format!("availabilityZone: {z}\nsizeGiB: 10"))
        .collect::<Vec<_>>();
    accepted_all("EbsVolume", &volumes)
}

#[test]
fn zone_ids_bare_regions_and_garbage_are_rejected_as_zones() -> Result<()> {
    let volumes = NOT_ZONES
        .iter()
        .map(|z| {
            (
                format!("availabilityZone: {}\nsizeGiB: 10", quoted(z)),
                pattern_mismatch("spec.availabilityZone", z),
            )
        })
        .collect::<Vec<_>>();
    rejected_each("EbsVolume", &volumes)
}

#[test]
fn a_zone_must_be_in_the_region_named_beside_it() -> Result<()> {
    let inside = [
        ("us-east-1", "us-east-1c"),
        ("us-west-2", "us-west-2-lax-1a"),
        ("us-east-1", "us-east-1-wl1-bos-wlz-1"),
        ("eusc-de-east-1", "eusc-de-east-1b"),
    ]
    .map(|(r, z)| format!("region: {r}\navailabilityZone: {z}\nsizeGiB: 10"));
    accepted_all("EbsVolume", &inside)?;
    let outside = [
        ("us-east-1", "us-east-2a"),
        ("us-east-1", "us-east-11a"),
        ("us-west-2", "us-west-1-lax-1a"),
        ("us-gov-west-1", "us-west-1a"),
    ]
    .map(|(r, z)| {
        (
            format!("region: {r}\navailabilityZone: {z}\nsizeGiB: 10"),
            "availabilityZone must be in region".to_owned(),
        )
    });
    rejected_each("EbsVolume", &outside)
}

#[test]
fn every_documented_form_of_a_kms_key_is_accepted_by_every_kind() -> Result<()> {
    let keys = kms_keys();
    let volumes = keys
        .iter()
        .map(|k| format!("{GP3}\nencrypted: true\nkmsKeyId: {}", quoted(k)))
        .collect::<Vec<_>>();
    accepted_all("EbsVolume", &volumes)?;
    let images = keys
        .iter()
        .map(|k| ami_copy("us-east-1", "eu-west-1", Some(k)))
        .collect::<Vec<_>>();
    accepted_all("AmiImage", &images)?;
    let migrations = keys
        .iter()
        .map(|k| format!("kmsKeyId: {}\n{BY_REF}", quoted(k)))
        .collect::<Vec<_>>();
    accepted_all("EncryptedVolumeMigration", &migrations)
}

#[test]
fn anything_else_as_a_kms_key_is_rejected_by_every_kind() -> Result<()> {
    let bad = not_kms_keys();
    let volumes = bad
        .iter()
        .map(|k| {
            (
                format!("{GP3}\nencrypted: true\nkmsKeyId: {}", quoted(k)),
                pattern_mismatch("spec.kmsKeyId", k),
            )
        })
        .collect::<Vec<_>>();
    rejected_each("EbsVolume", &volumes)?;
    let images = bad
        .iter()
        .map(|k| {
            (
                ami_copy("us-east-1", "eu-west-1", Some(k)),
                pattern_mismatch("spec.source.copy.kmsKeyId", k),
            )
        })
        .collect::<Vec<_>>();
    rejected_each("AmiImage", &images)?;
    let migrations = bad
        .iter()
        .map(|k| {
            (
                format!("kmsKeyId: {}\n{BY_REF}", quoted(k)),
                pattern_mismatch("spec.kmsKeyId", k),
            )
        })
        .collect::<Vec<_>>();
    rejected_each("EncryptedVolumeMigration", &migrations)
}
