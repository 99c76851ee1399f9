//! Platforms (`os/arch[/variant]`, the OCI image index's `platform`) and
//! the choice of an index's manifest for one: this machine's, or the one
//! `--platform` names.

use crate::archive::read::host_arch;
use crate::manifest::{Descriptor, Platform};

impl Platform {
    /// This machine: `linux` and its architecture (arm64's variant v8).
    pub fn host() -> Self {
        let arch = host_arch();
        Self {
            architecture: arch.to_owned(),
            os: "linux".to_owned(),
            variant: (arch == "arm64").then(|| "v8".to_owned()),
            os_version: None,
            os_features: Vec::new(),
        }
    }

    /// `os/arch[/variant]`, as `--platform` takes it (`linux/arm64/v8`).
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?.to_ascii_lowercase();
        let architecture = parts.next().filter(|p| !p.is_empty())?.to_ascii_lowercase();
        let variant = parts.next().map(str::to_ascii_lowercase);
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            architecture,
            os,
            variant,
            os_version: None,
            os_features: Vec::new(),
        })
    }

    /// Whether an index entry for `other` runs here: same OS and
    /// architecture, and the variant when this platform names one
    /// (arm64's v8 is also what no variant means).
    pub fn accepts(&self, other: &Platform) -> bool {
        let norm = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", None) => Some("v8".to_owned()),
            (_, v) => v.map(str::to_owned),
        };
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || norm(self) == norm(other))
    }

    /// `os/arch[/variant]`.
    pub fn to_text(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// The manifest of `list` for `want`: the only entry of a one-entry list
/// without a platform, else the first entry `want` accepts.
pub fn select<'a>(list: &'a [Descriptor], want: &Platform) -> Option<&'a Descriptor> {
    if let [only] = list {
        if only.platform.is_none() {
            return Some(only);
        }
    }
    list.iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| want.accepts(p)))
}

/// The manifest of an archive's index to load: its only entry whatever
/// its platform (the user chose this archive; `docker load` takes it),
/// else this machine's.
pub fn for_archive(list: &[Descriptor]) -> Option<&Descriptor> {
    match list {
        [only] => Some(only),
        _ => select(list, &Platform::host()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(platform: &str) -> Descriptor {
        Descriptor {
            media_type: crate::media::OCI_MANIFEST.to_owned(),
            digest: crate::Digest::sha256(platform.as_bytes()),
            size: 1,
            urls: Vec::new(),
            annotations: Default::default(),
            platform: Platform::parse(platform),
        }
    }

    #[test]
    fn platforms_parse_and_match_as_docker_does() {
        let list = [
            entry("linux/arm/v7"),
            entry("linux/arm64/v8"),
            entry("linux/amd64"),
        ];
        let pick = |s: &str| {
            select(&list, &Platform::parse(s).unwrap())
                .map(|d| d.platform.clone().unwrap().to_text())
        };
        assert_eq!(pick("linux/amd64").as_deref(), Some("linux/amd64"));
        assert_eq!(pick("linux/arm64").as_deref(), Some("linux/arm64/v8"));
        assert_eq!(pick("linux/arm/v7").as_deref(), Some("linux/arm/v7"));
        assert_eq!(pick("linux/arm/v6"), None);
        assert_eq!(pick("windows/amd64"), None);
        assert!(Platform::parse("linux").is_none());
        assert!(Platform::parse("a/b/c/d").is_none());
        assert!(select(&list, &Platform::host()).is_some());
        // arm64 without a variant is v8 (an arm64 host asks for v8).
        let bare = [entry("linux/arm64")];
        assert!(select(&bare, &Platform::parse("linux/arm64/v8").unwrap()).is_some());
        assert!(select(&bare, &Platform::parse("linux/amd64").unwrap()).is_none());
        // An archive's only manifest loads whatever its platform.
        let foreign = [entry("linux/s390x")];
        assert_eq!(for_archive(&foreign), Some(&foreign[0]));
        assert!(for_archive(&list).is_some());
    }
}
