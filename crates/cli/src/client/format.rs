//! Output as docker prints it: aligned tables, `--format json` (one object
//! per line) and `--format` templates — the part of Go's template language
//! docker users write: `{{.Field}}`, `{{.A.B}}`, `{{json .X}}`,
//! `{{index .Map "key"}}`, and a leading `table` for a header row.

use anyhow::{bail, Result};
use serde_json::Value;

/// How a listing is printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The command's default table.
    Table,
    /// One JSON object per row.
    Json,
    /// A template, with a header row when it starts with `table`.
    Template { text: String, header: bool },
}

impl Output {
    /// From `--format` (absent: the default table).
    pub fn parse(format: Option<&str>) -> Self {
        match format.map(str::trim) {
            None | Some("" | "table") => Self::Table,
            Some("json") => Self::Json,
            Some(t) => match t.strip_prefix("table") {
                Some(rest) => Self::Template {
                    text: rest.trim_start().to_owned(),
                    header: true,
                },
                None => Self::Template {
                    text: t.to_owned(),
                    header: false,
                },
            },
        }
    }
}

/// Prints `rows` (objects keyed like docker's placeholders) as asked;
/// `default` is the command's table template, `headers` maps placeholder
/// names to docker's column titles.
pub fn print_rows(
    rows: &[Value],
    output: &Output,
    default: &str,
    headers: &[(&str, &str)],
) -> Result<()> {
    let (text, header) = match output {
        Output::Json => {
            for r in rows {
                println!("{r}");
            }
            return Ok(());
        }
        Output::Table => (default, true),
        Output::Template { text, header } => (text.as_str(), *header),
    };
    let text = unescape(text);
    let mut lines = Vec::new();
    if header {
        lines.push(header_line(&text, headers)?);
    }
    for r in rows {
        lines.push(render(&text, r)?);
    }
    let tabular = header || text.contains('\t');
    for line in if tabular { align(&lines) } else { lines } {
        println!("{line}");
    }
    Ok(())
}

/// `\t` and `\n` as docker users type them in a shell.
fn unescape(t: &str) -> String {
    t.replace("\\t", "\t").replace("\\n", "\n")
}

/// The header row: each placeholder becomes its column title.
fn header_line(text: &str, headers: &[(&str, &str)]) -> Result<String> {
    let mut out = String::new();
    for piece in split(text)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Action(a) => {
                let name = a
                    .trim()
                    .trim_start_matches("json ")
                    .trim()
                    .trim_start_matches('.');
                let title = headers
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map_or_else(|| name.to_ascii_uppercase(), |(_, v)| (*v).to_owned());
                out.push_str(&title);
            }
        }
    }
    Ok(out)
}

enum Piece<'a> {
    Text(&'a str),
    Action(&'a str),
}

fn split(text: &str) -> Result<Vec<Piece<'_>>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push(Piece::Text(&rest[..start]));
        let Some(len) = rest[start..].find("}}") else {
            bail!("template: unclosed action in {text:?}");
        };
        out.push(Piece::Action(&rest[start + 2..start + len]));
        rest = &rest[start + len + 2..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// Renders a template against one value.
pub fn render(text: &str, v: &Value) -> Result<String> {
    let mut out = String::new();
    for piece in split(&unescape(text))? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Action(a) => out.push_str(&action(a.trim(), v)?),
        }
    }
    Ok(out)
}

fn action(a: &str, v: &Value) -> Result<String> {
    let words: Vec<&str> = a.split_whitespace().collect();
    match words.as_slice() {
        [path] if path.starts_with('.') => Ok(go_string(lookup(v, path))),
        ["json", path] => Ok(serde_json::to_string(lookup(v, path))?),
        ["index", path, key] => {
            let key = key.trim_matches('"');
            Ok(go_string(lookup(v, path).get(key).unwrap_or(&Value::Null)))
        }
        _ => bail!("template: unsupported action {{{{{a}}}}} (berth supports .Field, json, index)"),
    }
}

fn lookup<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.trim_start_matches('.')
        .split('.')
        .filter(|k| !k.is_empty())
        .fold(v, |cur, k| cur.get(k).unwrap_or(&Value::Null))
}

/// A value printed as Go's templates print it.
fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_string).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(o) => format!(
            "map[{}]",
            o.iter()
                .map(|(k, v)| format!("{k}:{}", go_string(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

/// Tab-separated cells padded into columns as docker's tabwriter does: 3
/// spaces apart, each column at least 10 wide.
pub fn align(lines: &[String]) -> Vec<String> {
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|r| {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                line.push_str(cell);
                if c + 1 < r.len() {
                    let pad = (widths[c] + 3).max(10) - cell.chars().count();
                    line.push_str(&" ".repeat(pad));
                }
            }
            line.trim_end().to_owned()
        })
        .collect()
}

/// Docker's sizes: decimal units, three significant digits ("4.27MB").
pub fn human_size(bytes: i64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < units.len() {
        size /= 1000.0;
        unit += 1;
    }
    let digits = if size >= 100.0 {
        0
    } else if size >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{size:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    format!("{text}{}", units[unit])
}

/// Docker's "2 hours ago" phrases.
pub fn ago(unix: i64) -> String {
    let secs = chrono::Utc::now().timestamp() - unix;
    format!("{} ago", berth_api_types::human_duration(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_render_fields_json_and_index() {
        let v = json!({"Name": "web", "State": {"Status": "running", "Pid": 7}, "Labels": {"a": "b"}, "Gone": null});
        assert_eq!(
            render("{{.Name}} {{.State.Status}}", &v).unwrap(),
            "web running"
        );
        assert_eq!(render("{{json .Labels}}", &v).unwrap(), r#"{"a":"b"}"#);
        assert_eq!(render(r#"{{index .Labels "a"}}"#, &v).unwrap(), "b");
        assert_eq!(
            render("{{.State.Pid}}|{{.Gone}}|{{.Nope}}", &v).unwrap(),
            "7|<no value>|<no value>"
        );
        assert!(render("{{range .X}}", &v).is_err());
        assert!(render("{{.Name", &v).is_err());
    }

    #[test]
    fn tables_align_like_dockers() {
        let lines = vec![
            "ID\tNAME".to_owned(),
            "abc\tweb".to_owned(),
            "abcdef\tx".to_owned(),
        ];
        assert_eq!(
            align(&lines),
            ["ID        NAME", "abc       web", "abcdef    x"]
        );
        let wide = vec!["REPOSITORY\tTAG".to_owned(), "busybox\tlatest".to_owned()];
        assert_eq!(align(&wide), ["REPOSITORY   TAG", "busybox      latest"]);
        let headers = [("ID", "CONTAINER ID")];
        assert_eq!(
            header_line("{{.ID}}\t{{.Names}}", &headers).unwrap(),
            "CONTAINER ID\tNAMES"
        );
    }

    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(1_982_256), "1.98MB");
        assert_eq!(human_size(214_000_000), "214MB");
        assert_eq!(human_size(4_270), "4.27kB");
        assert_eq!(human_size(10_500), "10.5kB");
    }

    #[test]
    fn formats_parse() {
        assert_eq!(Output::parse(None), Output::Table);
        assert_eq!(Output::parse(Some("json")), Output::Json);
        assert_eq!(
            Output::parse(Some("table {{.ID}}")),
            Output::Template {
                text: "{{.ID}}".into(),
                header: true
            }
        );
    }
}
