//! `POST /commit` (`docker commit`): a new image from a container — its
//! image's layers, a new layer of what it changed (copied from its upper
//! dir, the container paused meanwhile unless told not to), and dockerd's
//! config: the container's own, the request's fields over it, `changes`
//! (Dockerfile instructions) over that.

use berth_image::config::{ContainerConfig, History, ImageConfig};
use berth_store::Commit;
use serde::Deserialize;

use super::model::{Record, Status};
use super::{internal, spec, ContainerService};
use crate::error::{EngineError, Result};

/// What `POST /commit` asks for.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CommitRequest {
    pub container: String,
    /// `repo[:tag]` to tag the image with (empty: untagged).
    pub reference: Option<String>,
    pub comment: String,
    pub author: String,
    /// Pause a running container while its changes are copied.
    pub pause: bool,
    /// Dockerfile instructions (`CMD ["x"]`, `ENV A=b`, `EXPOSE 80`…).
    pub changes: Vec<String>,
    /// The body: container config fields that replace the container's.
    pub config: Option<ContainerConfig>,
}

impl ContainerService {
    /// Commits the container; returns the new image's ID.
    pub fn commit(&self, req: &CommitRequest) -> Result<String> {
        let rec = self.find(&req.container)?;
        let parent: berth_image::Digest =
            rec.image_id.parse().map_err(|e| internal("image ID", e))?;
        let image = self.store.config(&parent)?;
        let mut config = req.config.clone().unwrap_or_default();
        for c in &req.changes {
            berth_image::change::apply_change(&mut config, c)
                .map_err(|e| EngineError::invalid(e.to_string()))?;
        }
        merge(&mut config, &effective_config(&rec, &image));
        let pause = req.pause && rec.state.status == Status::Running && !rec.state.paused;
        if pause {
            self.pause(&rec.id)?;
        }
        let change = self.store.copy_change(&self.upper_dir(&rec.id));
        if pause {
            if let Err(e) = self.unpause(&rec.id) {
                tracing::error!(id = rec.id, error = %e.message, "unpausing after a commit");
            }
        }
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut next = ImageConfig {
            created: Some(now.clone()),
            author: Some(req.author.clone()).filter(|a| !a.is_empty()),
            config: Some(config),
            ..image
        };
        next.other
            .insert("container".into(), serde_json::json!(rec.id));
        let mut created_by = vec![rec.path.clone()];
        created_by.extend(rec.args.iter().cloned());
        next.history.push(History {
            created: Some(now),
            created_by: Some(created_by.join(" ")),
            author: next.author.clone(),
            comment: Some(req.comment.clone()).filter(|c| !c.is_empty()),
            empty_layer: false,
        });
        let committed = self.store.commit(Commit {
            parent: Some(parent),
            config: next,
            change: Some(change?),
            keep_empty: true,
        })?;
        let id = committed.id.to_string();
        if let Some(r) = req.reference.as_deref().filter(|r| !r.is_empty()) {
            self.store.tag(&id, r)?;
        }
        self.emit("commit", &rec, &[("comment", req.comment.clone())]);
        Ok(id)
    }
}

/// The config a container runs with: its image's, with what its create
/// request set (dockerd keeps this merged config as the container's).
fn effective_config(rec: &Record, image: &ImageConfig) -> ContainerConfig {
    let mut c = image.config.clone().unwrap_or_default();
    let req = &rec.request;
    if let Some(e) = &req.entrypoint {
        c.entrypoint = Some(e.clone());
        c.cmd = None;
    }
    if let Some(cmd) = &req.cmd {
        c.cmd = Some(cmd.clone());
    }
    let env = spec::merge_env(
        c.env.as_deref().unwrap_or_default(),
        req.env.as_deref().unwrap_or_default(),
    );
    c.env = Some(env);
    if !req.working_dir.is_empty() {
        c.working_dir = req.working_dir.clone();
    }
    if !req.user.is_empty() {
        c.user = req.user.clone();
    }
    if let Some(labels) = &req.labels {
        c.labels
            .get_or_insert_with(Default::default)
            .extend(labels.clone());
    }
    if let Some(v) = &req.volumes {
        c.volumes
            .get_or_insert_with(Default::default)
            .extend(v.clone());
    }
    if req.stop_signal.is_some() {
        c.stop_signal = req.stop_signal.clone();
    }
    c
}

/// dockerd's `merge`: what the user's config leaves unset comes from the
/// container's; environments merge by key (the user's win), labels,
/// ports and volumes merge.
fn merge(user: &mut ContainerConfig, container: &ContainerConfig) {
    if user.user.is_empty() {
        user.user = container.user.clone();
    }
    let env = spec::merge_env(
        container.env.as_deref().unwrap_or_default(),
        user.env.as_deref().unwrap_or_default(),
    );
    user.env = Some(env);
    if user.cmd.is_none() && user.entrypoint.is_none() {
        user.cmd = container.cmd.clone();
    }
    if user.entrypoint.is_none() {
        user.entrypoint = container.entrypoint.clone();
    }
    if user.working_dir.is_empty() {
        user.working_dir = container.working_dir.clone();
    }
    for (mine, theirs) in [
        (&mut user.exposed_ports, &container.exposed_ports),
        (&mut user.volumes, &container.volumes),
    ] {
        if let Some(t) = theirs {
            let m = mine.get_or_insert_with(Default::default);
            for (k, v) in t {
                m.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    if let Some(t) = &container.labels {
        let m = user.labels.get_or_insert_with(Default::default);
        for (k, v) in t {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if user.stop_signal.is_none() {
        user.stop_signal = container.stop_signal.clone();
    }
    if user.healthcheck.is_none() {
        user.healthcheck = container.healthcheck.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_config_wins_and_the_rest_merges() {
        let container = ContainerConfig {
            user: "app".into(),
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            cmd: Some(vec!["run".into()]),
            working_dir: "/srv".into(),
            labels: Some([("k".to_owned(), "v".to_owned())].into()),
            ..ContainerConfig::default()
        };
        let mut user = ContainerConfig {
            env: Some(vec!["A=2".into()]),
            cmd: Some(vec!["other".into()]),
            ..ContainerConfig::default()
        };
        merge(&mut user, &container);
        assert_eq!(user.user, "app");
        assert_eq!(user.env, Some(vec!["PATH=/bin".into(), "A=2".into()]));
        assert_eq!(user.cmd, Some(vec!["other".into()]));
        assert_eq!(user.working_dir, "/srv");
        assert_eq!(user.labels.unwrap()["k"], "v");
    }
}
