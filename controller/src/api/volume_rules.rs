//! The CEL rules that keep a volume's type, size, IOPS and throughput within what AWS
//! accepts, generated from the one limits table for every object that describes a volume:
//! an EbsVolume, and each block device mapping of an AmiImage.

use kube::core::Rule;

use super::ebs_volume::VolumeType;
use super::limits::{
    GP3_DEFAULT_IOPS, MAX_THROUGHPUT_PER_IOPS_DIVISOR, VolumeLimits, volume_limits,
};

/// The fields a rule looks at, and the type AWS gives a volume whose spec names none.
#[derive(Clone, Copy, Debug)]
pub struct VolumeFields {
    /// The type when `volumeType` is unset (`gp3` for what the controller creates, `gp2` for
    /// a block device mapping, as EC2 defaults it).
    pub default_type: VolumeType,
    /// A CEL condition under which IOPS are not required for io1 and io2 (an adopted
    /// volume keeps its own), or `None` when they always are.
    pub iops_optional_when: Option<&'static str>,
}

impl VolumeFields {
    /// The CEL expression of the volume's type.
    fn type_expr(&self) -> String {
        format!(
            "(has(self.volumeType) ? self.volumeType : '{}')",
            self.default_type.as_str()
        )
    }
}

/// Every rule on `sizeGiB`, `iops` and `throughputMiBps` for every volume type.
pub fn volume_setting_rules(fields: VolumeFields) -> Vec<Rule> {
    let ty = fields.type_expr();
    let iops_exempt = fields
        .iops_optional_when
        .map(|c| format!("{c} || "))
        .unwrap_or_default();
    let mut rules = vec![
        Rule::new(format!("!has(self.iops) || {ty} in ['gp3', 'io1', 'io2']"))
            .message("iops can only be set for gp3, io1 and io2 volumes")
            .field_path(".iops"),
        Rule::new(format!(
            "{iops_exempt}!({ty} in ['io1', 'io2']) || has(self.iops)"
        ))
        .message("io1 and io2 volumes require iops")
        .field_path(".iops"),
        Rule::new(format!("!has(self.throughputMiBps) || {ty} == 'gp3'"))
            .message("throughputMiBps can only be set for gp3 volumes")
            .field_path(".throughputMiBps"),
        Rule::new(format!(
            "{ty} != 'gp3' || !has(self.throughputMiBps) || self.throughputMiBps * {MAX_THROUGHPUT_PER_IOPS_DIVISOR} <= (has(self.iops) ? self.iops : {GP3_DEFAULT_IOPS})"
        ))
        .message("throughputMiBps may be at most a quarter of iops (gp3 has 3000 iops unless set): raise iops or lower throughput")
        .field_path(".throughputMiBps"),
    ];
    for volume_type in VolumeType::ALL {
        rules.extend(type_rules(&ty, volume_type, &volume_limits(volume_type)));
    }
    rules
}

/// A CEL expression that is true when `field` is absent or within the type's range.
fn range_rule(ty: &str, field: &str, volume_type: &str, min: i64, max: i64) -> String {
    format!(
        "{ty} != '{volume_type}' || !has(self.{field}) || (self.{field} >= {min} && self.{field} <= {max})"
    )
}

/// The rules of one volume type, from its row of the limits table.
fn type_rules(ty: &str, volume_type: VolumeType, limits: &VolumeLimits) -> Vec<Rule> {
    let t = volume_type.as_str();
    let mut rules = vec![
        Rule::new(range_rule(
            ty,
            "sizeGiB",
            t,
            limits.size_gib.min,
            limits.size_gib.max,
        ))
        .message(&*format!(
            "sizeGiB for {t} must be {} to {}",
            limits.size_gib.min, limits.size_gib.max
        ))
        .field_path(".sizeGiB"),
    ];
    if let Some(iops) = limits.iops {
        rules.push(
            Rule::new(range_rule(ty, "iops", t, iops.min, iops.max))
                .message(&*format!(
                    "iops for {t} must be {} to {}",
                    iops.min, iops.max
                ))
                .field_path(".iops"),
        );
    }
    if let Some(per_gib) = limits.max_iops_per_gib {
        let baseline = limits.iops_baseline;
        rules.push(
            Rule::new(format!(
                "{ty} != '{t}' || !has(self.iops) || !has(self.sizeGiB) || self.iops <= {baseline} || self.iops <= self.sizeGiB * {per_gib}"
            ))
            .message(&*format!("iops for {t} may be at most {per_gib} per GiB of sizeGiB: grow the volume or lower iops"))
            .field_path(".iops"),
        );
    }
    if let Some(throughput) = limits.throughput_mibps {
        rules.push(
            Rule::new(range_rule(
                ty,
                "throughputMiBps",
                t,
                throughput.min,
                throughput.max,
            ))
            .message(&*format!(
                "throughputMiBps for {t} must be {} to {}",
                throughput.min, throughput.max
            ))
            .field_path(".throughputMiBps"),
        );
    }
    rules
}
