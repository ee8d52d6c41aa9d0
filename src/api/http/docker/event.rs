//! `GET /events`: engine events as Docker's `{Type, Action, Actor{ID, Attributes}, scope,
//! time, timeNano}` plus the legacy `status`/`id`/`from` (kept: berth advertises API 1.44).

use super::Filters;
use crate::api::{ContainerSummary, Event, EventRecord};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Container names and images, so every container event can carry them as Docker's do
/// (the engine's events name only the id after `ContainerCreated`).
#[derive(Debug, Default)]
pub(crate) struct Names {
    containers: HashMap<String, (String, String)>,
}

impl Names {
    pub fn seed(&mut self, list: &[ContainerSummary]) {
        for c in list {
            self.containers
                .insert(c.id.0.clone(), (c.name.clone(), c.image.clone()));
        }
    }

    fn of(&self, id: &str) -> (String, String) {
        self.containers.get(id).cloned().unwrap_or_default()
    }
}

/// The filters `GET /events` understands.
pub(crate) const EVENT_FILTERS: &[&str] = &["type", "event", "container", "image", "scope"];

fn attrs(pairs: &[(&str, String)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

fn message(kind: &str, action: &str, id: &str, attributes: Value, rec: &EventRecord) -> Value {
    let mut m = json!({
        "Type": kind,
        "Action": action,
        "Actor": { "ID": id, "Attributes": attributes },
        "scope": "local",
        "time": rec.time.div_euclid(1_000_000_000),
        "timeNano": rec.time,
    });
    if kind == "container" || kind == "image" {
        m["status"] = json!(action);
        m["id"] = json!(id);
        if kind == "container"
            && let Some(img) = m["Actor"]["Attributes"].get("image").cloned()
        {
            m["from"] = img;
        }
    }
    m
}

/// The Docker events for one engine event (none for progress, output and samples), updating
/// the name cache.
pub(crate) fn docker_events(rec: &EventRecord, names: &mut Names) -> Vec<Value> {
    let container = |names: &Names, id: &str, action: &str, extra: &[(&str, String)]| {
        let (name, image) = names.of(id);
        let mut pairs = vec![("image", image), ("name", name)];
        pairs.extend(extra.iter().cloned());
        message("container", action, id, attrs(&pairs), rec)
    };
    match &rec.event {
        Event::ContainerCreated { id, name, image } => {
            names
                .containers
                .insert(id.0.clone(), (name.clone(), image.clone()));
            vec![container(names, &id.0, "create", &[])]
        }
        Event::ContainerStarted { id } => vec![container(names, &id.0, "start", &[])],
        Event::ContainerExited {
            id,
            exit_code,
            oom_killed,
        } => {
            let mut out = Vec::new();
            if *oom_killed {
                out.push(container(names, &id.0, "oom", &[]));
            }
            out.push(container(
                names,
                &id.0,
                "die",
                &[("exitCode", exit_code.to_string())],
            ));
            out
        }
        Event::ContainerRestarting { id } => vec![container(names, &id.0, "restart", &[])],
        Event::ContainerPaused { id } => vec![container(names, &id.0, "pause", &[])],
        Event::ContainerUnpaused { id } => vec![container(names, &id.0, "unpause", &[])],
        Event::ContainerRenamed { id, name } => {
            let (old, image) = names.of(&id.0);
            names.containers.insert(id.0.clone(), (name.clone(), image));
            vec![container(
                names,
                &id.0,
                "rename",
                &[("oldName", format!("/{old}"))],
            )]
        }
        Event::ContainerRemoved { id } => {
            let ev = container(names, &id.0, "destroy", &[]);
            names.containers.remove(&id.0);
            vec![ev]
        }
        Event::ExecStarted { id, exec_id } => {
            vec![container(
                names,
                &id.0,
                "exec_start",
                &[("execID", exec_id.clone())],
            )]
        }
        Event::ImagePulled { reference, id } => vec![message(
            "image",
            "pull",
            &reference.0,
            attrs(&[("name", reference.0.clone()), ("imageID", id.0.clone())]),
            rec,
        )],
        Event::ImagePushed { reference, digest } => vec![message(
            "image",
            "push",
            &reference.0,
            attrs(&[("name", reference.0.clone()), ("digest", digest.0.clone())]),
            rec,
        )],
        Event::ImageTagged { id, tag } => vec![message(
            "image",
            "tag",
            &id.0,
            attrs(&[("name", tag.clone())]),
            rec,
        )],
        Event::ImageUntagged { id, tag } => vec![message(
            "image",
            "untag",
            &id.0,
            attrs(&[("name", tag.clone())]),
            rec,
        )],
        Event::ImageRemoved { id } => vec![message("image", "delete", &id.0, attrs(&[]), rec)],
        Event::ImagesPruned { freed, .. } => vec![message(
            "image",
            "prune",
            "",
            attrs(&[("reclaimed", freed.to_string())]),
            rec,
        )],
        Event::PolicyDecision {
            subject,
            action,
            target,
            verdict,
            rule,
            reason,
        } => vec![message(
            "policy",
            &verdict.to_string(),
            action,
            attrs(&[
                ("subject", subject.clone()),
                ("action", action.clone()),
                ("target", target.clone().unwrap_or_default()),
                ("rule", rule.clone().unwrap_or_default()),
                ("reason", reason.clone()),
            ]),
            rec,
        )],
        // Tags are reported by ImageTagged; progress, output, samples, background errors and
        // the clean-up at start have no Docker event.
        Event::ImageBuilt { .. }
        | Event::Transfer { .. }
        | Event::BuildOutput { .. }
        | Event::Stats(_)
        | Event::DebrisRemoved { .. }
        | Event::Error { .. } => Vec::new(),
    }
}

/// Whether a Docker event passes the `filters` of `GET /events`.
pub(crate) fn event_matches(ev: &Value, f: &Filters) -> bool {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let kind = s(&ev["Type"]);
    let action = s(&ev["Action"]);
    let id = s(&ev["Actor"]["ID"]);
    let attr = |k: &str| s(&ev["Actor"]["Attributes"][k]);
    f.any("type", |t| t == kind)
        && f.any("event", |e| e == action)
        && f.any("scope", |sc| sc == "local")
        && f.any("container", |c| {
            kind == "container" && (id.starts_with(c) || attr("name") == c)
        })
        && f.any("image", |i| match kind.as_str() {
            "container" => {
                let img = attr("image");
                img == i || img.strip_prefix(i).is_some_and(|r| r.starts_with(':'))
            }
            "image" => id == i || attr("name") == i,
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ContainerId, Digest, ImageRef};
    use crate::security::Verdict;

    fn rec(event: Event) -> EventRecord {
        EventRecord {
            time: 1_700_000_000_123_456_789,
            origin: "1.x".into(),
            event,
        }
    }

    #[test]
    fn container_life_maps_to_docker_actions_with_name_and_image() {
        let mut names = Names::default();
        let id = ContainerId::from("c0ffee");
        let evs: Vec<Value> = [
            Event::ContainerCreated {
                id: id.clone(),
                name: "web".into(),
                image: "busybox".into(),
            },
            Event::ContainerStarted { id: id.clone() },
            Event::ContainerExited {
                id: id.clone(),
                exit_code: 137,
                oom_killed: true,
            },
            Event::ContainerRenamed {
                id: id.clone(),
                name: "api".into(),
            },
            Event::ContainerRemoved { id: id.clone() },
        ]
        .into_iter()
        .flat_map(|e| docker_events(&rec(e), &mut names))
        .collect();
        let actions: Vec<&str> = evs.iter().map(|e| e["Action"].as_str().unwrap()).collect();
        assert_eq!(
            actions,
            ["create", "start", "oom", "die", "rename", "destroy"]
        );
        let die = &evs[3];
        assert_eq!(die["Type"], "container");
        assert_eq!(die["Actor"]["ID"], "c0ffee");
        assert_eq!(
            die["Actor"]["Attributes"],
            json!({"image":"busybox","name":"web","exitCode":"137"})
        );
        assert_eq!(
            (
                die["status"].clone(),
                die["id"].clone(),
                die["from"].clone()
            ),
            (json!("die"), json!("c0ffee"), json!("busybox"))
        );
        assert_eq!(die["time"], 1_700_000_000);
        assert_eq!(die["timeNano"], 1_700_000_000_123_456_789i64);
        assert_eq!(evs[4]["Actor"]["Attributes"]["oldName"], "/web");
        assert_eq!(evs[5]["Actor"]["Attributes"]["name"], "api");
    }

    #[test]
    fn images_and_policy_decisions_map_and_progress_does_not() {
        let mut names = Names::default();
        let pulled = docker_events(
            &rec(Event::ImagePulled {
                reference: ImageRef::from("127.0.0.1:5000/busybox:latest"),
                id: Digest::from("sha256:aa"),
            }),
            &mut names,
        );
        assert_eq!(pulled[0]["Type"], "image");
        assert_eq!(pulled[0]["Action"], "pull");
        assert_eq!(pulled[0]["Actor"]["ID"], "127.0.0.1:5000/busybox:latest");
        let denied = docker_events(
            &rec(Event::PolicyDecision {
                subject: "uid 65534".into(),
                action: "container.list".into(),
                target: None,
                verdict: Verdict::Deny,
                rule: Some("policy.toml:3".into()),
                reason: "only root".into(),
            }),
            &mut names,
        );
        assert_eq!(denied[0]["Type"], "policy");
        assert_eq!(denied[0]["Action"], "deny");
        assert_eq!(denied[0]["Actor"]["Attributes"]["reason"], "only root");
        assert!(denied[0].get("status").is_none());
        assert!(
            docker_events(&rec(Event::BuildOutput { line: "x".into() }), &mut names).is_empty()
        );
    }

    #[test]
    fn event_filters() {
        let mut names = Names::default();
        let ev = docker_events(
            &rec(Event::ContainerCreated {
                id: "c0ffee".into(),
                name: "web".into(),
                image: "busybox:latest".into(),
            }),
            &mut names,
        )
        .remove(0);
        let f = |s: &str| Filters::parse(Some(s)).unwrap();
        assert!(event_matches(&ev, &f(r#"{"type":{"container":true}}"#)));
        assert!(!event_matches(&ev, &f(r#"{"type":["image"]}"#)));
        assert!(event_matches(&ev, &f(r#"{"event":["create","start"]}"#)));
        assert!(!event_matches(&ev, &f(r#"{"event":["die"]}"#)));
        assert!(event_matches(&ev, &f(r#"{"container":["web"]}"#)));
        assert!(event_matches(&ev, &f(r#"{"container":["c0f"]}"#)));
        assert!(!event_matches(&ev, &f(r#"{"container":["db"]}"#)));
        assert!(event_matches(&ev, &f(r#"{"image":["busybox"]}"#)));
        assert!(!event_matches(&ev, &f(r#"{"image":["alpine"]}"#)));
    }
}
