//! Image references with Docker's normalisation.
//!
//! The grammar is the one of `github.com/distribution/reference`
//! (`reference.go` and `normalize.go`), which Docker uses for every image
//! name it accepts:
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [ domain "/" ] path
//! domain           := host [ ":" port-number ]
//! host             := domain-name | "[" ipv6-hex-and-colons "]"
//! domain-name      := domain-component [ "." domain-component ]*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! port-number      := /[0-9]+/
//! path             := path-component [ "/" path-component ]*
//! path-component   := alpha-numeric [ separator alpha-numeric ]*
//! alpha-numeric    := /[a-z0-9]+/
//! separator        := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/
//! ```
//!
//! Normalisation (`ParseNormalizedNamed`): the first component is a domain
//! only if it contains `.` or `:`, is `localhost`, or has uppercase letters;
//! otherwise the domain is `docker.io`. `index.docker.io` becomes
//! `docker.io`, and single-component paths on `docker.io` get `library/`.
//! The familiar form (`FamiliarString`) undoes the last two steps for display.
//! A bare 64-hex string is refused, since it would be an image ID.
//! No default tag is added on parsing: see [`Reference::with_default_tag`].

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::ImageError;

/// The registry that names without a domain refer to.
pub const DEFAULT_DOMAIN: &str = "docker.io";

/// The old spelling of [`DEFAULT_DOMAIN`], normalised to it.
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";

/// The namespace of Docker Hub's official images.
const OFFICIAL_REPO_PREFIX: &str = "library/";

/// The tag [`Reference::with_default_tag`] adds.
pub const DEFAULT_TAG: &str = "latest";

/// Longest `domain/path`, in bytes.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Longest tag, in bytes.
const TAG_LENGTH_MAX: usize = 128;

/// A normalised image reference: `domain/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses `s` as Docker does (`ParseNormalizedNamed`): `busybox` becomes
    /// `docker.io/library/busybox`, with no tag added.
    pub fn parse_normalized(s: &str) -> Result<Self, ImageError> {
        let invalid = |reason| ImageError::InvalidReference {
            input: s.to_owned(),
            reason,
        };
        check_not_identifier(s).map_err(invalid)?;
        let (rest, digest) = split_digest(s).map_err(invalid)?;
        let (name, tag) = split_tag(rest).map_err(invalid)?;
        let (domain, path) = split_domain(name).map_err(invalid)?;
        check_path(&path).map_err(invalid)?;
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(invalid(
                "repository name must not be more than 255 characters",
            ));
        }
        Ok(Self {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// The registry host, with its port if any (`docker.io`, `localhost:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path within the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if one was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if one was given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The full repository name, `domain/path`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Same as [`Reference::repository`] (distribution's `Name()`).
    pub fn name(&self) -> String {
        self.repository()
    }

    /// Whether the reference has neither tag nor digest.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// Adds the tag `latest` if there is neither a tag nor a digest
    /// (distribution's `TagNameOnly`).
    #[must_use]
    pub fn with_default_tag(mut self) -> Self {
        if self.is_name_only() {
            self.tag = Some(DEFAULT_TAG.to_owned());
        }
        self
    }

    /// The same repository with `tag` (validated); a digest is kept.
    pub fn with_tag(&self, tag: &str) -> Result<Self, ImageError> {
        check_tag(tag).map_err(|reason| ImageError::InvalidReference {
            input: format!("{}:{tag}", self.repository()),
            reason,
        })?;
        Ok(Self {
            tag: Some(tag.to_owned()),
            ..self.clone()
        })
    }

    /// The same repository with `digest`; a tag is kept.
    #[must_use]
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The bare repository, without tag or digest.
    #[must_use]
    pub fn without_tag_or_digest(&self) -> Self {
        Self {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// The repository as Docker shows it: `busybox`, `foo/bar`,
    /// `localhost:5000/x` (distribution's `FamiliarName`).
    pub fn familiar_repository(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.repository();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            _ => self.path.clone(),
        }
    }

    /// The reference as Docker shows it, with tag and digest:
    /// `busybox:latest` (distribution's `FamiliarString`).
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_repository();
        self.push_tag_and_digest(&mut s);
        s
    }

    fn push_tag_and_digest(&self, s: &mut String) {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(&digest.to_string());
        }
    }
}

impl fmt::Display for Reference {
    /// The full normalised form, `domain/path[:tag][@digest]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.repository();
        self.push_tag_and_digest(&mut s);
        f.write_str(&s)
    }
}

impl FromStr for Reference {
    type Err = ImageError;

    /// Same as [`Reference::parse_normalized`].
    fn from_str(s: &str) -> Result<Self, ImageError> {
        Self::parse_normalized(s)
    }
}

type Checked<T> = Result<T, &'static str>;

/// Refuses the empty string and a bare 64-hex image ID.
fn check_not_identifier(s: &str) -> Checked<()> {
    if s.is_empty() {
        return Err("reference is empty");
    }
    let is_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if s.len() == 64 && s.bytes().all(is_hex) {
        return Err("cannot specify 64-byte hexadecimal strings");
    }
    Ok(())
}

/// Splits `name[:tag]@digest` at the `@` and parses the digest.
fn split_digest(s: &str) -> Checked<(&str, Option<Digest>)> {
    let Some((rest, digest)) = s.split_once('@') else {
        return Ok((s, None));
    };
    if digest.is_empty() {
        return Err("digest is empty");
    }
    let digest = digest
        .parse::<Digest>()
        .map_err(|_| "invalid digest (want sha256:<64 hex> or sha512:<128 hex>)")?;
    Ok((rest, Some(digest)))
}

/// Splits `name[:tag]` at a `:` after the last `/` (an earlier one is a port).
fn split_tag(s: &str) -> Checked<(&str, Option<String>)> {
    let last_slash = s.rfind('/').map_or(0, |i| i + 1);
    let Some(colon) = s[last_slash..].rfind(':').map(|i| i + last_slash) else {
        return Ok((s, None));
    };
    let (name, tag) = (&s[..colon], &s[colon + 1..]);
    check_tag(tag)?;
    Ok((name, Some(tag.to_owned())))
}

/// Splits a name into a normalised domain and path (`splitDockerDomain`).
fn split_domain(name: &str) -> Checked<(String, String)> {
    if name.is_empty() {
        return Err("repository name is empty");
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if looks_like_domain(first) => {
            check_domain(first)?;
            (first, rest)
        }
        _ => (DEFAULT_DOMAIN, name),
    };
    let domain = if domain == LEGACY_DEFAULT_DOMAIN {
        DEFAULT_DOMAIN
    } else {
        domain
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("{OFFICIAL_REPO_PREFIX}{path}")
    } else {
        path.to_owned()
    };
    Ok((domain.to_owned(), path))
}

/// Whether the first component of a name is a registry host.
fn looks_like_domain(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

/// `domain := host [":" port-number]`.
fn check_domain(domain: &str) -> Checked<()> {
    if let Some(inner) = domain.strip_prefix('[') {
        let (addr, rest) = inner
            .split_once(']')
            .ok_or("IPv6 address in domain lacks its closing ']'")?;
        check_ipv6(addr)?;
        return match rest.strip_prefix(':') {
            Some(port) => check_port(port),
            None if rest.is_empty() => Ok(()),
            None => Err("unexpected text after IPv6 address"),
        };
    }
    match domain.split_once(':') {
        Some((host, port)) => {
            check_domain_name(host)?;
            check_port(port)
        }
        None => check_domain_name(domain),
    }
}

/// The loose IPv6 rule of the grammar: hex digits and colons in brackets.
fn check_ipv6(addr: &str) -> Checked<()> {
    if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
        return Err("invalid IPv6 address in domain");
    }
    Ok(())
}

/// `port-number := /[0-9]+/`.
fn check_port(port: &str) -> Checked<()> {
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err("domain port must be a number");
    }
    Ok(())
}

/// `domain-name := domain-component ["." domain-component]*`.
fn check_domain_name(host: &str) -> Checked<()> {
    host.split('.').try_for_each(check_domain_component)
}

/// `domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/`.
fn check_domain_component(c: &str) -> Checked<()> {
    let bytes = c.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return Err("empty component in domain");
    };
    if !bytes
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err("domain may contain only letters, digits, '-', '.' and a ':port'");
    }
    if *first == b'-' || *last == b'-' {
        return Err("domain component must not start or end with '-'");
    }
    Ok(())
}

/// `path := path-component ["/" path-component]*`, lowercase only.
fn check_path(path: &str) -> Checked<()> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("repository name must be lowercase");
    }
    path.split('/').try_for_each(check_path_component)
}

/// `path-component := alpha-numeric [separator alpha-numeric]*`.
fn check_path_component(c: &str) -> Checked<()> {
    let bytes = c.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return Err("repository name has an empty path component");
    };
    if let Some(&b) = bytes
        .iter()
        .find(|&&b| !is_alnum(b) && !is_separator_byte(b))
    {
        return Err(if b == b':' {
            "repository name may contain ':' only before a tag or as a domain port"
        } else {
            "repository name may contain only lowercase letters, digits, '.', '_', '-' and '/'"
        });
    }
    if !is_alnum(first) || !is_alnum(last) {
        return Err("path component must start and end with a lowercase letter or digit");
    }
    c.split(is_alnum_char)
        .filter(|s| !s.is_empty())
        .try_for_each(check_separator)
}

/// `separator := /[_.]|__|[-]+/`.
fn check_separator(sep: &str) -> Checked<()> {
    let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
    if !ok {
        return Err("path component separators must be '.', '_', '__' or a run of '-'");
    }
    Ok(())
}

/// `alpha-numeric := /[a-z0-9]/` (one byte).
fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_alnum_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn is_separator_byte(b: u8) -> bool {
    matches!(b, b'.' | b'_' | b'-')
}

/// `tag := /[\w][\w.-]{0,127}/`, `\w` being `[A-Za-z0-9_]`.
fn check_tag(tag: &str) -> Checked<()> {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let Some(&first) = tag.as_bytes().first() else {
        return Err("tag is empty");
    };
    if !is_word(first) {
        return Err("tag must start with a letter, digit or '_'");
    }
    if tag.len() > TAG_LENGTH_MAX {
        return Err("tag must not be more than 128 characters");
    }
    if !tag.bytes().all(|b| is_word(b) || b == b'.' || b == b'-') {
        return Err("tag may contain only letters, digits, '_', '.' and '-'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn parse(s: &str) -> Reference {
        Reference::parse_normalized(s).unwrap()
    }

    fn parse_err(s: &str) -> String {
        Reference::parse_normalized(s).unwrap_err().to_string()
    }

    #[test]
    fn bare_name_goes_to_docker_hub_library() {
        let r = parse("busybox");
        assert_eq!(r.domain(), "docker.io");
        assert_eq!(r.path(), "library/busybox");
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), None);
        assert_eq!(r.to_string(), "docker.io/library/busybox");
        assert_eq!(r.familiar(), "busybox");
        assert_eq!(r.familiar_repository(), "busybox");
        assert_eq!(r.repository(), "docker.io/library/busybox");
        assert_eq!(r.name(), r.repository());
    }

    #[test]
    fn tagged_name_keeps_its_tag() {
        let r = parse("busybox:1.36");
        assert_eq!(r.tag(), Some("1.36"));
        assert_eq!(r.to_string(), "docker.io/library/busybox:1.36");
        assert_eq!(r.familiar(), "busybox:1.36");
    }

    #[test]
    fn spellings_of_an_official_image_are_equal() {
        let want = parse("busybox");
        for s in [
            "library/busybox",
            "docker.io/busybox",
            "docker.io/library/busybox",
            "index.docker.io/library/busybox",
            "index.docker.io/busybox",
        ] {
            assert_eq!(parse(s), want, "{s}");
        }
    }

    #[test]
    fn user_repository_on_docker_hub() {
        let r = parse("foo/bar:tag");
        assert_eq!(r.to_string(), "docker.io/foo/bar:tag");
        assert_eq!(r.familiar(), "foo/bar:tag");
        assert_eq!(parse("docker.io/foo/bar").familiar(), "foo/bar");
    }

    #[test]
    fn nested_library_path_is_not_shortened() {
        let r = parse("docker.io/library/a/b");
        assert_eq!(r.familiar(), "library/a/b");
    }

    #[test]
    fn localhost_is_a_domain() {
        let r = parse("localhost/x");
        assert_eq!(r.domain(), "localhost");
        assert_eq!(r.path(), "x");
        assert_eq!(r.familiar(), "localhost/x");
    }

    #[test]
    fn domain_with_port_and_tag() {
        let r = parse("localhost:5000/a/b:t");
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.path(), "a/b");
        assert_eq!(r.tag(), Some("t"));
        assert_eq!(r.familiar(), "localhost:5000/a/b:t");
        assert_eq!(r.to_string(), "localhost:5000/a/b:t");
    }

    #[test]
    fn ip_domain_and_ipv6_domain() {
        let r = parse("127.0.0.1:5000/x");
        assert_eq!(r.domain(), "127.0.0.1:5000");
        assert_eq!(r.path(), "x");
        assert_eq!(parse("[::1]:5000/x").domain(), "[::1]:5000");
    }

    #[test]
    fn bare_host_with_port_is_a_tagged_name() {
        let r = parse("localhost:5000");
        assert_eq!(r.to_string(), "docker.io/library/localhost:5000");
    }

    #[test]
    fn digest_reference() {
        let s = format!("registry.example.com/a/b@sha256:{HEX}");
        let r = parse(&s);
        assert_eq!(r.domain(), "registry.example.com");
        assert_eq!(r.path(), "a/b");
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().map(Digest::hex), Some(HEX));
        assert_eq!(r.to_string(), s);
        assert_eq!(r.familiar(), s);
    }

    #[test]
    fn tag_and_digest_together() {
        let r = parse(&format!("a:t@sha256:{HEX}"));
        assert_eq!(r.tag(), Some("t"));
        assert!(r.digest().is_some());
        assert_eq!(r.to_string(), format!("docker.io/library/a:t@sha256:{HEX}"));
        assert_eq!(r.familiar(), format!("a:t@sha256:{HEX}"));
    }

    #[test]
    fn display_round_trips_through_from_str() {
        for s in ["busybox", "foo/bar:1", "localhost:5000/a/b:t"] {
            let r = parse(s);
            assert_eq!(r.to_string().parse::<Reference>().unwrap(), r);
        }
    }

    #[test]
    fn default_tag_only_when_nothing_pins_the_image() {
        assert_eq!(
            parse("busybox").with_default_tag().familiar(),
            "busybox:latest"
        );
        assert_eq!(parse("busybox:1").with_default_tag().tag(), Some("1"));
        let pinned = parse(&format!("busybox@sha256:{HEX}")).with_default_tag();
        assert_eq!(pinned.tag(), None);
    }

    #[test]
    fn with_tag_validates_and_keeps_the_digest() {
        let r = parse(&format!("a@sha256:{HEX}")).with_tag("v2").unwrap();
        assert_eq!(r.tag(), Some("v2"));
        assert!(r.digest().is_some());
        let err = parse("a").with_tag("-x").unwrap_err().to_string();
        assert!(err.contains("tag must start with"), "{err}");
        assert!(err.contains("docker.io/library/a:-x"), "{err}");
    }

    #[test]
    fn without_tag_or_digest_and_with_digest() {
        let r = parse(&format!("a:t@sha256:{HEX}"));
        let bare = r.without_tag_or_digest();
        assert!(bare.is_name_only());
        assert_eq!(bare.familiar(), "a");
        let d = Digest::sha256(b"");
        assert_eq!(bare.with_digest(d).familiar(), format!("a@sha256:{HEX}"));
    }

    #[test]
    fn separators_in_path_components() {
        assert_eq!(parse("a__b").path(), "library/a__b");
        assert_eq!(parse("a--b").path(), "library/a--b");
        assert_eq!(parse("a.b_c-d").path(), "library/a.b_c-d");
        assert_eq!(parse("a---b").path(), "library/a---b");
    }

    #[test]
    fn uppercase_first_component_is_a_domain() {
        let r = parse("Registry/x");
        assert_eq!(r.domain(), "Registry");
        assert_eq!(r.path(), "x");
    }

    #[test]
    fn malformed_references_are_refused_with_the_reason() {
        let long_tag = format!("a:{}", "t".repeat(129));
        let long_name = "a".repeat(240);
        let hex_only = HEX.to_owned();
        for (input, reason) in [
            ("", "reference is empty"),
            ("Busybox", "must be lowercase"),
            ("foo/Bar", "must be lowercase"),
            ("a//b", "empty path component"),
            ("a/", "empty path component"),
            ("/a", "empty path component"),
            ("a:", "tag is empty"),
            ("a:-bad", "tag must start with"),
            ("a:b!c", "tag may contain only"),
            (long_tag.as_str(), "tag must not be more than 128"),
            (":tag", "repository name is empty"),
            ("a@sha256:zz", "invalid digest"),
            ("a@", "digest is empty"),
            (hex_only.as_str(), "64-byte hexadecimal"),
            (long_name.as_str(), "more than 255"),
            ("-a", "must start and end with"),
            ("a-", "must start and end with"),
            ("a..b", "separators must be"),
            ("a___b", "separators must be"),
            ("a.-b", "separators must be"),
            ("a b", "may contain only lowercase"),
            ("localhost:x/a", "port must be a number"),
            ("localhost:/a", "port must be a number"),
            ("-bad.com/a", "must not start or end with '-'"),
            ("a..com/a", "empty component in domain"),
            ("a_b.com/a", "domain may contain only"),
            ("[::1/a", "closing ']'"),
            ("[zz]:1/a", "invalid IPv6"),
        ] {
            let err = parse_err(input);
            assert!(err.contains(reason), "{input:?}: {err}");
            assert!(
                err.starts_with("invalid reference format"),
                "{input:?}: {err}"
            );
        }
    }

    #[test]
    fn name_length_counts_the_normalised_name() {
        // "docker.io/library/" is 18 bytes; 237 more reach exactly 255.
        assert!(Reference::parse_normalized(&"a".repeat(237)).is_ok());
        assert!(Reference::parse_normalized(&"a".repeat(238)).is_err());
    }

    #[test]
    fn uppercase_hex_is_a_name_error_not_an_id_error() {
        let err = parse_err(&HEX.to_uppercase());
        assert!(err.contains("must be lowercase"), "{err}");
    }
}
