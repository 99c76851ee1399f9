//! "Did you mean …?" for a misspelt name, as BuildKit's util/suggest does
//! it: the nearest option by Levenshtein distance, if fewer than three
//! edits away.

/// The option nearest to `value`, spelt in `value`'s case when the
/// comparison ignores case (`form` → `from`, `FORM` → `FROM`).
pub(crate) fn suggest(value: &str, options: &[&str], case_sensitive: bool) -> Option<String> {
    let fold = |s: &str| {
        if case_sensitive {
            s.to_string()
        } else {
            s.to_lowercase()
        }
    };
    let wanted = fold(value);
    let mut best: Option<(usize, String)> = None;
    for option in options {
        let candidate = fold(option);
        if candidate == wanted {
            return None;
        }
        let distance = levenshtein(&wanted, &candidate);
        if distance < best.as_ref().map_or(3, |(d, _)| *d) {
            best = Some((distance, candidate));
        }
    }
    let (_, found) = best?;
    Some(if case_sensitive {
        found
    } else {
        match_case(&found, value)
    })
}

fn match_case(found: &str, original: &str) -> String {
    if original == original.to_uppercase() {
        found.to_uppercase()
    } else if original == original.to_lowercase() {
        found.to_lowercase()
    } else {
        found.to_string()
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_names_in_the_same_case() {
        let names = ["FROM", "RUN", "COPY"];
        assert_eq!(suggest("FORM", &names, false).as_deref(), Some("FROM"));
        assert_eq!(suggest("form", &names, false).as_deref(), Some("from"));
        // Mixed case gets the lowercase spelling, as in BuildKit.
        assert_eq!(suggest("Cpoy", &names, false).as_deref(), Some("copy"));
        assert_eq!(suggest("EXPOSEX", &names, false), None);
        assert_eq!(suggest("run", &names, false), None);
    }

    #[test]
    fn distances() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("form", "from"), 2);
    }
}
