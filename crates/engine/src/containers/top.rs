//! `docker top`'s table: the rows of `ps` output whose PID is one of the
//! container's, with `ps`'s own titles.

use serde_json::{json, Value};

use crate::error::{EngineError, Result};

/// Keeps the rows of `ps_output` whose PID column holds one of `pids`.
/// The last column (the command) may hold spaces: a row is cut into as
/// many fields as there are titles.
pub fn filter(ps_output: &str, pids: &[u32]) -> Result<Value> {
    let mut lines = ps_output.lines();
    let header = lines.next().unwrap_or_default();
    let titles: Vec<&str> = header.split_whitespace().collect();
    let Some(pid_col) = titles.iter().position(|t| *t == "PID") else {
        return Err(EngineError::invalid("Couldn't find PID field in ps output"));
    };
    let mut processes = Vec::new();
    for line in lines {
        let fields = split_fields(line, titles.len());
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pids.contains(&pid) {
            processes.push(fields);
        }
    }
    Ok(json!({ "Titles": titles, "Processes": processes }))
}

/// `n` whitespace-separated fields, the last holding the rest of the line.
fn split_fields(line: &str, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    let mut rest = line.trim_start();
    while out.len() + 1 < n {
        let Some(end) = rest.find(char::is_whitespace) else {
            break;
        };
        out.push(rest[..end].to_owned());
        rest = rest[end..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_containers_rows_are_kept_commands_whole() {
        let ps = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                  root           1       0  0 10:00 ?        00:00:01 /sbin/init\n\
                  root        4242    4200  0 10:01 ?        00:00:00 sh -c sleep 100\n";
        let v = filter(ps, &[4242]).unwrap();
        assert_eq!(v["Titles"][1], "PID");
        assert_eq!(v["Processes"].as_array().unwrap().len(), 1);
        assert_eq!(v["Processes"][0][7], "sh -c sleep 100");
        assert!(filter("USER COMMAND\nroot x\n", &[1]).is_err());
    }
}
