//! `RUN --mount=type=…,key=value,…`
//! (<https://docs.docker.com/reference/dockerfile/#run---mount>), read as
//! BuildKit reads it (frontend/dockerfile/instructions/commands_runmount.go):
//! one CSV record of `key=value` fields (and the bare `ro`, `rw`,
//! `required`), taken in order, then checked as a whole.
//!
//! Values are kept unexpanded; so a variable cannot stand for a number
//! (`uid=$UID`) or the type here, and `from=` refuses variables as BuildKit
//! does.

use crate::ast::{Mount, MountKind, Sharing};
use crate::suggest::suggest;

const TYPES: [&str; 5] = ["bind", "cache", "tmpfs", "secret", "ssh"];
const SHARINGS: [&str; 3] = ["shared", "private", "locked"];
const KEYS: [&str; 17] = [
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
];

/// A mount being read: the fields BuildKit tracks beside [`Mount`].
struct Draft {
    mount: Mount,
    /// No `ro`/`rw` given: the type's default applies.
    readonly_default: bool,
    sharing_given: bool,
}

pub(crate) fn parse(spec: &str) -> Result<Mount, String> {
    let fields = csv_record(spec).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    let mut draft = Draft {
        mount: Mount {
            kind: MountKind::Bind,
            target: String::new(),
            source: None,
            from: None,
            id: None,
            readonly: false,
            sharing: Sharing::Shared,
            mode: None,
            uid: None,
            gid: None,
            size: None,
            required: false,
        },
        readonly_default: true,
        sharing_given: false,
    };
    for field in &fields {
        match field.split_once('=') {
            Some((key, value)) => draft.set(&key.to_lowercase(), value, field)?,
            None => draft.set_bare(&field.to_lowercase(), field)?,
        }
    }
    draft.finish()
}

impl Draft {
    /// `ro`, `rw`, `required` without a value.
    fn set_bare(&mut self, key: &str, field: &str) -> Result<(), String> {
        match key {
            "readonly" | "ro" => self.set_readonly(true),
            "readwrite" | "rw" => self.set_readonly(false),
            "required" => self.mount.required = self.secret_or_ssh(key)?,
            _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
        }
        Ok(())
    }

    fn set_readonly(&mut self, readonly: bool) {
        self.mount.readonly = readonly;
        self.readonly_default = false;
    }

    fn secret_or_ssh(&self, key: &str) -> Result<bool, String> {
        match self.mount.kind {
            MountKind::Secret | MountKind::Ssh => Ok(true),
            kind => Err(format!(
                "unexpected key '{key}' for mount type '{}'",
                kind_name(kind)
            )),
        }
    }

    fn set(&mut self, key: &str, value: &str, field: &str) -> Result<(), String> {
        let m = &mut self.mount;
        match key {
            "type" => m.kind = mount_kind(value)?,
            "from" => m.from = Some(no_variables(key, value)?),
            "source" | "src" => m.source = Some(value.into()),
            "target" | "dst" | "destination" => m.target = value.into(),
            "readonly" | "ro" => self.set_readonly(go_bool(key, value)?),
            "readwrite" | "rw" => self.set_readonly(!go_bool(key, value)?),
            "required" => {
                self.secret_or_ssh(key)?;
                self.mount.required = go_bool(key, value)?;
            }
            "size" if m.kind == MountKind::Tmpfs => {
                m.size = Some(
                    ram_in_bytes(value)
                        .ok_or_else(|| format!("invalid value for {key}: {value}"))?,
                )
            }
            "size" => {
                return Err(format!(
                    "unexpected key '{key}' for mount type '{}'",
                    kind_name(m.kind)
                ))
            }
            "id" => m.id = Some(value.into()),
            "sharing" => {
                m.sharing = sharing(value)?;
                self.sharing_given = true;
            }
            "mode" => {
                m.mode = Some(
                    number(value, 8).ok_or_else(|| format!("invalid value {value} for mode"))?,
                )
            }
            "uid" => {
                m.uid = Some(
                    number(value, 10).ok_or_else(|| format!("invalid value {value} for uid"))?,
                )
            }
            "gid" => {
                m.gid = Some(
                    number(value, 10).ok_or_else(|| format!("invalid value {value} for gid"))?,
                )
            }
            _ => return Err(unexpected_key(key, field)),
        }
        Ok(())
    }

    /// BuildKit's validateMount, and a target for the mounts that need one.
    fn finish(mut self) -> Result<Mount, String> {
        let m = &mut self.mount;
        let kind = kind_name(m.kind);
        if !matches!(
            m.kind,
            MountKind::Secret | MountKind::Ssh | MountKind::Cache
        ) {
            for (name, given) in [
                ("mode", m.mode.is_some()),
                ("uid", m.uid.is_some()),
                ("gid", m.gid.is_some()),
            ] {
                if given {
                    return Err(format!("{name} not allowed for {kind:?} type mounts"));
                }
            }
        }
        if self.readonly_default {
            m.readonly = !matches!(m.kind, MountKind::Cache | MountKind::Tmpfs);
        }
        if m.kind == MountKind::Secret {
            check_secret(m, self.sharing_given)?;
        }
        if self.sharing_given && m.kind != MountKind::Cache {
            return Err(format!("invalid cache sharing set for {kind} mount"));
        }
        if m.target.is_empty()
            && matches!(
                m.kind,
                MountKind::Bind | MountKind::Cache | MountKind::Tmpfs
            )
        {
            return Err(format!(
                "invalid mount target \"\": a {kind} mount needs target="
            ));
        }
        Ok(self.mount)
    }
}

fn check_secret(m: &Mount, sharing_given: bool) -> Result<(), String> {
    if m.from.is_some() {
        return Err("secret mount should not have a from".into());
    }
    if sharing_given {
        return Err("secret mount should not define sharing".into());
    }
    if m.source.is_none() && m.target.is_empty() && m.id.is_none() {
        return Err("invalid secret mount. one of source, target required".into());
    }
    if m.source.is_some() && m.id.is_some() {
        return Err("both source and id can't be set".into());
    }
    Ok(())
}

fn kind_name(kind: MountKind) -> &'static str {
    match kind {
        MountKind::Bind => "bind",
        MountKind::Cache => "cache",
        MountKind::Tmpfs => "tmpfs",
        MountKind::Secret => "secret",
        MountKind::Ssh => "ssh",
    }
}

fn mount_kind(value: &str) -> Result<MountKind, String> {
    Ok(match value.to_lowercase().as_str() {
        "bind" => MountKind::Bind,
        "cache" => MountKind::Cache,
        "tmpfs" => MountKind::Tmpfs,
        "secret" => MountKind::Secret,
        "ssh" => MountKind::Ssh,
        _ => {
            return Err(with_suggestion(
                format!("unsupported mount type {value:?}"),
                value,
                &TYPES,
            ))
        }
    })
}

fn sharing(value: &str) -> Result<Sharing, String> {
    Ok(match value.to_lowercase().as_str() {
        "shared" => Sharing::Shared,
        "private" => Sharing::Private,
        "locked" => Sharing::Locked,
        _ => {
            return Err(with_suggestion(
                format!("unsupported sharing value {value:?}"),
                value,
                &SHARINGS,
            ))
        }
    })
}

fn unexpected_key(key: &str, field: &str) -> String {
    with_suggestion(format!("unexpected key '{key}' in '{field}'"), key, &KEYS)
}

fn with_suggestion(message: String, value: &str, options: &[&str]) -> String {
    match suggest(value, options, true) {
        Some(near) => format!("{message} (did you mean {near}?)"),
        None => message,
    }
}

/// `from=` names a stage or image directly: BuildKit refuses `$` there.
fn no_variables(key: &str, value: &str) -> Result<String, String> {
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '$' && chars.clone().next().is_some_and(|n| n != '\n') {
            return Err(format!(
                "'{key}' doesn't support variable expansion, define alias stage instead"
            ));
        }
    }
    Ok(value.into())
}

/// Go's `strconv.ParseBool`.
fn go_bool(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("invalid value for {key}: {value}")),
    }
}

/// Go's `strconv.ParseUint(value, radix, 32)`: digits only, no sign.
fn number(value: &str, radix: u32) -> Option<u32> {
    if value.is_empty() || !value.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(value, radix).ok()
}

/// go-units' `RAMInBytes`: `64m`, `1.5g`, `512`, `10kb`, `2GiB`; binary
/// multiples, fractions of a byte truncated.
fn ram_in_bytes(value: &str) -> Option<u64> {
    let int_len = value.bytes().take_while(u8::is_ascii_digit).count();
    let (int_digits, rest) = value.split_at(int_len);
    if int_digits.is_empty() {
        return None;
    }
    let (frac_digits, rest) = match rest.strip_prefix('.') {
        Some(after) => match after.bytes().take_while(u8::is_ascii_digit).count() {
            0 => return None,
            len => after.split_at(len),
        },
        None => ("", rest),
    };
    let multiplier = unit_multiplier(rest.strip_prefix(' ').unwrap_or(rest))?;
    let whole: u128 = int_digits.parse().ok()?;
    let frac_digits = &frac_digits[..frac_digits.len().min(18)];
    let frac: u128 = if frac_digits.is_empty() {
        0
    } else {
        frac_digits.parse().ok()?
    };
    let scale = 10u128.pow(u32::try_from(frac_digits.len()).ok()?);
    let bytes = whole
        .checked_mul(multiplier)?
        .checked_add(frac * multiplier / scale)?;
    u64::try_from(bytes)
        .ok()
        .filter(|b| i64::try_from(*b).is_ok())
}

/// `[kKmMgGtTpP]?[iI]?[bB]?`
fn unit_multiplier(unit: &str) -> Option<u128> {
    let mut chars = unit.chars().peekable();
    let power = match chars.peek().map(char::to_ascii_lowercase) {
        Some(p @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            chars.next();
            "kmgtp".find(p).map_or(0, |i| i + 1)
        }
        _ => 0,
    };
    chars.next_if(|c| c.eq_ignore_ascii_case(&'i'));
    chars.next_if(|c| c.eq_ignore_ascii_case(&'b'));
    if chars.next().is_some() {
        return None;
    }
    Some(1024u128.pow(u32::try_from(power).ok()?))
}

/// One record of Go's encoding/csv: fields split at `,`; a field that
/// starts with `"` is quoted (`""` inside is a quote).
fn csv_record(text: &str) -> Result<Vec<String>, String> {
    if text.is_empty() {
        return Err("EOF".into());
    }
    let mut fields = Vec::new();
    let mut rest = text;
    loop {
        let (field, tail) = match rest.strip_prefix('"') {
            Some(quoted) => quoted_field(quoted)?,
            None => bare_field(rest)?,
        };
        fields.push(field);
        match tail {
            Some(tail) => rest = tail,
            None => return Ok(fields),
        }
    }
}

/// A field up to the next `,`, and what follows the comma (`None` at the
/// end).
fn bare_field(text: &str) -> Result<(String, Option<&str>), String> {
    let (field, tail) = match text.split_once(',') {
        Some((field, tail)) => (field, Some(tail)),
        None => (text, None),
    };
    if field.contains('"') {
        return Err("bare \" in non-quoted-field".into());
    }
    Ok((field.into(), tail))
}

fn quoted_field(text: &str) -> Result<(String, Option<&str>), String> {
    let mut field = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '"' {
            field.push(c);
            continue;
        }
        if chars.next_if(|&(_, next)| next == '"').is_some() {
            field.push('"');
            continue;
        }
        let after = &text[i + 1..];
        return match after.strip_prefix(',') {
            Some(tail) => Ok((field, Some(tail))),
            None if after.is_empty() => Ok((field, None)),
            None => Err("extraneous or missing \" in quoted-field".into()),
        };
    }
    Err("extraneous or missing \" in quoted-field".into())
}

#[cfg(test)]
#[path = "mount_tests.rs"]
mod tests;
