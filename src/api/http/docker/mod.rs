//! The Docker Engine API's JSON shapes, mapped to and from the engine's types. Pure functions,
//! each unit-tested against the shapes the docker CLI 28.2 sends and reads.

pub(crate) mod container;
pub(crate) mod event;
pub(crate) mod exec;
pub(crate) mod image;
pub(crate) mod network;
pub(crate) mod stats;
pub(crate) mod system;
pub(crate) mod volume;

use std::collections::BTreeMap;

/// A `filters` query parameter: `{"status":{"running":true}}` (modern clients) or
/// `{"status":["running"]}` (old ones), as key → values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
            return Ok(Self::default());
        };
        let v: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| format!("invalid filters {raw:?}: {e}"))?;
        let obj = v
            .as_object()
            .ok_or_else(|| format!("invalid filters {raw:?}: not an object"))?;
        let mut out = BTreeMap::new();
        for (k, vals) in obj {
            let list: Vec<String> = match vals {
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(true))
                    .map(|(s, _)| s.clone())
                    .collect(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|s| {
                        s.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| format!("invalid filter value for {k}: {s}"))
                    })
                    .collect::<Result<_, _>>()?,
                serde_json::Value::String(s) => vec![s.clone()],
                other => return Err(format!("invalid filter value for {k}: {other}")),
            };
            out.insert(k.clone(), list);
        }
        Ok(Self(out))
    }

    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    /// Refuse keys this endpoint does not understand (Docker does the same, with 400).
    pub fn only(&self, known: &[&str]) -> Result<(), String> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(format!("invalid filter '{k}'")),
            None => Ok(()),
        }
    }

    /// True when the key is absent, or `pred` holds for one of its values.
    pub fn any(&self, key: &str, pred: impl Fn(&str) -> bool) -> bool {
        let vals = self.get(key);
        vals.is_empty() || vals.iter().any(|v| pred(v))
    }
}

/// Docker's boolean query parameters: `1`, `true`, `True` are true; absent is false.
pub(crate) fn truthy(v: Option<&str>) -> bool {
    matches!(v, Some(s) if !matches!(s, "" | "0" | "false" | "False" | "FALSE"))
}

/// Unix nanoseconds as RFC 3339 with nanoseconds (Docker's timestamps); 0 is Go's zero time.
pub(crate) fn rfc3339_nanos(nanos: i64) -> String {
    if nanos == 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos as i128)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

/// Unix seconds as RFC 3339.
pub(crate) fn rfc3339_secs(secs: Option<i64>) -> String {
    rfc3339_nanos(secs.map_or(0, |s| s.saturating_mul(1_000_000_000)))
}

/// RFC 3339 text to unix seconds.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// A Docker time parameter (`since`, `until`): unix seconds with an optional fraction
/// (`1700000000.5`), or RFC 3339. Returns unix nanoseconds.
pub(crate) fn parse_time_param(s: &str) -> Result<i64, String> {
    let out_of_range = || format!("invalid time {s:?}: out of range");
    if let Some(secs) = parse_rfc3339(s) {
        return secs.checked_mul(1_000_000_000).ok_or_else(out_of_range);
    }
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let whole: i64 = whole
        .parse()
        .map_err(|_| format!("invalid time {s:?}: expected unix seconds or RFC 3339"))?;
    let mut nanos = 0i64;
    if !frac.is_empty() {
        if frac.len() > 9 || !frac.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("invalid time {s:?}"));
        }
        nanos = format!("{frac:0<9}").parse().unwrap_or(0);
    }
    whole
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(nanos))
        .ok_or_else(out_of_range)
}

/// Go's `units.HumanDuration`, which `docker ps` shows in STATUS ("Up 5 minutes").
pub(crate) fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match s {
        0 => "Less than a second".into(),
        1..=59 => plural(s, "second"),
        60..=119 => "About a minute".into(),
        _ if s < 46 * 60 => plural(s / 60, "minute"),
        _ if s < 90 * 60 => "About an hour".into(),
        _ if s < 48 * 3600 => plural(s / 3600, "hour"),
        _ if s < 7 * 2 * 86400 => plural(s / 86400, "day"),
        _ if s < 30 * 3 * 86400 => plural(s / (7 * 86400), "week"),
        _ if s < 365 * 2 * 86400 => plural(s / (30 * 86400), "month"),
        _ => plural(s / (365 * 86400), "year"),
    }
}

/// Now, unix seconds.
pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Now, unix nanoseconds.
pub(crate) fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// A map of `k=v` labels as Docker's `{"k": "v"}`.
pub(crate) fn labels_json(labels: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_params_parse_and_out_of_range_ones_are_errors_not_overflows() {
        assert_eq!(
            parse_time_param("1700000000.5"),
            Ok(1_700_000_000_500_000_000)
        );
        assert_eq!(parse_time_param("10"), Ok(10_000_000_000));
        assert_eq!(parse_time_param("1970-01-01T00:00:02Z"), Ok(2_000_000_000));
        // Found by the API fuzz target: seconds past i64 nanoseconds (year 2262).
        for s in [
            "17000000050.",
            "9999999999999",
            "9999-12-31T23:59:59Z",
            "-9999999999999",
        ] {
            let e = parse_time_param(s).expect_err(s);
            assert!(e.contains("out of range"), "{s}: {e}");
        }
        assert!(parse_time_param("soon").is_err());
    }

    #[test]
    fn filters_accept_both_wire_forms() {
        let modern = Filters::parse(Some(
            r#"{"type":{"container":true},"event":{"start":true,"die":true}}"#,
        ))
        .unwrap();
        let old =
            Filters::parse(Some(r#"{"type":["container"],"event":["die","start"]}"#)).unwrap();
        assert_eq!(modern, old);
        assert_eq!(modern.get("type"), ["container"]);
        assert!(modern.any("type", |t| t == "container"));
        assert!(!modern.any("type", |t| t == "image"));
        assert!(modern.any("label", |_| false), "absent key matches");
        assert_eq!(Filters::parse(None).unwrap(), Filters::default());
        assert_eq!(Filters::parse(Some("")).unwrap(), Filters::default());
        assert!(Filters::parse(Some("[1]")).is_err());
        assert!(Filters::parse(Some("{\"a\":[1]}")).is_err());
        assert_eq!(
            modern.only(&["type"]).unwrap_err(),
            "invalid filter 'event'"
        );
    }

    #[test]
    fn booleans_and_times_parse_like_docker() {
        assert!(truthy(Some("1")) && truthy(Some("true")) && truthy(Some("True")));
        assert!(!truthy(Some("0")) && !truthy(Some("false")) && !truthy(None));
        assert_eq!(
            parse_time_param("1700000000").unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(
            parse_time_param("1700000000.5").unwrap(),
            1_700_000_000_500_000_000
        );
        assert_eq!(
            parse_time_param("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000_000_000
        );
        assert!(parse_time_param("yesterday").is_err());
        assert_eq!(
            rfc3339_nanos(1_700_000_000_000_000_001),
            "2023-11-14T22:13:20.000000001Z"
        );
        assert_eq!(rfc3339_secs(None), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn durations_read_like_docker_ps() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(5 * 60), "5 minutes");
        assert_eq!(human_duration(60 * 60), "About an hour");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(21 * 86400), "3 weeks");
        assert_eq!(human_duration(100 * 86400), "3 months");
        assert_eq!(human_duration(800 * 86400), "2 years");
    }
}
