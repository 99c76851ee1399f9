//! What `state`, `list`, `ps` and `features` print, in runc's layouts.

use std::collections::HashSet;
use std::io::Write;
use std::process::Command;

use serde::Serialize;

use super::args::Format;
use crate::error::{Result, RuntimeError};
use crate::state::ContainerState;

/// Pretty JSON on stdout.
pub fn json<T: Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| RuntimeError::InvalidArgument(format!("encode output: {e}")))?;
    println!("{text}");
    Ok(())
}

/// `state`: the container's state JSON.
pub fn state(state: &ContainerState) -> Result<()> {
    json(state)
}

/// `list`: a table, JSON (`null` when empty, as runc prints) or bare ids.
pub fn list(states: &[ContainerState], format: Format, quiet: bool) -> Result<()> {
    if quiet {
        for s in states {
            println!("{}", s.id);
        }
        return Ok(());
    }
    match format {
        Format::Json if states.is_empty() => {
            println!("null");
            Ok(())
        }
        Format::Json => json(&states),
        Format::Table => {
            let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                .map(String::from)
                .to_vec()];
            for s in states {
                rows.push(vec![
                    s.id.clone(),
                    s.pid.to_string(),
                    s.status.to_string(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    s.owner.clone(),
                ]);
            }
            print!("{}", table(&rows));
            Ok(())
        }
    }
}

/// Left-aligned columns separated by at least two spaces.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|v| v.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let last = row.len().saturating_sub(1);
        for (c, value) in row.iter().enumerate() {
            out.push_str(value);
            if c < last {
                out.push_str(&" ".repeat(widths[c] - value.chars().count() + 2));
            }
        }
        out.push('\n');
    }
    out
}

/// `ps`: the pids as JSON, or ps(1)'s output narrowed to the container.
pub fn ps(pids: &[i32], format: Format, ps_args: &[String]) -> Result<()> {
    if format == Format::Json {
        return json(&pids);
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| RuntimeError::io("execute", "ps", e))?;
    if !out.status.success() {
        return Err(RuntimeError::InvalidArgument(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let stdout = std::io::stdout();
    let mut stdout = stdout.lock();
    let _ = stdout.write_all(filter_ps(&text, pids)?.as_bytes());
    Ok(())
}

/// Keeps ps's header and the lines whose PID column names one of `pids`.
fn filter_ps(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| RuntimeError::InvalidArgument("ps output has no PID column".into()))?;
    let wanted: HashSet<i32> = pids.iter().copied().collect();
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| wanted.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_keeps_the_containers_lines() {
        let text = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep\nroot 43 1 other\n";
        let out = filter_ps(text, &[42]).unwrap();
        assert_eq!(out, "UID PID PPID CMD\nroot 42 1 sleep\n");
    }

    #[test]
    fn table_aligns_columns() {
        let rows = vec![
            vec!["ID".to_string(), "PID".to_string()],
            vec!["long-id".to_string(), "7".to_string()],
        ];
        assert_eq!(table(&rows), "ID       PID\nlong-id  7\n");
    }
}
