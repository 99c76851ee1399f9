//! `RUN --mount` specs: what they give, and BuildKit's errors.

use super::*;

fn mount(spec: &str) -> Mount {
    parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

fn base(kind: MountKind, target: &str, readonly: bool) -> Mount {
    Mount {
        kind,
        target: target.into(),
        source: None,
        from: None,
        id: None,
        readonly,
        sharing: Sharing::Shared,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        required: false,
    }
}

#[test]
fn bind_is_the_default_type_and_read_only() {
    assert_eq!(mount("target=/src"), base(MountKind::Bind, "/src", true));
    let m = mount("type=bind,source=/a,from=build,dst=/b,rw");
    assert_eq!(
        m,
        Mount {
            source: Some("/a".into()),
            from: Some("build".into()),
            ..base(MountKind::Bind, "/b", false)
        }
    );
}

#[test]
fn cache_with_everything() {
    let m = mount(
        "type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1000,gid=1000,ro",
    );
    assert_eq!(
        m,
        Mount {
            id: Some("pip".into()),
            sharing: Sharing::Locked,
            mode: Some(0o755),
            uid: Some(1000),
            gid: Some(1000),
            ..base(MountKind::Cache, "/root/.cache", true)
        }
    );
    assert!(!mount("type=cache,target=/c").readonly);
    assert_eq!(
        mount("type=cache,target=/c,sharing=PRIVATE").sharing,
        Sharing::Private
    );
}

#[test]
fn tmpfs_sizes() {
    assert_eq!(mount("type=tmpfs,target=/t,size=64m").size, Some(64 << 20));
    assert_eq!(mount("type=tmpfs,target=/t,size=1.5g").size, Some(3 << 29));
    assert_eq!(mount("type=tmpfs,target=/t,size=512").size, Some(512));
    assert_eq!(
        mount("type=tmpfs,target=/t,size=10KiB").size,
        Some(10 << 10)
    );
    assert_eq!(mount("type=tmpfs,target=/t,size=2 GB").size, Some(2 << 30));
    assert!(!mount("type=tmpfs,target=/t").readonly);
}

#[test]
fn secret_and_ssh() {
    let m = mount("type=secret,id=npmrc,target=/root/.npmrc,required,mode=0400");
    assert_eq!(
        m,
        Mount {
            id: Some("npmrc".into()),
            required: true,
            mode: Some(0o400),
            ..base(MountKind::Secret, "/root/.npmrc", true)
        }
    );
    assert_eq!(mount("type=ssh"), base(MountKind::Ssh, "", true));
    assert!(!mount("type=ssh,required=false").required);
    assert!(mount("type=ssh,required=1").required);
}

#[test]
fn quoted_csv_fields() {
    assert_eq!(
        mount(r#"type=bind,"source=a,b",target=/x"#)
            .source
            .as_deref(),
        Some("a,b")
    );
    assert_eq!(mount(r#"type=bind,"target=/a""b""#).target, "/a\"b");
}

#[test]
fn errors() {
    let cases = [
        ("type=foo,target=/x", "unsupported mount type \"foo\""),
        (
            "type=cahce,target=/x",
            "unsupported mount type \"cahce\" (did you mean cache?)",
        ),
        ("target=/x,bogus=1", "unexpected key 'bogus' in 'bogus=1'"),
        (
            "target=/x,tagret=/y",
            "unexpected key 'tagret' in 'tagret=/y' (did you mean target?)",
        ),
        (
            "target=/x,nothing",
            "invalid field 'nothing' must be a key=value pair",
        ),
        (
            "target=/x,required",
            "unexpected key 'required' for mount type 'bind'",
        ),
        (
            "type=cache,target=/x,size=1m",
            "unexpected key 'size' for mount type 'cache'",
        ),
        (
            "type=tmpfs,target=/x,size=lots",
            "invalid value for size: lots",
        ),
        (
            "type=cache,target=/x,mode=0999",
            "invalid value 0999 for mode",
        ),
        ("type=cache,target=/x,uid=-1", "invalid value -1 for uid"),
        ("type=cache,target=/x,gid=x", "invalid value x for gid"),
        (
            "type=cache,target=/x,sharing=all",
            "unsupported sharing value \"all\"",
        ),
        ("target=/x,ro=maybe", "invalid value for ro: maybe"),
        (
            "target=/x,mode=0755",
            "mode not allowed for \"bind\" type mounts",
        ),
        (
            "type=tmpfs,target=/x,uid=1",
            "uid not allowed for \"tmpfs\" type mounts",
        ),
        (
            "target=/x,sharing=locked",
            "invalid cache sharing set for bind mount",
        ),
        (
            "type=secret,id=a,from=x",
            "secret mount should not have a from",
        ),
        (
            "type=secret,id=a,sharing=shared",
            "secret mount should not define sharing",
        ),
        (
            "type=secret",
            "invalid secret mount. one of source, target required",
        ),
        (
            "type=secret,id=a,source=b",
            "both source and id can't be set",
        ),
        (
            "type=bind,source=.",
            "invalid mount target \"\": a bind mount needs target=",
        ),
        (
            "type=cache",
            "invalid mount target \"\": a cache mount needs target=",
        ),
        (
            "type=tmpfs",
            "invalid mount target \"\": a tmpfs mount needs target=",
        ),
        (
            "target=/x,from=$STAGE",
            "'from' doesn't support variable expansion, define alias stage instead",
        ),
        ("", "failed to parse csv mounts: EOF"),
        (
            "target=/x\"y",
            "failed to parse csv mounts: bare \" in non-quoted-field",
        ),
        (
            "\"target=/x\"y",
            "failed to parse csv mounts: extraneous or missing \" in quoted-field",
        ),
    ];
    for (spec, message) in cases {
        assert_eq!(parse(spec).unwrap_err(), message, "{spec}");
    }
}

#[test]
fn numbers_and_sizes() {
    assert_eq!(number("0755", 8), Some(0o755));
    assert_eq!(number("+1", 10), None);
    assert_eq!(number("4294967296", 10), None);
    assert_eq!(ram_in_bytes("1."), None);
    assert_eq!(ram_in_bytes("k"), None);
    assert_eq!(ram_in_bytes("1kk"), None);
    assert_eq!(ram_in_bytes("1p"), Some(1 << 50));
    assert_eq!(ram_in_bytes("99999999p"), None);
}
