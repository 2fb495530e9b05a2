//! `--shard-selector`: a Kubernetes label selector every watch of every kind carries, so that
//! several controllers can split one cluster's objects by label (see the README, "Running
//! several controllers").
//!
//! The string is checked at startup, before any watch starts: a typo would otherwise show
//! only as a watch the apiserver refuses over and over, or worse, as a shard that selects
//! nothing. The grammar is the one `kubectl get -l` takes for set-based selectors:
//! requirements separated by commas, each `key`, `!key`, `key=value`, `key==value`,
//! `key!=value`, `key in (v1,v2)` or `key notin (v1,v2)`.

use kube::core::{Expression, Selector};

/// A shard selector as the apiserver will read it, normalized (one requirement after
/// another, in the order given).
pub fn parse(text: &str) -> Result<Selector, String> {
    let requirements = split_requirements(text)?;
    if requirements.is_empty() {
        return Err("the shard selector is empty: leave the flag out to watch every object".into());
    }
    requirements
        .iter()
        .map(|r| requirement(r))
        .collect::<Result<Vec<_>, _>>()
        .map(|expressions| expressions.into_iter().collect())
}

/// Commas outside parentheses separate requirements.
fn split_requirements(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0_i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(format!("unbalanced parentheses in {text:?}"));
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced parentheses in {text:?}"));
    }
    parts.push(text[start..].trim());
    if parts.iter().all(|p| p.is_empty()) {
        return Ok(Vec::new());
    }
    if let Some(empty) = parts.iter().position(|p| p.is_empty()) {
        return Err(format!("requirement {} of {text:?} is empty", empty + 1));
    }
    Ok(parts)
}

fn requirement(text: &str) -> Result<Expression, String> {
    if let Some(key) = text.strip_prefix('!') {
        return Ok(Expression::DoesNotExist(key_of(key.trim())?));
    }
    for (op, build) in [
        (
            "!=",
            Expression::NotEqual as fn(String, String) -> Expression,
        ),
        ("==", Expression::Equal),
        ("=", Expression::Equal),
    ] {
        if let Some((key, value)) = text.split_once(op) {
            return Ok(build(key_of(key.trim())?, value_of(value.trim())?));
        }
    }
    let mut words = text.splitn(2, char::is_whitespace);
    let key = key_of(words.next().unwrap_or_default())?;
    let Some(rest) = words.next().map(str::trim) else {
        return Ok(Expression::Exists(key));
    };
    let (set_op, values) = rest
        .split_once('(')
        .ok_or_else(|| format!("{text:?}: expected `in (...)`, `notin (...)` or `=`"))?;
    let values = values
        .strip_suffix(')')
        .ok_or_else(|| format!("{text:?}: the value list does not end with `)`"))?
        .split(',')
        .map(|v| value_of(v.trim()))
        .collect::<Result<_, _>>()?;
    match set_op.trim() {
        "in" => Ok(Expression::In(key, values)),
        "notin" => Ok(Expression::NotIn(key, values)),
        other => Err(format!(
            "{text:?}: unknown operator {other:?} (in, notin, =, ==, !=)"
        )),
    }
}

/// A label key: an optional DNS subdomain prefix and `/`, then a name of at most 63
/// characters.
fn key_of(key: &str) -> Result<String, String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    if !prefix_ok || name.is_empty() || !is_label_name(name) {
        return Err(format!("{key:?} is not a label key"));
    }
    Ok(key.to_owned())
}

/// A label value: empty, or a name of at most 63 characters.
fn value_of(value: &str) -> Result<String, String> {
    if value.is_empty() || is_label_name(value) {
        Ok(value.to_owned())
    } else {
        Err(format!("{value:?} is not a label value"))
    }
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters.
fn is_label_name(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    s.len() <= 63
        && s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.chars()
            .all(|c| alnum(c) || c == '-' || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(text: &str) -> String {
        parse(text).map(|s| s.to_string()).unwrap_or_else(|e| e)
    }

    #[test]
    fn set_based_and_equality_requirements_are_read_as_kubectl_reads_them() {
        assert_eq!(
            normalized("ec2.reconciler.dev/shard in (a, b)"),
            "ec2.reconciler.dev/shard in (a,b)"
        );
        assert_eq!(
            normalized("ec2.reconciler.dev/shard notin (a)"),
            "ec2.reconciler.dev/shard notin (a)"
        );
        assert_eq!(normalized("team==red, tier!=db"), "team=red,tier!=db");
        assert_eq!(normalized("shard , !legacy"), "shard,!legacy");
    }

    #[test]
    fn a_selector_the_apiserver_would_refuse_is_refused_at_startup() {
        for bad in [
            "",
            " , ",
            "a in (x",
            "a in x)",
            "a in (b) )",
            "shard is (a)",
            "-bad=x",
            "a=b c",
            "Upper.Case/key=x",
            "a,,b",
            "a=(",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = "x".repeat(64);
        assert!(parse(&format!("k={long}")).is_err());
        assert!(parse(&format!("{long}=v")).is_err());
    }
}
