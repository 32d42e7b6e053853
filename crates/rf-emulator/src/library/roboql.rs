//! The subset of RoboQL the emulator evaluates over its asset library, and
//! a clear refusal of everything else (never a guess).
//!
//! Grammar (keywords in any case):
//!
//! ```text
//! query  := or
//! or     := and ("OR" and)*
//! and    := not ("AND" not)*        -- two terms side by side also mean AND
//! not    := "NOT" not | atom
//! atom   := "(" or ")" | FIELD ":" VALUE
//! FIELD  := tag | filename
//! VALUE  := word | "quoted text"   -- `*` in a filename value matches any run
//! ```
//!
//! `tag:night` matches an image with that tag (its folders, and the tags of
//! its sidecar); `filename:cam1_*.jpg` matches its file name.

use std::collections::BTreeSet;

/// A query the emulator cannot evaluate: what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported RoboQL at {at}: {what}; the emulator understands tag:VALUE, filename:VALUE (with *), AND, OR, NOT and parentheses"
)]
pub(crate) struct QueryError {
    /// Character offset in the query.
    pub(crate) at: usize,
    /// What is wrong there.
    pub(crate) what: String,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Query {
    Tag(String),
    FileName(String),
    Not(Box<Query>),
    And(Box<Query>, Box<Query>),
    Or(Box<Query>, Box<Query>),
}

/// What a query is matched against.
pub(crate) trait Subject {
    fn tags(&self) -> &BTreeSet<String>;
    fn file_name(&self) -> &str;
}

impl Query {
    /// Parses `text`.
    pub(crate) fn parse(text: &str) -> Result<Query, QueryError> {
        let tokens = tokenize(text)?;
        let mut p = Parser { tokens, pos: 0 };
        let q = p.or()?;
        match p.tokens.get(p.pos) {
            None => Ok(q),
            Some(t) => Err(QueryError {
                at: t.at,
                what: format!("unexpected {:?}", t.text),
            }),
        }
    }

    /// Whether `subject` matches.
    pub(crate) fn matches(&self, subject: &impl Subject) -> bool {
        match self {
            Query::Tag(t) => subject.tags().contains(t),
            Query::FileName(pattern) => glob(pattern, subject.file_name()),
            Query::Not(q) => !q.matches(subject),
            Query::And(a, b) => a.matches(subject) && b.matches(subject),
            Query::Or(a, b) => a.matches(subject) || b.matches(subject),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    at: usize,
    /// A quoted value (never a keyword or parenthesis).
    quoted: bool,
}

fn tokenize(text: &str) -> Result<Vec<Token>, QueryError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' || c == ')' {
            chars.next();
            tokens.push(Token {
                text: c.to_string(),
                at,
                quoted: false,
            });
        } else if c == '"' {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '"')) => break,
                    Some((_, ch)) => value.push(ch),
                    None => {
                        return Err(QueryError {
                            at,
                            what: "a quote that is never closed".into(),
                        });
                    }
                }
            }
            tokens.push(Token {
                text: value,
                at,
                quoted: true,
            });
        } else {
            let mut word = String::new();
            while let Some(&(_, ch)) = chars.peek() {
                if ch.is_whitespace()
                    || ch == '('
                    || ch == ')'
                    || (ch == '"' && !word.ends_with(':'))
                {
                    break;
                }
                chars.next();
                if ch == '"' {
                    // field:"quoted value"
                    let start = at;
                    loop {
                        match chars.next() {
                            Some((_, '"')) => break,
                            Some((_, q)) => word.push(q),
                            None => {
                                return Err(QueryError {
                                    at: start,
                                    what: "a quote that is never closed".into(),
                                });
                            }
                        }
                    }
                    break;
                }
                word.push(ch);
            }
            tokens.push(Token {
                text: word,
                at,
                quoted: false,
            });
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn keyword(&self, word: &str) -> bool {
        self.tokens
            .get(self.pos)
            .is_some_and(|t| !t.quoted && t.text.eq_ignore_ascii_case(word))
    }

    fn or(&mut self) -> Result<Query, QueryError> {
        let mut q = self.and()?;
        while self.keyword("OR") {
            self.pos += 1;
            q = Query::Or(Box::new(q), Box::new(self.and()?));
        }
        Ok(q)
    }

    fn and(&mut self) -> Result<Query, QueryError> {
        let mut q = self.not()?;
        loop {
            if self.keyword("AND") {
                self.pos += 1;
            } else if self.pos >= self.tokens.len() || self.keyword("OR") || self.keyword(")") {
                return Ok(q);
            }
            q = Query::And(Box::new(q), Box::new(self.not()?));
        }
    }

    fn not(&mut self) -> Result<Query, QueryError> {
        if self.keyword("NOT") {
            self.pos += 1;
            return Ok(Query::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Query, QueryError> {
        let end = self.tokens.last().map_or(0, |t| t.at + t.text.len());
        let Some(token) = self.tokens.get(self.pos).cloned() else {
            return Err(QueryError {
                at: end,
                what: "the query ends where a term is expected".into(),
            });
        };
        self.pos += 1;
        if !token.quoted && token.text == "(" {
            let q = self.or()?;
            if !self.keyword(")") {
                return Err(QueryError {
                    at: end,
                    what: "a parenthesis that is never closed".into(),
                });
            }
            self.pos += 1;
            return Ok(q);
        }
        term(&token)
    }
}

/// `field:value`.
fn term(token: &Token) -> Result<Query, QueryError> {
    let unsupported = |what: String| QueryError { at: token.at, what };
    let Some((field, value)) = token.text.split_once(':').filter(|_| !token.quoted) else {
        return Err(unsupported(format!(
            "{:?} is not a field:value term (free-text search is not supported)",
            token.text
        )));
    };
    if value.is_empty() {
        return Err(unsupported(format!("{field}: has no value")));
    }
    match field.to_ascii_lowercase().as_str() {
        "tag" => Ok(Query::Tag(value.to_owned())),
        "filename" => Ok(Query::FileName(value.to_owned())),
        other => Err(unsupported(format!("the field {other:?} is not supported"))),
    }
}

/// Whether `name` matches `pattern`, where `*` matches any run of
/// characters.
fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || !name[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Img(BTreeSet<String>, &'static str);
    impl Subject for Img {
        fn tags(&self) -> &BTreeSet<String> {
            &self.0
        }
        fn file_name(&self) -> &str {
            self.1
        }
    }

    fn img(tags: &[&str], name: &'static str) -> Img {
        Img(tags.iter().map(|t| t.to_string()).collect(), name)
    }

    fn hits(query: &str) -> Vec<&'static str> {
        let images = [
            img(&["night", "cam1"], "cam1_001.jpg"),
            img(&["night", "cam2"], "cam2_001.jpg"),
            img(&["day", "cam1"], "cam1_002.png"),
        ];
        let q = Query::parse(query).unwrap();
        images
            .iter()
            .filter(|i| q.matches(*i))
            .map(|i| i.1)
            .collect()
    }

    #[test]
    fn the_subset_evaluates_as_boolean_logic() {
        assert_eq!(hits("tag:night"), ["cam1_001.jpg", "cam2_001.jpg"]);
        assert_eq!(hits("tag:night AND tag:cam1"), ["cam1_001.jpg"]);
        assert_eq!(hits("tag:night tag:cam1"), ["cam1_001.jpg"]);
        assert_eq!(
            hits("tag:day or tag:cam2"),
            ["cam2_001.jpg", "cam1_002.png"]
        );
        assert_eq!(hits("NOT tag:night"), ["cam1_002.png"]);
        assert_eq!(
            hits("tag:cam1 AND NOT (tag:day OR filename:*.png)"),
            ["cam1_001.jpg"]
        );
        assert_eq!(
            hits("filename:cam*_001.*"),
            ["cam1_001.jpg", "cam2_001.jpg"]
        );
        assert_eq!(hits("filename:\"cam1_002.png\""), ["cam1_002.png"]);
    }

    #[test]
    fn what_is_not_understood_is_refused_naming_it() {
        for (query, what) in [
            ("split:valid", "the field \"split\" is not supported"),
            ("night", "is not a field:value term"),
            ("tag:night AND", "the query ends where a term is expected"),
            ("(tag:night", "a parenthesis that is never closed"),
            ("tag:night )", "unexpected \")\""),
            ("tag:", "tag: has no value"),
            ("filename:\"open", "a quote that is never closed"),
        ] {
            let err = Query::parse(query).unwrap_err();
            assert!(err.to_string().contains(what), "{query}: {err}");
        }
    }
}
