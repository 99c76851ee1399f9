//! `--cache-from`: images (loaded from elsewhere, say) that a build may
//! reuse steps of although its own cache never saw them. As Docker's
//! classic builder does, a step matches an image when the image's history
//! starts with the stage's history so far and goes on with this step's
//! entry, and its layers start with the stage's: the step's image is then
//! restored — the step's config with the image's layer — without running
//! anything.

use berth_image::config::{History, ImageConfig};
use berth_image::Digest;
use berth_store::Store;

use crate::error::Result;

/// An image offered as a cache source, with what is compared.
#[derive(Debug, Clone)]
pub struct Source {
    pub id: Digest,
    history: Vec<History>,
    diff_ids: Vec<Digest>,
}

impl Source {
    /// The cache source `id` names in the store (None: not there).
    pub fn load(store: &Store, name: &str) -> Option<Self> {
        let id = store.resolve(name).ok()?;
        let config = store.config(&id).ok()?;
        Some(Self {
            id,
            history: config.history,
            diff_ids: config.rootfs.diff_ids,
        })
    }
}

fn same(a: &History, b: &History) -> bool {
    a.created_by == b.created_by && a.empty_layer == b.empty_layer
}

/// The step a source offers after `parent` (its config) for a step whose
/// history entry is `created_by`: the source's entry (its date kept) and
/// the layer the step adds, if any.
pub fn offered(
    sources: &[Source],
    parent: &ImageConfig,
    created_by: &str,
) -> Option<(History, Option<Digest>)> {
    let n = parent.history.len();
    let layers = parent.rootfs.diff_ids.len();
    sources.iter().find_map(|s| {
        let entry = s.history.get(n)?;
        let prefix_ok = s.history.len() > n
            && s.history[..n]
                .iter()
                .zip(&parent.history)
                .all(|(a, b)| same(a, b))
            && s.diff_ids.get(..layers) == Some(&parent.rootfs.diff_ids[..]);
        if !prefix_ok || entry.created_by.as_deref() != Some(created_by) {
            return None;
        }
        let layer = match entry.empty_layer {
            true => None,
            false => Some(s.diff_ids.get(layers)?.clone()),
        };
        Some((entry.clone(), layer))
    })
}

/// Restores the step: `next` (the step's config, history not yet
/// extended) with the source's entry and layer, over `parent`.
pub fn restore(
    store: &Store,
    parent: &Digest,
    mut next: ImageConfig,
    entry: History,
    layer: Option<&Digest>,
) -> Result<Digest> {
    next.created = entry.created.clone();
    next.history.push(entry);
    Ok(store.commit_existing(parent, next, layer)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(by: &str, empty: bool) -> History {
        History {
            created_by: Some(by.to_owned()),
            empty_layer: empty,
            ..Default::default()
        }
    }

    #[test]
    fn a_source_matches_only_after_the_same_history_and_layers() {
        let d = |s: &str| Digest::sha256(s.as_bytes());
        let source = Source {
            id: d("img"),
            history: vec![h("base", false), h("ENV A=1", true), h("RUN make", false)],
            diff_ids: vec![d("l0"), d("l1")],
        };
        let mut parent = ImageConfig {
            history: vec![h("base", false), h("ENV A=1", true)],
            ..Default::default()
        };
        parent.rootfs.diff_ids = vec![d("l0")];
        let (entry, layer) = offered(std::slice::from_ref(&source), &parent, "RUN make").unwrap();
        assert_eq!(
            (entry.created_by.as_deref(), layer),
            (Some("RUN make"), Some(d("l1")))
        );
        assert!(offered(std::slice::from_ref(&source), &parent, "RUN other").is_none());
        parent.rootfs.diff_ids = vec![d("elsewhere")];
        assert!(
            offered(std::slice::from_ref(&source), &parent, "RUN make").is_none(),
            "other layers below"
        );
    }
}
