//! The image service: Docker's image endpoints over the store, with the
//! answers shaped as the API models them.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;

use berth_api_types::images::{
    DeleteItem, GraphDriver, HistoryItem, ImageInspect, ImageSummary, PruneResponse, RootFs,
};
use berth_api_types::Filters;
use berth_image::archive::Format;
use berth_image::Reference;
use berth_store::import::ImportOptions;
use berth_store::query::ListFilters;
use berth_store::remove::Removal;
use berth_store::Store;

use crate::error::{EngineError, Result};
use crate::events::Events;

/// What `POST /images/create?fromSrc=-` asks for.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub changes: Vec<String>,
    pub message: Option<String>,
}

/// The image operations the API serves.
pub trait ImageBackend: Send + Sync {
    /// `all`: intermediate images too (`docker images -a`).
    /// `shared`: with each image's SharedSize (`shared-size=1`, `system df`).
    fn list(&self, all: bool, filters: &Filters, shared: bool) -> Result<Vec<ImageSummary>>;
    fn inspect(&self, name: &str) -> Result<ImageInspect>;
    /// Bytes of all layers, each once (`system df`'s LayersSize).
    fn layers_size(&self) -> Result<u64>;
    fn history(&self, name: &str) -> Result<Vec<HistoryItem>>;
    fn tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<()>;
    fn remove(&self, name: &str, force: bool) -> Result<Vec<DeleteItem>>;
    fn prune(&self, filters: &Filters) -> Result<PruneResponse>;
    /// Loads an archive; returns docker's "Loaded image…" lines.
    fn load(&self, input: &mut dyn Read) -> Result<Vec<String>>;
    fn save(&self, names: &[String], out: &mut dyn Write) -> Result<()>;
    /// Imports a rootfs tarball; returns the image ID.
    fn import(&self, input: &mut dyn Read, req: &ImportRequest) -> Result<String>;
    /// Starts a pull from a registry; what fails before it streams is the
    /// request's error.
    fn pull(&self, req: &crate::pull::PullRequest) -> Result<crate::pull::PullStream>;
    /// Starts a push to a registry, likewise.
    fn push(&self, req: &crate::push::PushRequest) -> Result<crate::progress::ProgressStream>;
    /// Whether credentials open their registry (`POST /auth`); the
    /// identity token the registry gave for them, if any.
    fn login(&self, req: &crate::distribution::AuthRequest) -> Result<Option<String>>;
    /// What a name points to in its registry (`GET /distribution/…`).
    fn distribution(&self, name: &str, registry_auth: &str) -> Result<serde_json::Value>;
}

/// The image service over a store.
#[derive(Debug, Clone)]
pub struct ImageService {
    store: Arc<Store>,
    events: Arc<Events>,
    registries: berth_registry::ClientOptions,
}

impl ImageService {
    /// A service over `store`, publishing on `events`.
    pub fn new(
        store: Arc<Store>,
        events: Arc<Events>,
        registries: berth_registry::ClientOptions,
    ) -> Self {
        Self {
            store,
            events,
            registries,
        }
    }

    /// An image event: the image's ID, and its name when one applies.
    fn emit(&self, action: &str, id: &str, name: Option<&str>) {
        let attributes = name
            .map(|n| [("name".to_owned(), familiar(n))].into())
            .unwrap_or_default();
        self.events.publish("image", action, id, attributes);
    }
}

/// An image's container config as Docker's inspect shows it: every field
/// present, unset ones `null` (clients index `Config["Cmd"]`).
fn docker_config(c: Option<&berth_image::config::ContainerConfig>) -> serde_json::Value {
    let Some(c) = c else {
        return serde_json::Value::Null;
    };
    let mut v = serde_json::json!({
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
        "AttachStdout": false, "AttachStderr": false, "Tty": false, "OpenStdin": false,
        "StdinOnce": false, "Env": null, "Cmd": null, "Image": "", "Volumes": null,
        "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": null,
    });
    if let (Some(obj), Ok(serde_json::Value::Object(set))) =
        (v.as_object_mut(), serde_json::to_value(c))
    {
        obj.extend(set);
    }
    v
}

/// Docker shows references in their familiar form.
fn familiar(full: &str) -> String {
    full.parse::<Reference>()
        .map_or_else(|_| full.to_owned(), |r| r.familiar())
}

fn unix_seconds(rfc3339: Option<&str>) -> i64 {
    rfc3339
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map_or(0, |t| t.timestamp())
}

fn size(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn list_filters(f: &Filters) -> Result<ListFilters> {
    f.only(&["dangling", "label", "reference", "before", "since"])
        .map_err(EngineError::invalid)?;
    let one = |name: &str| -> Result<Option<String>> {
        match f.get(name) {
            [] => Ok(None),
            [v] => Ok(Some(v.clone())),
            _ => Err(EngineError::invalid(format!(
                "filter '{name}' takes one value"
            ))),
        }
    };
    Ok(ListFilters {
        dangling: f.bool("dangling").map_err(EngineError::invalid)?,
        labels: f
            .get("label")
            .iter()
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (l.clone(), None),
            })
            .collect(),
        reference: f.get("reference").to_vec(),
        before: one("before")?,
        since: one("since")?,
        all: false,
    })
}

fn delete_item(r: Removal) -> DeleteItem {
    match r {
        Removal::Untagged(t) => DeleteItem::Untagged(familiar(&t)),
        Removal::Deleted(d) => DeleteItem::Deleted(d.to_string()),
    }
}

impl ImageBackend for ImageService {
    fn push(&self, req: &crate::push::PushRequest) -> Result<crate::progress::ProgressStream> {
        crate::push::start(
            self.store.clone(),
            self.events.clone(),
            &self.registries,
            req,
        )
    }

    fn login(&self, req: &crate::distribution::AuthRequest) -> Result<Option<String>> {
        crate::distribution::login(&self.registries, req)
    }

    fn distribution(&self, name: &str, registry_auth: &str) -> Result<serde_json::Value> {
        crate::distribution::inspect(&self.registries, name, registry_auth)
    }

    fn pull(&self, req: &crate::pull::PullRequest) -> Result<crate::pull::PullStream> {
        crate::pull::start(
            self.store.clone(),
            self.events.clone(),
            &self.registries,
            req,
        )
    }

    fn layers_size(&self) -> Result<u64> {
        Ok(self.store.layers_size()?)
    }

    fn list(&self, all: bool, filters: &Filters, shared: bool) -> Result<Vec<ImageSummary>> {
        let mut f = list_filters(filters)?;
        f.all = all;
        let images = self.store.list(&f)?;
        let mut shared_sizes = Vec::with_capacity(images.len());
        for i in &images {
            shared_sizes.push(match shared {
                true => size(self.store.shared_size(&i.id)?),
                false => -1,
            });
        }
        Ok(images
            .into_iter()
            .zip(shared_sizes)
            .map(|(i, shared_size)| ImageSummary {
                id: i.id.to_string(),
                parent_id: i
                    .parent
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                repo_tags: i.tags.iter().map(|t| familiar(t)).collect(),
                repo_digests: i.digests.iter().map(|t| familiar(t)).collect(),
                created: unix_seconds(i.created.as_deref()),
                size: size(i.size),
                shared_size,
                virtual_size: size(i.size),
                labels: i.labels,
                containers: i64::try_from(i.holders).unwrap_or(0),
            })
            .collect())
    }

    fn inspect(&self, name: &str) -> Result<ImageInspect> {
        let d = self.store.inspect(name)?;
        let cfg = &d.config;
        let dirs: Vec<String> = d
            .layer_dirs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let mut data = BTreeMap::new();
        if let Some((top, lower)) = dirs.split_last() {
            data.insert("UpperDir".to_owned(), top.clone());
            if !lower.is_empty() {
                data.insert(
                    "LowerDir".to_owned(),
                    lower.iter().rev().cloned().collect::<Vec<_>>().join(":"),
                );
            }
        }
        let other = |k: &str| {
            cfg.other
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        Ok(ImageInspect {
            id: d.summary.id.to_string(),
            repo_tags: d.summary.tags.iter().map(|t| familiar(t)).collect(),
            repo_digests: d.summary.digests.iter().map(|t| familiar(t)).collect(),
            parent: d
                .summary
                .parent
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            comment: cfg
                .history
                .last()
                .and_then(|h| h.comment.clone())
                .unwrap_or_default(),
            created: cfg.created.clone().unwrap_or_default(),
            container: other("container"),
            docker_version: other("docker_version"),
            author: cfg.author.clone().unwrap_or_default(),
            config: docker_config(cfg.config.as_ref()),
            architecture: cfg.architecture.clone(),
            os: cfg.os.clone(),
            variant: cfg.variant.clone(),
            size: size(d.summary.size),
            virtual_size: size(d.summary.size),
            graph_driver: GraphDriver {
                name: "overlay2".to_owned(),
                data,
            },
            root_fs: RootFs {
                kind: "layers".to_owned(),
                layers: cfg
                    .rootfs
                    .diff_ids
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            },
            metadata: serde_json::json!({ "LastTagTime": "0001-01-01T00:00:00Z" }),
        })
    }

    fn history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        Ok(self
            .store
            .history(name)?
            .into_iter()
            .map(|h| HistoryItem {
                id: h
                    .id
                    .map_or_else(|| "<missing>".to_owned(), |d| d.to_string()),
                created: unix_seconds(h.created.as_deref()),
                created_by: h.created_by,
                tags: h.tags.iter().map(|t| familiar(t)).collect(),
                size: size(h.size),
                comment: h.comment,
            })
            .collect())
    }

    fn tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<()> {
        let target = match tag.filter(|t| !t.is_empty()) {
            Some(t) => format!("{repo}:{t}"),
            None => repo.to_owned(),
        };
        self.store.tag(name, &target)?;
        let id = self.store.resolve(&target)?;
        self.emit("tag", &id.to_string(), Some(&target));
        Ok(())
    }

    fn remove(&self, name: &str, force: bool) -> Result<Vec<DeleteItem>> {
        let id = self.store.resolve(name)?.to_string();
        let removed = self.store.remove(name, force)?;
        for r in &removed {
            match r {
                Removal::Untagged(t) => self.emit("untag", &id, Some(t)),
                // Layers are deleted too; the event is the image's.
                Removal::Deleted(d) if d.to_string() == id => self.emit("delete", &id, None),
                Removal::Deleted(_) => {}
            }
        }
        Ok(removed.into_iter().map(delete_item).collect())
    }

    fn prune(&self, filters: &Filters) -> Result<PruneResponse> {
        filters.only(&["dangling"]).map_err(EngineError::invalid)?;
        let dangling_only = filters
            .bool("dangling")
            .map_err(EngineError::invalid)?
            .unwrap_or(true);
        let report = self.store.prune(!dangling_only)?;
        let deleted: Vec<DeleteItem> = report.removed.into_iter().map(delete_item).collect();
        Ok(PruneResponse {
            images_deleted: (!deleted.is_empty()).then_some(deleted),
            space_reclaimed: report.space_reclaimed,
        })
    }

    fn load(&self, input: &mut dyn Read) -> Result<Vec<String>> {
        let loaded = self.store.load(input)?;
        let mut lines = Vec::new();
        for img in loaded {
            let id = img.id.to_string();
            match img.tags.first() {
                Some(t) => self.emit("load", &id, Some(t)),
                None => self.emit("load", &id, None),
            }
            if img.tags.is_empty() {
                lines.push(format!("Loaded image ID: {}", img.id));
            }
            lines.extend(
                img.tags
                    .iter()
                    .map(|t| format!("Loaded image: {}", familiar(t))),
            );
        }
        Ok(lines)
    }

    fn save(&self, names: &[String], out: &mut dyn Write) -> Result<()> {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        self.store.save(&refs, Format::Docker, out)?;
        for n in names {
            if let Ok(id) = self.store.resolve(n) {
                self.emit("save", &id.to_string(), Some(n));
            }
        }
        Ok(())
    }

    fn import(&self, input: &mut dyn Read, req: &ImportRequest) -> Result<String> {
        let reference = match (&req.repo, &req.tag) {
            (Some(r), Some(t)) if !r.is_empty() && !t.is_empty() => Some(format!("{r}:{t}")),
            (Some(r), _) if !r.is_empty() => Some(r.clone()),
            _ => None,
        };
        let opts = ImportOptions {
            changes: req.changes.clone(),
            reference,
            message: req.message.clone(),
        };
        let id = self.store.import(input, &opts)?.id.to_string();
        self.emit("import", &id, opts.reference.as_deref());
        Ok(id)
    }
}
