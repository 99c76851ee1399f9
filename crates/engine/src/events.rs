//! The event bus behind `GET /events`: services publish what happened to
//! containers and images; subscribers get the recent past they ask for
//! (`since`) and then every new event, in order. Subscribers are callbacks
//! that say when they are gone, so a client that hangs up costs nothing.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use berth_api_types::events::{Actor, Event};
use berth_api_types::Filters;

use crate::error::{EngineError, Result};

/// How many past events are kept for `since`.
const KEPT: usize = 1024;

/// A subscriber: called with each event; false unsubscribes it.
pub type Subscriber = Box<dyn FnMut(&Event) -> bool + Send>;

/// The bus.
#[derive(Default)]
pub struct Events {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    recent: VecDeque<Event>,
    subscribers: Vec<Subscriber>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Events")
    }
}

impl Events {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes an event of `kind` (`container`, `image`) about `id`,
    /// stamped now.
    pub fn publish(
        &self,
        kind: &str,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        // Containers keep the legacy fields; images had only status and id.
        let from = (kind == "container")
            .then(|| attributes.get("image").cloned())
            .flatten();
        let event = Event {
            status: Some(action.to_owned()),
            id: Some(id.to_owned()),
            from,
            kind: kind.to_owned(),
            action: action.to_owned(),
            actor: Actor {
                id: id.to_owned(),
                attributes,
            },
            scope: "local".to_owned(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
        };
        let mut inner = self.lock();
        if inner.recent.len() == KEPT {
            inner.recent.pop_front();
        }
        inner.recent.push_back(event.clone());
        inner.subscribers.retain_mut(|s| s(&event));
    }

    /// Replays the kept events at or after `since` (Unix nanoseconds), then
    /// delivers each new one; atomically, so none is missed or doubled.
    pub fn subscribe(&self, since: Option<i64>, mut subscriber: Subscriber) {
        let mut inner = self.lock();
        if let Some(since) = since {
            for e in inner.recent.iter().filter(|e| e.time_nano >= since) {
                if !subscriber(e) {
                    return;
                }
            }
        }
        inner.subscribers.push(subscriber);
    }
}

/// The filters `GET /events` takes.
pub fn check_filters(f: &Filters) -> Result<()> {
    f.only(&[
        "container",
        "event",
        "image",
        "label",
        "type",
        "volume",
        "network",
        "daemon",
        "plugin",
        "scope",
    ])
    .map_err(EngineError::invalid)
}

/// Whether `e` passes the filters (each filter: any of its values).
pub fn matches(e: &Event, f: &Filters) -> bool {
    let any = |name: &str, pred: &dyn Fn(&str) -> bool| {
        f.get(name).is_empty() || f.get(name).iter().any(|v| pred(v))
    };
    let attr = |k: &str| e.actor.attributes.get(k).map(String::as_str);
    let container = e.kind == "container";
    any("type", &|v| v == e.kind)
        && any("event", &|v| v == e.action)
        && any("scope", &|v| v == e.scope)
        && any("container", &|v| {
            container && (e.actor.id.starts_with(v) || attr("name") == Some(v))
        })
        && any("image", &|v| {
            let named = if container { attr("image") } else { attr("name") };
            let untagged = named.map(|n| n.rsplit_once(':').map_or(n, |(repo, _)| repo));
            named == Some(v) || untagged == Some(v) || (!container && e.actor.id.contains(v))
        })
        && f.get("label").iter().all(|l| match l.split_once('=') {
            Some((k, v)) => attr(k) == Some(v),
            None => attr(l).is_some(),
        })
        // Kinds berth does not emit yet match nothing.
        && ["volume", "network", "daemon", "plugin"]
            .iter()
            .all(|k| f.get(k).is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex as StdMutex};

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn subscribers_get_the_asked_past_then_the_future_until_they_leave() {
        let bus = Events::default();
        bus.publish("container", "create", "aaa", attrs(&[("image", "bb")]));
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let log = seen.clone();
        bus.subscribe(
            Some(0),
            Box::new(move |e| {
                log.lock().unwrap().push(e.action.clone());
                e.action != "die"
            }),
        );
        bus.publish("container", "start", "aaa", attrs(&[]));
        bus.publish("container", "die", "aaa", attrs(&[]));
        bus.publish("container", "destroy", "aaa", attrs(&[]));
        assert_eq!(*seen.lock().unwrap(), ["create", "start", "die"]);
        assert!(bus.lock().subscribers.is_empty(), "it left after die");
    }

    #[test]
    fn filters_follow_dockers_rules() {
        let bus = Events::default();
        bus.publish(
            "container",
            "start",
            "abc123",
            attrs(&[
                ("image", "busybox:test"),
                ("name", "web"),
                ("tier", "front"),
            ]),
        );
        bus.publish(
            "image",
            "tag",
            "sha256:feed",
            attrs(&[("name", "busybox:v2")]),
        );
        let inner = bus.lock();
        let (c, i) = (&inner.recent[0], &inner.recent[1]);
        let f = |raw: &str| Filters::parse(raw).unwrap();
        assert!(matches(c, &f(r#"{"container":["web"]}"#)));
        assert!(matches(c, &f(r#"{"container":["abc"]}"#)));
        assert!(!matches(i, &f(r#"{"container":["web"]}"#)));
        assert!(matches(c, &f(r#"{"image":["busybox"]}"#)));
        assert!(matches(i, &f(r#"{"image":["busybox:v2"]}"#)));
        assert!(matches(
            c,
            &f(r#"{"type":["container"],"event":["start","die"]}"#)
        ));
        assert!(!matches(c, &f(r#"{"event":["die"]}"#)));
        assert!(matches(c, &f(r#"{"label":["tier=front"]}"#)));
        assert!(!matches(c, &f(r#"{"label":["tier=back"]}"#)));
        assert!(!matches(c, &f(r#"{"network":["x"]}"#)));
        assert!(check_filters(&f(r#"{"bogus":["x"]}"#)).is_err());
    }
}
