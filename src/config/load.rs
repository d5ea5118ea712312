//! Reading the YAML text into the raw shape, and every config error's wording: file, line,
//! column, key and what is wrong, on one line.

use serde_saphyr::Location;

use super::raw::RawConfig;
use super::value::is_env_name;

/// A config that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{}", format_invalid(.file, .key, .location, .message))]
    Invalid { file: String, key: String, location: Option<(u64, u64)>, message: String },
    #[error("{file}: no site serves {host}")]
    NoSite { file: String, host: String },
}

fn format_invalid(file: &str, key: &str, location: &Option<(u64, u64)>, message: &str) -> String {
    let place = match location {
        Some((line, column)) => format!("{file}:{line}:{column}"),
        None => file.to_owned(),
    };
    if key.is_empty() { format!("{place}: {message}") } else { format!("{place}: {key}: {message}") }
}

/// A problem found while building the typed config from the raw file: key, place, message.
pub(crate) struct BuildError {
    key: &'static str,
    location: Option<Location>,
    message: String,
}

impl BuildError {
    pub(crate) fn new(key: &'static str, location: Option<Location>, message: impl Into<String>) -> Self {
        BuildError { key, location, message: message.into() }
    }

    /// The same problem, said to be inside `place` (a site of `sites:`).
    pub(crate) fn within(self, place: String) -> Self {
        let key = if self.key.is_empty() { String::new() } else { format!("{}: ", self.key) };
        BuildError { key: "sites", location: self.location, message: format!("{place}: {key}{}", self.message) }
    }

    pub(crate) fn into_config_error(self, file: &str) -> ConfigError {
        let location = self.location.map(|l| (l.line(), l.column()));
        invalid(file, self.key, location, &self.message)
    }
}

/// Deserializes the raw config, turning serde errors into [`ConfigError`] with the key path.
pub(crate) fn parse_raw(text: &str, file: &str) -> Result<RawConfig, ConfigError> {
    if text.trim().is_empty() {
        return Err(invalid(file, "", None, "the config is empty; `upstream` and `assistant` are required"));
    }
    check_variables(text, file)?;
    parse(text, file)
}

/// Parses config text into `T`, an error naming the key, the line and what is wrong.
/// Variables are expanded by the types that read them; `T` may read a part of the file.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(text: &str, file: &str) -> Result<T, ConfigError> {
    let mut failed_key = String::new();
    let result = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            failed_key = display_key(&e.path().to_string());
            e.into_inner()
        })
    });
    result.map_err(|e| {
        let location = e.location().map(|l| (l.line(), l.column()));
        if let Some(message) = wrong_scalar_message(e.without_snippet(), text) {
            return invalid(file, &failed_key, location, &message);
        }
        let mut message = strip_location_suffix(&e.without_snippet().to_string());
        if message.starts_with("while parsing") || message.starts_with("mapping values are not allowed") {
            message.push_str(" (check the indentation of this line and the one above)");
        }
        invalid(file, &failed_key, location, &message)
    })
}

/// For a scalar that is not of the key's type, what was expected and what the file has
/// (`expected a whole number, got "lots"`), where serde-saphyr says only `invalid u64`.
fn wrong_scalar_message(error: &serde_saphyr::Error, text: &str) -> Option<String> {
    let serde_saphyr::Error::InvalidScalar { ty, location } = error else {
        return None;
    };
    let span = location.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let end = start.checked_add(usize::try_from(span.byte_len()?).ok()?)?;
    let written = text.get(start..end)?;
    let got = ['"', '\''].iter().find_map(|q| written.strip_prefix(*q)?.strip_suffix(*q)).unwrap_or(written);
    let expected = match *ty {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => {
            match unsigned_max(ty) {
                // All digits, and still not one: too large.
                Some(max) if got.bytes().all(|b| b.is_ascii_digit()) => format!("a whole number up to {max}"),
                _ => "a whole number".to_owned(),
            }
        }
        "f32" | "f64" => "a number".to_owned(),
        "bool" | "boolean" => "true or false".to_owned(),
        _ => return None,
    };
    Some(format!("expected {expected}, got {got:?}"))
}

fn unsigned_max(ty: &str) -> Option<String> {
    Some(match ty {
        "u8" => u8::MAX.to_string(),
        "u16" => u16::MAX.to_string(),
        "u32" => u32::MAX.to_string(),
        "u64" => u64::MAX.to_string(),
        "usize" => usize::MAX.to_string(),
        _ => return None,
    })
}

fn invalid(file: &str, key: &str, location: Option<(u64, u64)>, message: &str) -> ConfigError {
    ConfigError::Invalid { file: file.to_owned(), key: key.to_owned(), location, message: message.to_owned() }
}

/// Names every unset `${NAME}` at once, so fixing the environment takes one try. (A single
/// unset variable is reported by the key that uses it, while the file is read.)
fn check_variables(text: &str, file: &str) -> Result<(), ConfigError> {
    let unset = unset_variables(text, |name| std::env::var_os(name).is_some());
    if unset.len() < 2 {
        return Ok(());
    }
    let names: Vec<String> = unset.iter().map(|(name, line)| format!("`{name}` (line {line})")).collect();
    let first_line = unset[0].1;
    let message = format!("environment variables {} are not set", names.join(", "));
    Err(invalid(file, "", Some((first_line, 1)), &message))
}

/// The `${NAME}` references outside comments whose variable `is_set` denies, with their lines.
pub(crate) fn unset_variables(text: &str, is_set: impl Fn(&str) -> bool) -> Vec<(String, u64)> {
    let mut unset: Vec<(String, u64)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let mut rest = strip_comment(line);
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { break };
            let name = &after[..end];
            if is_env_name(name) && !is_set(name) && !unset.iter().any(|(n, _)| n == name) {
                unset.push((name.to_owned(), index as u64 + 1));
            }
            rest = &after[end + 1..];
        }
    }
    unset
}

/// A YAML comment starts with `#` at the start of a line or after white space.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let comment = (0..bytes.len()).find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()));
    comment.map_or(line, |i| &line[..i])
}

/// `identity.jwt.value.algorithms.value[0]` → `identity.jwt.algorithms[0]`: `value` is the
/// span wrapper's own field, not a config key.
fn display_key(path: &str) -> String {
    let key = path.replace(".value[", "[").replace(".value.", ".");
    let key = key.strip_suffix(".value").unwrap_or(&key);
    // `?` stands for a position serde could not name (a parse error between keys).
    let segments: Vec<&str> = key.split('.').filter(|s| !s.is_empty() && *s != "?").collect();
    segments.join(".")
}

/// serde-saphyr ends messages with "at line L, column C" (or starts them with "error: line
/// L column C: "); the location is reported separately, so drop it from the text.
fn strip_location_suffix(message: &str) -> String {
    let message = message.lines().next().unwrap_or(message);
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let message = match message.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest,
        _ => message,
    };
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unset_variable_is_found_once_with_its_line() {
        let text = "a: ${SET}\n# b: ${IN_COMMENT}\nc: ${ONE} ${TWO} # ${ALSO_COMMENT}\nd: ${ONE}\n";
        let unset = unset_variables(text, |name| name == "SET");
        assert_eq!(unset, [("ONE".to_owned(), 3), ("TWO".to_owned(), 3)]);
    }

    #[test]
    fn span_wrappers_do_not_show_in_key_paths() {
        assert_eq!(display_key("identity.jwt.value.algorithms.value[0]"), "identity.jwt.algorithms[0]");
        assert_eq!(display_key("identity.jwt.value.secret"), "identity.jwt.secret");
        assert_eq!(display_key("inject.include_paths[0]"), "inject.include_paths[0]");
        assert_eq!(display_key("."), "");
        assert_eq!(display_key("assistant.?"), "assistant");
    }
}
