//! Expansion tables after BuildKit's shell tests (frontend/dockerfile/shell:
//! envVarTest, wordsTest, lex_test.go).

use super::*;
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn with<'a>(vars: &'a HashMap<String, String>) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| vars.get(name).cloned()
}

/// The environment of BuildKit's envVarTest.
fn env_var_test() -> HashMap<String, String> {
    env(&[
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ])
}

const ERROR: &str = "<error>";

fn check(table: &[(&str, &str)], vars: &HashMap<String, String>) {
    let lookup = with(vars);
    for (input, expected) in table {
        let got = expand(input, '\\', &lookup);
        match (*expected, got) {
            (ERROR, Err(_)) => {}
            (ERROR, Ok(v)) => panic!("{input:?} should fail, gave {v:?}"),
            (want, Ok(v)) => assert_eq!(v, want, "{input:?}"),
            (want, Err(e)) => panic!("{input:?} should give {want:?}, failed: {e}"),
        }
    }
}

#[test]
fn env_var_test_quotes_and_escapes() {
    check(
        &[
            ("hello", "hello"),
            ("he'll'o", "hello"),
            ("he'llo", ERROR),
            ("he\\'llo", "he'llo"),
            ("he\\\\'llo", ERROR),
            ("abc\\tdef", "abctdef"),
            ("\"abc\\tdef\"", "abc\\tdef"),
            ("\"abc\\\\tdef\"", "abc\\tdef"),
            ("'abc\\tdef'", "abc\\tdef"),
            ("hello\\", "hello"),
            ("hello\\\\", "hello\\"),
            ("\"hello", ERROR),
            ("\"hello\\\"", ERROR),
            ("\"hel'lo\"", "hel'lo"),
            ("'hello", ERROR),
            ("'hello\\'", "hello\\"),
            ("'hello\\there'", "hello\\there"),
            ("'hello\\\\there'", "hello\\\\there"),
            ("\"''\"", "''"),
            ("'\"hello\"'", "\"hello\""),
        ],
        &env_var_test(),
    );
}

#[test]
fn env_var_test_dollars() {
    check(
        &[
            ("$.", "$."),
            ("he$1x", "hex"),
            ("he$.x", "he$.x"),
            ("he$pwd.", "he."),
            ("he$PWD", "he/home"),
            ("he\\$PWD", "he$PWD"),
            ("he\\\\$PWD", "he\\/home"),
            ("\"he\\$PWD\"", "he$PWD"),
            ("\"he\\\\$PWD\"", "he\\/home"),
            ("\\${}", "${}"),
            ("\\${}aaa", "${}aaa"),
            ("he\\${}", "he${}"),
            ("he\\${}xx", "he${}xx"),
            ("${}", ERROR),
            ("${}aaa", ERROR),
            ("he${}", ERROR),
            ("he${}xx", ERROR),
            ("he${hi}", "he"),
            ("he${hi}xx", "hexx"),
            ("he${PWD}", "he/home"),
            ("he${.}", ERROR),
            ("'he${XX}'", "he${XX}"),
            ("\"he${PWD}\"", "he/home"),
            ("\"he'$PWD'\"", "he'/home'"),
            ("\"$PWD\"", "/home"),
            ("'$PWD'", "$PWD"),
            ("'\\$PWD'", "\\$PWD"),
            ("'he\\$PWD'", "he\\$PWD"),
            ("he${PWD", ERROR),
            ("${{aaa}", ERROR),
            ("${aaa}}", "}"),
            ("${aaa}}}", "}}"),
            ("$KOREAN", "한국어"),
            ("안녕$KOREAN", "안녕한국어"),
            ("안'녕'하세요", "안녕하세요"),
            ("안'녕하세요", ERROR),
            ("안녕\\'하세요", "안녕'하세요"),
            ("\"안녕\\t하세요\"", "안녕\\t하세요"),
        ],
        &env_var_test(),
    );
}

#[test]
fn env_var_test_modifiers() {
    check(
        &[
            ("he${XXX:-000}xx", "he000xx"),
            ("he${PWD:-000}xx", "he/homexx"),
            ("he${XXX:-$PWD}xx", "he/homexx"),
            ("he${XXX:-${PWD:-yyy}}xx", "he/homexx"),
            ("he${XXX:-${YYY:-yyy}}xx", "heyyyxx"),
            ("he${XXX:YYY}", ERROR),
            ("he${XXX?}", ERROR),
            ("he${XXX:?}", ERROR),
            ("he${PWD?}", "he/home"),
            ("he${PWD:?}", "he/home"),
            ("he${NULL?}", "he"),
            ("he${NULL:?}", ERROR),
            ("he${XXX:+${PWD}}xx", "hexx"),
            ("he${PWD:+${XXX}}xx", "hexx"),
            ("he${PWD:+${SHELL}}xx", "hebashxx"),
            ("he${XXX:+000}xx", "hexx"),
            ("he${PWD:+000}xx", "he000xx"),
            ("he${PWD:=000}xx", ERROR),
            ("he${PWD:+${PWD}:}xx", "he/home:xx"),
            ("he${XXX:-\\$PWD:}xx", "he$PWD:xx"),
            ("he${XXX:-\\${PWD}z}xx", "he${PWDz}xx"),
            ("${aaa:-bbb}}", "bbb}"),
            ("${aaa:-${bbb:-ccc}}}", "ccc}"),
            ("${aaa:-bbb", ERROR),
            ("${aaa:-${bbb:-ccc}", ERROR),
            ("${NULL:-x}${NULL-y}", "x"),
            ("${NULL:+x}${NULL+y}", "y"),
            ("${aaa:-\"a}b\"}", "a}b"),
        ],
        &env_var_test(),
    );
}

#[test]
fn lex_test_process_with_matches() {
    let vars = env(&[("FOO", "xxx"), ("BAR", "")]);
    check(
        &[
            ("x ${UNUSED}", "x "),
            ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", "xxx  ccc"),
            ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", "xxx bbb ccc"),
            ("${FOO:-}", "xxx"),
            ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", "aaa bbb "),
            ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", "aaa  "),
            ("${FOO?aaa}", "xxx"),
            ("${BAR?bbb}", ""),
            ("${BAZ?ccc}", ERROR),
            ("${FOO:?aaa}", "xxx"),
            ("${BAR:?bbb}", ERROR),
            ("${BAZ:?ccc}", ERROR),
            ("${BAZ:?}", ERROR),
            ("${FOO=aaa}", ERROR),
            ("${FOO=:aaa}", ERROR),
            ("${FOO=}", ERROR),
        ],
        &vars,
    );
}

/// (word, variables, expected).
type PatternCase = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[test]
fn lex_test_patterns() {
    let cases: &[PatternCase] = &[
        ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", &[("FOO", "()[]{}^$.*?|\\x")], "x"),
        ("${FOO%%\\**}", &[("FOO", "xx**")], "xx"),
        ("${FOO#*x*y}", &[("FOO", "xxyy")], "y"),
        ("${FOO#*}", &[("FOO", "xxyy")], "xxyy"),
        ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")], "xyy"),
        ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "")], "xxyy"),
        ("${FOO#}", &[("FOO", "xxyy")], "xxyy"),
        ("${FOO##*x}", &[("FOO", "xxyy")], "yy"),
        ("${FOO##}", &[("FOO", "xxyy")], "xxyy"),
        ("${FOO#?\\?}", &[("FOO", "???y")], "?y"),
        ("${ABC:-.}${FOO%x}${ABC:-.}", &[("FOO", "xxyy")], ".xxyy."),
        ("${FOO%%\\**\\*}", &[("FOO", "a***yy*")], "a"),
        ("${FOO%}", &[("FOO", "xxyy")], "xxyy"),
        ("${FOO%%$BAR}", &[("FOO", "xxyy"), ("BAR", "")], "xxyy"),
        ("${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}", &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")], "/foo.*/*.txt - /foo..*.txt"),
        ("${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}", &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")], "/tmp/bar.txt - /bar.txt"),
        (
            "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
            &[("FOO", "/a/foo/b/c.txt"), ("NEEDLE", "/?/"), ("REPLACEMENT", "/")],
            "/foo/b/c.txt - /foo/c.txt",
        ),
        (
            "${FOO/$NEEDLE/$REPLACEMENT}",
            &[("FOO", "http://google.de"), ("NEEDLE", "http://"), ("REPLACEMENT", "https://")],
            "https://google.de",
        ),
        ("${FOO//\\//\\/}", &[("FOO", "/tmp/foo.txt")], "\\/tmp\\/foo.txt"),
        ("${FOO/$BAR/ww}", &[("FOO", "xxyy"), ("BAR", "")], "wwxxyy"),
        ("${FOO///}", &[("FOO", "xxyy")], "xxyy"),
        ("${FOO///}", &[], ""),
        ("${FOO//ww}", &[("FOO", "xxyy")], ERROR),
        ("${FOO//}", &[("FOO", "xxyy")], ERROR),
        ("${FOO#\\x}", &[("FOO", "xxyy")], ERROR),
        (
            "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz",
            &[("VERSION", "v1.2.3"), ("TARGETOS", "linux"), ("TARGETARCH", "arm"), ("TARGETVARIANT", "v7")],
            "something-v1.2.3.linux-arm-v7.tar.gz",
        ),
    ];
    for (input, vars, expected) in cases {
        check(&[(input, expected)], &env(vars));
    }
}

#[test]
fn error_messages() {
    let vars = env(&[("EMPTY", "")]);
    let lookup = with(&vars);
    let error = |word: &str| expand(word, '\\', &lookup).unwrap_err().message;
    assert_eq!(error("${VAR:?must be set}"), "VAR: must be set");
    assert_eq!(error("${VAR?}"), "VAR: is not allowed to be unset");
    assert_eq!(error("${EMPTY:?}"), "EMPTY: is not allowed to be empty");
    assert_eq!(error("${VAR:?message here$EMPTY}"), "VAR: message here");
    assert_eq!(error("${VAR"), "syntax error: missing '}'");
    assert_eq!(error("${"), "syntax error: missing '}'");
    assert_eq!(error("${VAR:-x"), "syntax error: missing '}'");
    assert_eq!(error("${}"), "syntax error: bad substitution");
    assert_eq!(error("${:x}"), "syntax error: bad substitution");
    assert_eq!(
        error("${VAR=x}"),
        "unsupported modifier (=) in substitution"
    );
    assert_eq!(
        error("${VAR:=x}"),
        "unsupported modifier (:=) in substitution"
    );
    assert_eq!(error("${VAR/x"), "syntax error: missing '/' in ${}");
    assert_eq!(
        error("'abc"),
        "unexpected end of statement while looking for matching single-quote"
    );
    assert_eq!(
        error("\"abc"),
        "unexpected end of statement while looking for matching double-quote"
    );
    assert_eq!(
        error("${V#\\q}"),
        "invalid pattern (\\q) in substitution: invalid escape '\\q'"
    );
}

#[test]
fn mandatory_variables_after_lex_test() {
    let set = env(&[("VAR", "plain"), ("ARG", "x")]);
    let empty = env(&[("VAR", ""), ("ARG", "x")]);
    let unset = env(&[("ARG", "x")]);
    let run = |word: &str, vars: &HashMap<String, String>| expand(word, '\\', &with(vars));
    assert_eq!(run("${VAR:?message here$ARG}", &set).unwrap(), "plain");
    assert_eq!(
        run("${VAR:?message here$ARG}", &empty).unwrap_err().message,
        "VAR: message herex"
    );
    assert_eq!(
        run("${VAR:?message here$ARG}", &unset).unwrap_err().message,
        "VAR: message herex"
    );
    assert_eq!(run("${VAR?message here$ARG}", &set).unwrap(), "plain");
    assert_eq!(run("${VAR?message here$ARG}", &empty).unwrap(), "");
    assert_eq!(
        run("${VAR?message here$ARG}", &unset).unwrap_err().message,
        "VAR: message herex"
    );
}

#[test]
fn words_test() {
    let vars = env(&[
        ("hi", "hi"),
        ("space", "abc  def"),
        ("leading", "  ab c"),
        ("trailing", "ab c   "),
    ]);
    let lookup = with(&vars);
    let cases: &[(&str, &[&str])] = &[
        ("hello", &["hello"]),
        ("hello${hi}bye", &["hellohibye"]),
        ("hello${space}bye", &["helloabc", "defbye"]),
        ("hello\"${space}\"bye", &["helloabc  defbye"]),
        ("hello \"${space}\"bye", &["hello", "abc  defbye"]),
        ("hello${leading}def", &["hello", "ab", "cdef"]),
        ("hello\"${leading}\" def", &["hello  ab c", "def"]),
        ("hello\"${leading}\"", &["hello  ab c"]),
        ("hello${leading}", &["hello", "ab", "c"]),
        ("hello${trailing}", &["helloab", "c"]),
        ("hello${trailing}d", &["helloab", "c", "d"]),
        ("hello\"${trailing}\"d", &["helloab c   d"]),
        ("hel\"lo${trailing}\"", &["helloab c   "]),
        ("hello\" there  \"", &["hello there  "]),
        ("hello there     ", &["hello", "there"]),
        ("hello\\ there", &["hello there"]),
        ("hello\\\" there", &["hello\"", "there"]),
        ("hello\"\\\\there\"", &["hello\\there"]),
        ("hello\"\\there\"", &["hello\\there"]),
        ("hello'\\\\there'", &["hello\\\\there"]),
        ("hello'\\there'", &["hello\\there"]),
        ("hello'$there'", &["hello$there"]),
        ("a \"\" b", &["a", "b"]),
        ("   ", &[]),
    ];
    for (input, expected) in cases {
        assert_eq!(
            expand_words(input, '\\', &lookup).unwrap(),
            *expected,
            "{input:?}"
        );
    }
    assert!(expand_words("hello\" there", '\\', &lookup).is_err());
}

#[test]
fn backtick_escape() {
    let vars = env(&[("X", "1")]);
    let lookup = with(&vars);
    assert_eq!(
        expand("C:\\dir`$X $X", '`', &lookup).unwrap(),
        "C:\\dir$X 1"
    );
    assert_eq!(expand("\"a`\"b\"", '`', &lookup).unwrap(), "a\"b");
}

#[test]
fn heredoc_bodies_keep_quotes() {
    let vars = env(&[("NAME", "world")]);
    let lookup = with(&vars);
    let body = "echo \"hello $NAME\" 'x ${NAME}'\ncost: \\$5 \\n\n";
    assert_eq!(
        expand_heredoc(body, '\\', &lookup).unwrap(),
        "echo \"hello world\" 'x world'\ncost: $5 n\n"
    );
    assert_eq!(
        expand_heredoc("${MISSING:?no}", '\\', &lookup)
            .unwrap_err()
            .message,
        "MISSING: no"
    );
}

#[test]
fn raw_mode_keeps_unset_variables_quotes_and_escapes() {
    let mode = Mode {
        raw_quotes: true,
        raw_escapes: true,
        keep_unset: true,
        ..Mode::default()
    };
    let none = |_: &str| None;
    let lexed = lex(
        "RUN cat <<\"EOF\" $X ${Y:-z} ${Z/a/b} a\\ b",
        '\\',
        &none,
        mode,
    )
    .unwrap();
    assert_eq!(
        lexed.words,
        vec![
            "RUN",
            "cat",
            "<<\"EOF\"",
            "$X",
            "${Y:-z}",
            "${Z/a/b}",
            "a\\ b"
        ]
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let word = format!("{}x{}", "${A:-".repeat(10_000), "}".repeat(10_000));
    let error = expand(&word, '\\', &|_| None).unwrap_err();
    assert_eq!(
        error.message,
        "syntax error: substitutions nested too deeply"
    );
}
