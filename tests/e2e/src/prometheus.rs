//! Reading Prometheus artefacts as data: the text exposition a `/metrics` endpoint serves,
//! and the metric names a PromQL expression reads. Tests compare these sets (the dashboard
//! against `/metrics`, the README against `/metrics`) instead of searching text.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};

/// One metric family of an exposition: its `# TYPE` and the label names its samples carry
/// (`le` and `quantile`, which the type implies, left out).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Family {
    pub kind: String,
    pub labels: BTreeSet<String>,
}

/// The families of a text exposition by name (the name in `# TYPE`, without the `_total`,
/// `_bucket`, `_sum` or `_count` a sample adds).
pub fn families(exposition: &str) -> Result<BTreeMap<String, Family>> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .with_context(|| format!("TYPE line without a type: {line}"))?;
            families.entry(name.to_string()).or_default().kind = kind.trim().to_string();
        }
    }
    for (sample, labels) in samples(exposition)? {
        let family = families
            .iter_mut()
            .filter(|(name, _)| family_of(&sample, name))
            .max_by_key(|(name, _)| name.len())
            .map(|(_, family)| family)
            .with_context(|| format!("sample {sample} has no # TYPE line"))?;
        family.labels.extend(
            labels
                .into_iter()
                .filter(|label| label != "le" && label != "quantile"),
        );
    }
    Ok(families)
}

/// The sample names of a text exposition (`x_total`, `x_bucket`, ...), each with the label
/// names it was seen with.
pub fn samples(exposition: &str) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut samples: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in exposition.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .with_context(|| format!("sample without a value: {line}"))?;
        let labels = samples.entry(line[..name_end].to_string()).or_default();
        if line[name_end..].starts_with('{') {
            let body = &line[name_end + 1..];
            let close = body
                .find('}')
                .with_context(|| format!("unclosed labels: {line}"))?;
            for pair in body[..close].split(',').filter(|p| !p.is_empty()) {
                let (label, _) = pair
                    .split_once('=')
                    .with_context(|| format!("label without a value in {line}"))?;
                labels.insert(label.to_string());
            }
        }
    }
    Ok(samples)
}

/// Whether a sample belongs to the family `name` (OpenMetrics suffixes).
fn family_of(sample: &str, name: &str) -> bool {
    sample == name
        || sample.strip_prefix(name).is_some_and(|suffix| {
            ["_total", "_bucket", "_sum", "_count", "_created"].contains(&suffix)
        })
}

/// PromQL words that are not metric names: aggregations (which may be followed by a
/// grouping clause rather than their parenthesis) and operator keywords.
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
];

/// PromQL words followed by a list of label names in parentheses (`by (kind)`).
const GROUPINGS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression reads: the identifiers left once strings, label
/// matchers (`{...}`), ranges (`[...]`), grouping clauses (`by (...)`) and function calls
/// are set aside. Good for the expressions dashboards hold, not a full PromQL parser: it
/// refuses what it does not understand rather than guessing.
pub fn promql_metric_names(expr: &str) -> Result<BTreeSet<String>> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // Set after `by`, `without`, `on`, ...: the parenthesis that follows lists labels.
    let mut label_list_next = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_past(&chars, i, c).with_context(|| format!("unclosed string in {expr}"))?;
        } else if c == '{' {
            i = skip_matchers(&chars, i)
                .with_context(|| format!("unclosed {{ or string in {expr}"))?;
        } else if c == '[' {
            i = skip_past(&chars, i, ']').with_context(|| format!("unclosed [ in {expr}"))?;
        } else if c == '(' && label_list_next {
            i = skip_past(&chars, i, ')').with_context(|| format!("unclosed ( in {expr}"))?;
            label_list_next = false;
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            // A grouping's label list follows its keyword at once (`by (kind)`).
            label_list_next = false;
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            let lower = word.to_ascii_lowercase();
            if GROUPINGS.contains(&lower.as_str()) {
                label_list_next = true;
            } else if next == Some(&'(') || KEYWORDS.contains(&lower.as_str()) {
                // A function or aggregation, or an operator keyword.
            } else {
                names.insert(word);
            }
        } else if c.is_ascii_digit() || c == '.' {
            // A number literal, exponents and durations included (`1e3`, `5m`).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c == '$' {
            bail!("a Grafana variable outside a range or matcher in {expr}");
        } else {
            i += 1;
        }
    }
    Ok(names)
}

/// The index just past the `}` that closes the label matchers opening at `open_at`; a `}`
/// inside a matcher's quoted value does not close them.
fn skip_matchers(chars: &[char], open_at: usize) -> Option<usize> {
    let mut i = open_at + 1;
    while i < chars.len() {
        match chars[i] {
            '}' => return Some(i + 1),
            quote @ ('"' | '\'' | '`') => i = skip_past(chars, i, quote)?,
            _ => i += 1,
        }
    }
    None
}

/// The index just past the `close` that ends what starts at `open_at`.
fn skip_past(chars: &[char], open_at: usize, close: char) -> Option<usize> {
    chars[open_at + 1..]
        .iter()
        .position(|&c| c == close)
        .map(|offset| open_at + offset + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(expr: &str) -> Result<Vec<String>> {
        Ok(promql_metric_names(expr)?.into_iter().collect())
    }

    #[test]
    fn metric_names_are_found_past_functions_groupings_matchers_and_ranges() -> Result<()> {
        assert_eq!(
            names(
                r#"histogram_quantile(0.99, sum by (le, kind) (rate(a_bucket{x!="y,z"}[$__rate_interval])))"#
            )?,
            ["a_bucket"]
        );
        assert_eq!(
            names("sum(rate(a_sum[5m])) / on (kind) group_left sum(rate(b_count[5m])) > 1e3")?,
            ["a_sum", "b_count"]
        );
        assert_eq!(names("sum without (action) (c)")?, ["c"]);
        assert_eq!(names("up and bool d offset 5m")?, ["d", "up"]);
        Ok(())
    }

    #[test]
    fn an_expression_it_cannot_read_is_refused() {
        assert!(promql_metric_names(r#"a{b="c}"#).is_err());
        assert!(promql_metric_names("a * $factor").is_err());
    }

    #[test]
    fn families_collect_their_samples_labels() -> Result<()> {
        let text = "# HELP x_total X.\n# TYPE x counter\nx_total{kind=\"A\",outcome=\"ok\"} 1\n\
                    # TYPE d histogram\nd_bucket{action=\"A\",le=\"0.5\"} 1\nd_sum{action=\"A\"} 1\n\
                    d_count{action=\"A\"} 1\n# TYPE g gauge\ng 1\n# EOF\n";
        let families = families(text)?;
        let labels =
            |name: &str| -> Vec<String> { families[name].labels.iter().cloned().collect() };
        assert_eq!(families["x"].kind, "counter");
        assert_eq!(labels("x"), ["kind", "outcome"]);
        assert_eq!(families["d"].kind, "histogram");
        assert_eq!(labels("d"), ["action"]);
        assert!(families["g"].labels.is_empty());
        assert!(samples(text)?.contains_key("d_bucket"));
        Ok(())
    }
}
