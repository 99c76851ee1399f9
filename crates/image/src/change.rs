//! `--change` edits (`docker import -c`, `docker commit -c`): the
//! Dockerfile instructions that only touch the config — CMD, ENTRYPOINT,
//! ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR.

use std::collections::BTreeMap;

use crate::config::ContainerConfig;
use crate::error::{ImageError, Result};

/// Applies one change such as `CMD ["sh"]` or `ENV A=1 B=2`.
pub fn apply_change(cfg: &mut ContainerConfig, change: &str) -> Result<()> {
    let change = change.trim();
    let (word, rest) = change
        .split_once(char::is_whitespace)
        .unwrap_or((change, ""));
    let rest = rest.trim();
    let bad = |reason: &str| ImageError::InvalidChange {
        change: change.to_owned(),
        reason: reason.to_owned(),
    };
    match word.to_ascii_uppercase().as_str() {
        "CMD" => cfg.cmd = Some(command(rest)),
        "ENTRYPOINT" => cfg.entrypoint = Some(command(rest)),
        "ENV" => {
            let env = cfg.env.get_or_insert_with(Vec::new);
            for (k, v) in pairs(rest).ok_or_else(|| bad("ENV needs KEY=VALUE"))? {
                env.retain(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) != k);
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let labels = cfg.labels.get_or_insert_with(BTreeMap::new);
            labels.extend(pairs(rest).ok_or_else(|| bad("LABEL needs KEY=VALUE"))?);
        }
        "EXPOSE" => {
            let ports = cfg.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in rest.split_whitespace() {
                let port = if p.contains('/') { p.to_owned() } else { format!("{p}/tcp") };
                ports.insert(port, serde_json::json!({}));
            }
        }
        "VOLUME" => {
            let vols = cfg.volumes.get_or_insert_with(BTreeMap::new);
            let list = serde_json::from_str::<Vec<String>>(rest)
                .unwrap_or_else(|_| rest.split_whitespace().map(str::to_owned).collect());
            for v in list {
                vols.insert(v, serde_json::json!({}));
            }
        }
        "USER" => cfg.user = rest.to_owned(),
        "WORKDIR" => cfg.working_dir = rest.to_owned(),
        "STOPSIGNAL" => cfg.stop_signal = Some(rest.to_owned()),
        "ONBUILD" => cfg.on_build.get_or_insert_with(Vec::new).push(rest.to_owned()),
        _ => return Err(bad("only CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME and WORKDIR are allowed")),
    }
    if rest.is_empty() {
        return Err(bad("the instruction needs an argument"));
    }
    Ok(())
}

/// Exec form (a JSON array) or shell form (`/bin/sh -c …`).
fn command(rest: &str) -> Vec<String> {
    serde_json::from_str::<Vec<String>>(rest)
        .unwrap_or_else(|_| vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.to_owned()])
}

/// `k=v k2="v 2"` pairs, or the legacy single `k v` form.
fn pairs(rest: &str) -> Option<Vec<(String, String)>> {
    if !rest.contains('=') {
        let (k, v) = rest.split_once(char::is_whitespace)?;
        return Some(vec![(k.to_owned(), v.trim().to_owned())]);
    }
    let mut out = Vec::new();
    for word in words(rest) {
        let (k, v) = word.split_once('=')?;
        if k.is_empty() {
            return None;
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    Some(out)
}

/// Splits on whitespace outside double quotes, dropping the quotes.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => cur.extend(chars.next()),
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_edit_the_config_like_dockerfile_instructions() {
        let mut c = ContainerConfig::default();
        for ch in [
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /entry.sh",
            "ENV A=1 B=\"two words\"",
            "ENV A=3",
            "LABEL org.example=yes",
            "EXPOSE 80 53/udp",
            "VOLUME /data",
            "USER 1000:1000",
            "WORKDIR /srv",
            "STOPSIGNAL SIGQUIT",
        ] {
            apply_change(&mut c, ch).unwrap();
        }
        assert_eq!(c.cmd.unwrap(), ["sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "/entry.sh"]);
        assert_eq!(c.env.unwrap(), ["B=two words", "A=3"]);
        assert_eq!(c.labels.unwrap()["org.example"], "yes");
        let ports: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp"]);
        assert!(c.volumes.unwrap().contains_key("/data"));
        assert_eq!(
            (c.user.as_str(), c.working_dir.as_str()),
            ("1000:1000", "/srv")
        );
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
    }

    #[test]
    fn instructions_that_need_a_build_are_refused() {
        let err = apply_change(&mut ContainerConfig::default(), "RUN rm -rf /").unwrap_err();
        assert!(err.to_string().contains("only CMD, ENTRYPOINT"), "{err}");
        let err = apply_change(&mut ContainerConfig::default(), "ENV =x").unwrap_err();
        assert!(err.to_string().contains("ENV needs KEY=VALUE"), "{err}");
    }
}
