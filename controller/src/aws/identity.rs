//! Who the controller is in AWS for an object: its own identity, or an IAM role an
//! administrator named for the object's namespace, assumed through STS with session tags
//! (the namespace and the cluster), so that AWS itself enforces the namespace's boundary.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, future};
use aws_sdk_sts::config::{Credentials, Region};

/// A namespace's role: the role ARN and the namespace it is assumed for (the namespace is
/// a session tag, so two namespaces on one role are still two sessions).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamespaceRole {
    pub role_arn: String,
    pub namespace: String,
}

/// The AWS side of an object: the Region, and the role it acts as (`None`: the controller's
/// own identity). Clients, rate limits and observers are kept per scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub region: String,
    pub role: Option<NamespaceRole>,
}

impl Scope {
    /// The controller's own identity in `region`.
    pub fn own(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            role: None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.role {
            None => write!(f, "{}", self.region),
            Some(role) => write!(f, "{} as {}", self.region, role.role_arn),
        }
    }
}

/// The session tag keys of an assumed role (usable in the role's policies as
/// `aws:PrincipalTag/<key>`).
pub const NAMESPACE_SESSION_TAG: &str = "kubernetes-namespace";
pub const CLUSTER_SESSION_TAG: &str = "ec2-reconciler-cluster";

/// How long one assumed session lasts (the SDK refreshes it before it expires).
const SESSION_LENGTH: Duration = Duration::from_secs(3600);

/// Credentials of a namespace's role: AssumeRole with the controller's own credentials,
/// tagged with the namespace and cluster. The SDK's identity cache keeps them until shortly
/// before they expire.
#[derive(Debug)]
pub struct AssumedRole {
    sts: aws_sdk_sts::Client,
    role: NamespaceRole,
    cluster: String,
}

impl AssumedRole {
    pub fn new(base: &SdkConfig, region: &str, role: NamespaceRole, cluster: &str) -> Self {
        let config = aws_sdk_sts::config::Builder::from(base)
            .region(Region::new(region.to_owned()))
            .build();
        Self {
            sts: aws_sdk_sts::Client::from_conf(config),
            role,
            cluster: cluster.to_owned(),
        }
    }

    /// The session name: who asks (`ec2r-`) and for which namespace, in the characters
    /// and length AWS allows (`[\w+=,.@-]`, 2 to 64).
    fn session_name(&self) -> String {
        let name: String = format!("ec2r-{}", self.role.namespace)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .take(64)
            .collect();
        name
    }

    async fn assume(&self) -> Result<Credentials, CredentialsError> {
        let tag = |key: &str, value: &str| {
            aws_sdk_sts::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(CredentialsError::invalid_configuration)
        };
        let seconds = i32::try_from(SESSION_LENGTH.as_secs()).unwrap_or(3600);
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role.role_arn)
            .role_session_name(self.session_name())
            .duration_seconds(seconds)
            .tags(tag(NAMESPACE_SESSION_TAG, &self.role.namespace)?)
            .tags(tag(CLUSTER_SESSION_TAG, &self.cluster)?)
            .send()
            .await
            .map_err(CredentialsError::provider_error)?;
        let credentials = out.credentials.ok_or_else(|| {
            CredentialsError::unhandled("AssumeRole answered without credentials")
        })?;
        let expiry =
            SystemTime::try_from(credentials.expiration).map_err(CredentialsError::unhandled)?;
        Ok(Credentials::new(
            credentials.access_key_id,
            credentials.secret_access_key,
            Some(credentials.session_token),
            Some(expiry),
            "ec2-reconciler-namespace-role",
        ))
    }
}

impl ProvideCredentials for AssumedRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.assume())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assumed(namespace: &str) -> AssumedRole {
        let base = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        AssumedRole::new(
            &base,
            "us-east-1",
            NamespaceRole {
                role_arn: "arn:aws:iam::123456789012:role/team".to_owned(),
                namespace: namespace.to_owned(),
            },
            "prod",
        )
    }

    #[test]
    fn session_names_keep_to_the_characters_and_length_aws_allows() {
        assert_eq!(assumed("team-a").session_name(), "ec2r-team-a");
        let long = "n".repeat(63);
        assert_eq!(assumed(&long).session_name().len(), 64);
    }

    #[test]
    fn scopes_say_which_identity_they_act_as() {
        assert_eq!(Scope::own("eu-west-1").to_string(), "eu-west-1");
        let scope = Scope {
            region: "eu-west-1".to_owned(),
            role: Some(NamespaceRole {
                role_arn: "arn:aws:iam::123456789012:role/team".to_owned(),
                namespace: "team".to_owned(),
            }),
        };
        assert_eq!(
            scope.to_string(),
            "eu-west-1 as arn:aws:iam::123456789012:role/team"
        );
    }
}
