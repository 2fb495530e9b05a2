//! The limits AWS sets on EBS volumes, kept in one table.
//!
//! Source: "Amazon EBS volume types" in the Amazon EBS User Guide, and the CreateVolume API
//! reference (values as of November 2026, see `shared/AWS-FACTS.md`). AWS raises these limits
//! over time: change them here and nowhere else. The CRD's CEL rules and the controller's own
//! checks are both generated from this table.

use super::ebs_volume::VolumeType;

/// An inclusive range of whole numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub min: i64,
    pub max: i64,
}

impl Range {
    pub const fn new(min: i64, max: i64) -> Self {
        Self { min, max }
    }

    pub fn contains(&self, value: i64) -> bool {
        (self.min..=self.max).contains(&value)
    }
}

/// What one volume type allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeLimits {
    pub size_gib: Range,
    /// Provisioned IOPS, when the type takes them.
    pub iops: Option<Range>,
    /// Most IOPS per provisioned GiB, when the type takes IOPS.
    pub max_iops_per_gib: Option<i64>,
    /// IOPS a volume of this type gets whatever its size (gp3's baseline), so the per-GiB
    /// ratio only bounds IOPS above this value.
    pub iops_baseline: i64,
    /// Provisioned throughput in MiB/s, when the type takes it.
    pub throughput_mibps: Option<Range>,
    /// Whether io1/io2 Multi-Attach is possible.
    pub multi_attach: bool,
}

/// Throughput may be at most a quarter of the provisioned IOPS (gp3), in MiB/s per IOPS.
pub const MAX_THROUGHPUT_PER_IOPS_DIVISOR: i64 = 4;

/// The IOPS a gp3 volume has when none are provisioned.
pub const GP3_DEFAULT_IOPS: i64 = 3000;

/// The throughput a gp3 volume has when none is provisioned.
pub const GP3_DEFAULT_THROUGHPUT_MIBPS: i64 = 125;

/// Most instances one Multi-Attach volume can be attached to.
pub const MAX_MULTI_ATTACH_INSTANCES: usize = 16;

/// Most tags AWS allows on one resource.
pub const AWS_MAX_TAGS: usize = 50;

/// Tags the controller itself puts on every resource it creates (see `aws::tags`).
pub const OWNERSHIP_TAGS: usize = 5;

/// Most tags a user may ask for: what AWS allows after our own ownership tags.
pub const MAX_USER_TAGS: usize = AWS_MAX_TAGS - OWNERSHIP_TAGS;

/// Most modifications AWS accepts for one volume in a rolling 24 hours.
pub const MAX_MODIFICATIONS_PER_DAY: usize = 4;

pub fn volume_limits(volume_type: VolumeType) -> VolumeLimits {
    let none = VolumeLimits {
        size_gib: Range::new(1, 16384),
        iops: None,
        max_iops_per_gib: None,
        iops_baseline: 0,
        throughput_mibps: None,
        multi_attach: false,
    };
    match volume_type {
        VolumeType::Gp3 => VolumeLimits {
            size_gib: Range::new(1, 65536),
            iops: Some(Range::new(3000, 80000)),
            max_iops_per_gib: Some(500),
            iops_baseline: GP3_DEFAULT_IOPS,
            throughput_mibps: Some(Range::new(125, 2000)),
            ..none
        },
        VolumeType::Gp2 => none,
        VolumeType::Io1 => VolumeLimits {
            size_gib: Range::new(4, 16384),
            iops: Some(Range::new(100, 64000)),
            max_iops_per_gib: Some(50),
            multi_attach: true,
            ..none
        },
        VolumeType::Io2 => VolumeLimits {
            size_gib: Range::new(4, 65536),
            iops: Some(Range::new(100, 256000)),
            max_iops_per_gib: Some(1000),
            multi_attach: true,
            ..none
        },
        VolumeType::St1 | VolumeType::Sc1 => VolumeLimits {
            size_gib: Range::new(125, 16384),
            ..none
        },
        VolumeType::Standard => VolumeLimits {
            size_gib: Range::new(1, 1024),
            ..none
        },
    }
}

/// Why a combination of volume settings is not one AWS accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitViolation {
    #[error("sizeGiB {size} is outside {min}..{max} for {volume_type}")]
    Size {
        volume_type: VolumeType,
        size: i64,
        min: i64,
        max: i64,
    },
    #[error("{volume_type} does not take iops")]
    IopsNotAllowed { volume_type: VolumeType },
    #[error("{volume_type} requires iops")]
    IopsRequired { volume_type: VolumeType },
    #[error("iops {iops} is outside {min}..{max} for {volume_type}")]
    Iops {
        volume_type: VolumeType,
        iops: i64,
        min: i64,
        max: i64,
    },
    #[error("iops {iops} is more than {per_gib} per GiB of a {size} GiB {volume_type} volume")]
    IopsPerGib {
        volume_type: VolumeType,
        iops: i64,
        size: i64,
        per_gib: i64,
    },
    #[error("{volume_type} does not take throughputMiBps (only gp3 does)")]
    ThroughputNotAllowed { volume_type: VolumeType },
    #[error("throughputMiBps {throughput} is outside {min}..{max} for {volume_type}")]
    Throughput {
        volume_type: VolumeType,
        throughput: i64,
        min: i64,
        max: i64,
    },
    #[error("throughputMiBps {throughput} is more than a quarter of {iops} IOPS")]
    ThroughputPerIops { throughput: i64, iops: i64 },
    #[error("Multi-Attach is only possible on io1 and io2, not {volume_type}")]
    MultiAttachNotAllowed { volume_type: VolumeType },
}

/// Desired settings of a volume, as far as they are known (size may come from a snapshot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeShape {
    pub volume_type: VolumeType,
    pub size_gib: Option<i64>,
    pub iops: Option<i64>,
    pub throughput_mibps: Option<i64>,
    pub multi_attach: bool,
}

/// Checks a volume's settings against the table. The CRD's CEL rules make the same checks
/// at admission; this is for values the schema cannot see (a size taken from a snapshot,
/// an adopted volume) and for objects admitted before a limit changed.
pub fn check_volume(shape: &VolumeShape) -> Result<(), LimitViolation> {
    let volume_type = shape.volume_type;
    let limits = volume_limits(volume_type);
    if let Some(size) = shape.size_gib
        && !limits.size_gib.contains(size)
    {
        return Err(LimitViolation::Size {
            volume_type,
            size,
            min: limits.size_gib.min,
            max: limits.size_gib.max,
        });
    }
    match (limits.iops, shape.iops) {
        (None, Some(_)) => return Err(LimitViolation::IopsNotAllowed { volume_type }),
        (Some(_), None) if volume_type.requires_iops() => {
            return Err(LimitViolation::IopsRequired { volume_type });
        }
        (Some(range), Some(iops)) => {
            if !range.contains(iops) {
                return Err(LimitViolation::Iops {
                    volume_type,
                    iops,
                    min: range.min,
                    max: range.max,
                });
            }
            if let (Some(per_gib), Some(size)) = (limits.max_iops_per_gib, shape.size_gib)
                && iops > limits.iops_baseline.max(per_gib * size)
            {
                return Err(LimitViolation::IopsPerGib {
                    volume_type,
                    iops,
                    size,
                    per_gib,
                });
            }
        }
        _ => {}
    }
    match (limits.throughput_mibps, shape.throughput_mibps) {
        (None, Some(_)) => return Err(LimitViolation::ThroughputNotAllowed { volume_type }),
        (Some(range), Some(throughput)) => {
            if !range.contains(throughput) {
                return Err(LimitViolation::Throughput {
                    volume_type,
                    throughput,
                    min: range.min,
                    max: range.max,
                });
            }
            let iops = shape.iops.unwrap_or(limits.iops_baseline);
            if throughput > iops / MAX_THROUGHPUT_PER_IOPS_DIVISOR {
                return Err(LimitViolation::ThroughputPerIops { throughput, iops });
            }
        }
        _ => {}
    }
    if shape.multi_attach && !limits.multi_attach {
        return Err(LimitViolation::MultiAttachNotAllowed { volume_type });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(volume_type: VolumeType) -> VolumeShape {
        VolumeShape {
            volume_type,
            size_gib: Some(100),
            iops: None,
            throughput_mibps: None,
            multi_attach: false,
        }
    }

    #[test]
    fn a_plain_gp3_volume_is_within_limits() {
        assert_eq!(check_volume(&shape(VolumeType::Gp3)), Ok(()));
    }

    #[test]
    fn gp3_gets_its_baseline_iops_on_a_tiny_volume() {
        let s = VolumeShape {
            size_gib: Some(1),
            iops: Some(3000),
            ..shape(VolumeType::Gp3)
        };
        assert_eq!(check_volume(&s), Ok(()));
    }

    #[test]
    fn gp3_iops_above_baseline_are_bounded_per_gib() {
        let s = VolumeShape {
            size_gib: Some(10),
            iops: Some(6000),
            ..shape(VolumeType::Gp3)
        };
        assert!(matches!(
            check_volume(&s),
            Err(LimitViolation::IopsPerGib { .. })
        ));
    }

    #[test]
    fn io1_without_iops_is_rejected() {
        assert_eq!(
            check_volume(&shape(VolumeType::Io1)),
            Err(LimitViolation::IopsRequired {
                volume_type: VolumeType::Io1
            })
        );
    }

    #[test]
    fn iops_on_types_that_take_none_are_rejected() {
        for t in [
            VolumeType::Gp2,
            VolumeType::St1,
            VolumeType::Sc1,
            VolumeType::Standard,
        ] {
            let s = VolumeShape {
                size_gib: Some(500),
                iops: Some(3000),
                ..shape(t)
            };
            assert_eq!(
                check_volume(&s),
                Err(LimitViolation::IopsNotAllowed { volume_type: t })
            );
        }
    }

    #[test]
    fn throughput_is_only_for_gp3_and_bounded_by_iops() {
        let io2 = VolumeShape {
            iops: Some(1000),
            throughput_mibps: Some(200),
            ..shape(VolumeType::Io2)
        };
        assert!(matches!(
            check_volume(&io2),
            Err(LimitViolation::ThroughputNotAllowed { .. })
        ));
        let gp3 = VolumeShape {
            throughput_mibps: Some(1000),
            ..shape(VolumeType::Gp3)
        };
        assert_eq!(
            check_volume(&gp3),
            Err(LimitViolation::ThroughputPerIops {
                throughput: 1000,
                iops: 3000
            })
        );
    }

    #[test]
    fn sizes_follow_each_types_range() {
        let small_st1 = VolumeShape {
            size_gib: Some(100),
            ..shape(VolumeType::St1)
        };
        assert!(matches!(
            check_volume(&small_st1),
            Err(LimitViolation::Size { min: 125, .. })
        ));
        let big_standard = VolumeShape {
            size_gib: Some(2000),
            ..shape(VolumeType::Standard)
        };
        assert!(matches!(
            check_volume(&big_standard),
            Err(LimitViolation::Size { max: 1024, .. })
        ));
    }

    #[test]
    fn multi_attach_is_for_io1_and_io2_only() {
        let gp3 = VolumeShape {
            multi_attach: true,
            ..shape(VolumeType::Gp3)
        };
        assert!(matches!(
            check_volume(&gp3),
            Err(LimitViolation::MultiAttachNotAllowed { .. })
        ));
        let io2 = VolumeShape {
            multi_attach: true,
            iops: Some(1000),
            ..shape(VolumeType::Io2)
        };
        assert_eq!(check_volume(&io2), Ok(()));
    }
}
