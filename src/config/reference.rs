//! The configuration reference, `docs/configuration.md`, rendered from the config's JSON
//! Schema ([`super::json_schema`]), whose descriptions are the `///` docs of the raw config
//! types' fields: one section per block, each key with its type, default and description.
//!
//! A field's doc states its default on its last line, `Default: …`; the renderer moves it
//! to the default column. A key without a description, or an optional key without a
//! default, is an error, so the reference cannot leave one out. A test keeps the file
//! current: `UPDATE_DOCS=1 cargo test --lib config::reference` rewrites it.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// The command that rewrites the reference.
const REGENERATE: &str = "UPDATE_DOCS=1 cargo test --lib config::reference";

/// What comes before the sections: how values are written, whatever the key.
const INTRO: &str = "\
One YAML file, read at start-up and on every reload.
[`config/invent-proxy.yaml`](../config/invent-proxy.yaml) is the commented reference config;
[`config/examples/`](../config/examples) has complete setups. `invent-proxy check --config FILE`
validates a file exactly as `run` would build it.

How values are written, whatever the key:

- Any string may hold `${NAME}`, replaced by that environment variable at load; an unset
  variable is an error that names it (every unset one, at once), and an error never quotes
  a value that came from the environment. Secrets (`secret_key`, `jwt.secret`) belong
  there, not in the file: a bare `$NAME` is refused for them.
- Durations take a unit: `250ms`, `5s`, `2m`, `1h`. A timeout must be above zero.
- Relative file paths are relative to the config file's directory.
- Unknown keys are errors, with the file, line and column, not ignored.
- [`config/invent-proxy.schema.json`](../config/invent-proxy.schema.json) is this reference as a
  JSON Schema (`invent-proxy schema`): an editor with a YAML language server validates and
  completes a config file whose first line is
  `# yaml-language-server: $schema=invent-proxy.schema.json`.
";

/// One block of the file: where it is, and its schema.
struct Section<'a> {
    /// Its path in the file, as segments: `["identity", "jwt"]`; empty for the top level.
    path: Vec<String>,
    /// Other places the same block appears at the same depth (`identity.lookup.claims`).
    also: Vec<String>,
    /// Its name in the schema's `$defs`; `None` for the top level.
    def: Option<&'a str>,
    schema: &'a Map<String, Value>,
}

/// The Markdown of `docs/configuration.md`, from the config's JSON Schema (as
/// [`super::json_schema`] prints it).
pub fn markdown(schema_json: &str) -> Result<String, String> {
    let root: Value = serde_json::from_str(schema_json).map_err(|e| format!("the schema is not JSON: {e}"))?;
    let root = root.as_object().ok_or("the schema is not an object")?;
    let no_defs = Map::new();
    let defs = root.get("$defs").and_then(Value::as_object).unwrap_or(&no_defs);
    let sections = sections(root, defs);
    let anchors: BTreeMap<&str, String> = sections.iter().filter_map(|s| Some((s.def?, anchor(&heading(s))))).collect();

    let mut out = format!(
        "# Configuration reference\n\n\
         <!-- Generated from the config's JSON Schema by src/config/reference.rs; do not edit.\n     \
         Regenerate with: {REGENERATE} -->\n\n{INTRO}\nThe blocks:\n\n"
    );
    for section in &sections {
        let _ = writeln!(out, "- [{}](#{})", heading(section), anchor(&heading(section)));
    }
    for section in &sections {
        write_section(&mut out, section, defs, &anchors)?;
    }
    Ok(out)
}

/// A block's heading, description and table of keys.
fn write_section(
    out: &mut String,
    section: &Section<'_>,
    defs: &Map<String, Value>,
    anchors: &BTreeMap<&str, String>,
) -> Result<(), String> {
    let _ = write!(out, "\n## {}\n\n", heading(section));
    if !section.also.is_empty() {
        let also: Vec<String> = section.also.iter().map(|p| format!("`{p}`")).collect();
        let _ = writeln!(out, "The same block as {}.\n", also.join(", "));
    }
    if let Some(description) = section.schema.get("description").and_then(Value::as_str) {
        let _ = writeln!(out, "{}\n", one_line(&without_key(description)));
    }
    out.push_str("| key | type | default | description |\n| --- | --- | --- | --- |\n");
    let required = section.schema.get("required").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let properties = section.schema.get("properties").and_then(Value::as_object).into_iter().flatten();
    for (key, property) in properties {
        let path = join(&section.path, key);
        let description = property
            .get("description")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("`{path}` has no description: write a `///` doc on its field"))?;
        let (text, default) = split_default(description);
        let default = match default {
            _ if required.contains(&Value::from(key.as_str())) => "**required**".to_owned(),
            Some(default) => default,
            None => return Err(format!("`{path}` is optional but its doc has no last line `Default: …`")),
        };
        let kind = type_of(property, defs, anchors);
        let _ = writeln!(out, "| `{key}` | {} | {} | {} |", cell(&kind), cell(&default), cell(&text));
    }
    Ok(())
}

/// Every block of the file: the top level first, then each block in the order of its
/// path. A block reused elsewhere (a site's `upstream`, the `claims` of `jwt` and `lookup`)
/// is described once, where it is nearest the top.
fn sections<'a>(root: &'a Map<String, Value>, defs: &'a Map<String, Value>) -> Vec<Section<'a>> {
    let mut found: Vec<Section<'a>> = vec![Section { path: Vec::new(), also: Vec::new(), def: None, schema: root }];
    let mut by_def: BTreeMap<&str, usize> = BTreeMap::new();
    let mut queue: VecDeque<(Vec<String>, &'a Map<String, Value>)> = VecDeque::from([(Vec::new(), root)]);
    while let Some((path, schema)) = queue.pop_front() {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else { continue };
        for (key, property) in properties {
            let Some((name, is_list)) = block_ref(property) else { continue };
            let Some(block) = defs.get(name).and_then(Value::as_object).filter(|d| d.contains_key("properties")) else {
                continue;
            };
            let mut child = path.clone();
            child.push(if is_list { format!("{key}[]") } else { key.clone() });
            match by_def.get(name) {
                Some(&i) if found[i].path.len() == child.len() => found[i].also.push(child.join(".")),
                Some(_) => {}
                None => {
                    by_def.insert(name, found.len());
                    found.push(Section { path: child.clone(), also: Vec::new(), def: Some(name), schema: block });
                    queue.push_back((child, block));
                }
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// The `$defs` name a property refers to, directly, as an option or as a list's items, and
/// whether it is a list.
fn block_ref(property: &Value) -> Option<(&str, bool)> {
    fn name(schema: &Value) -> Option<&str> {
        schema.get("$ref")?.as_str()?.strip_prefix("#/$defs/")
    }
    if let Some(items) = property.get("items") {
        return name(items).map(|n| (n, true));
    }
    name(property).or_else(|| property.get("anyOf")?.as_array()?.iter().find_map(name)).map(|n| (n, false))
}

fn heading(section: &Section<'_>) -> String {
    if section.path.is_empty() { "Top level".to_owned() } else { format!("`{}`", section.path.join(".")) }
}

/// GitHub's anchor for a heading: lower case, spaces to `-`, other punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// What a value is, in words: `string`, `duration`, `` `a` | `b` `` (its spellings), `list
/// of path globs`, a link to a block's section.
fn type_of(schema: &Value, defs: &Map<String, Value>, anchors: &BTreeMap<&str, String>) -> String {
    if let Some(def) = schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
        return match (anchors.get(def), defs.get(def)) {
            (Some(anchor), _) => format!("[block](#{anchor})"),
            (None, Some(target)) => type_of(target, defs, anchors),
            (None, None) => "?".to_owned(),
        };
    }
    // A scalar's kind of text (`duration`), from its `TextSchema`.
    if let Some(kind) = schema.get("title").and_then(Value::as_str) {
        return kind.to_owned();
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let spellings: Vec<String> = values.iter().filter_map(Value::as_str).map(|v| format!("`{v}`")).collect();
        return spellings.join(" | ");
    }
    if let Some(options) = schema.get("anyOf").and_then(Value::as_array) {
        // `${NAME}` is allowed for every value (see the introduction), and `null` means absent.
        let options: Vec<String> = options
            .iter()
            .filter(|o| o.get("type") != Some(&Value::from("null")) && o.get("pattern").is_none())
            .map(|o| type_of(o, defs, anchors))
            .collect();
        return options.join(", or ");
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect(),
        _ => Vec::new(),
    };
    match types.as_slice() {
        ["array"] => {
            let items = schema.get("items").map_or_else(String::new, |i| type_of(i, defs, anchors));
            match items {
                _ if items.starts_with("[block]") => items.replacen("[block]", "list of [blocks]", 1),
                // Spellings: `a` | `b`.
                _ if items.contains('`') => format!("list of {items}"),
                _ => format!("list of {items}s"),
            }
        }
        [one] => (*one).to_owned(),
        _ => "?".to_owned(),
    }
}

/// A description without its last line `Default: …`, and that default.
fn split_default(description: &str) -> (String, Option<String>) {
    let (text, last) = description.rsplit_once('\n').unwrap_or(("", description));
    match last.strip_prefix("Default: ") {
        Some(default) => (text.to_owned(), Some(default.trim_end_matches('.').to_owned())),
        None => (description.to_owned(), None),
    }
}

/// A block's description without the key it starts with: "`log`: how the proxy logs" is
/// "How the proxy logs" under the heading `log`.
fn without_key(description: &str) -> String {
    let rest = description.strip_prefix('`').and_then(|d| d.split_once("`: ")).map(|(_, rest)| rest);
    let Some(rest) = rest else { return description.to_owned() };
    let mut chars = rest.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}

/// A doc comment's lines as one line (a blank line becomes a line break).
fn one_line(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| paragraph.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("<br><br>")
}

/// Text fit for a table cell: on one line, its `|` escaped.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

fn join(path: &[String], key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{}.{key}", path.join(".")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the reference is kept, relative to the repository's top.
    const REFERENCE_PATH: &str = "docs/configuration.md";

    #[test]
    fn the_reference_in_docs_is_the_one_the_schema_makes() {
        let generated = markdown(&super::super::json_schema()).unwrap_or_else(|e| panic!("{e}"));
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(REFERENCE_PATH);
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        let shipped = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            shipped == generated,
            "{REFERENCE_PATH} is not what the config's schema makes: run `{REGENERATE}` \
             (and `cargo run -- schema > config/invent-proxy.schema.json` for the schema)"
        );
    }

    #[test]
    fn a_default_is_the_last_line_of_a_description() {
        assert_eq!(split_default("What it is.\nDefault: `30s`."), ("What it is.".to_owned(), Some("`30s`".to_owned())));
        assert_eq!(split_default("What it is."), ("What it is.".to_owned(), None));
        assert_eq!(split_default("A.\nDefault: none (off)."), ("A.".to_owned(), Some("none (off)".to_owned())));
    }

    #[test]
    fn every_key_needs_a_description_and_every_optional_key_a_default() {
        let schema = |properties: &str, required: &str| {
            format!(r#"{{"type": "object", "properties": {{{properties}}}, "required": [{required}]}}"#)
        };
        let undocumented = schema(r#""listen": {"type": "string"}"#, "");
        assert!(markdown(&undocumented).unwrap_err().contains("`listen` has no description"));
        let no_default = schema(r#""listen": {"type": "string", "description": "Where."}"#, "");
        assert!(markdown(&no_default).unwrap_err().contains("no last line `Default: …`"));
        let required = schema(r#""listen": {"type": "string", "description": "Where."}"#, r#""listen""#);
        assert!(markdown(&required).unwrap().contains("| `listen` | string | **required** | Where. |"));
    }

    #[test]
    fn values_are_named_by_their_type_spellings_or_block() {
        let text = markdown(&super::super::json_schema()).unwrap_or_else(|e| panic!("{e}"));
        assert!(text.contains("| `format` | `text` \\| `json` | `text` |"), "{text}");
        assert!(text.contains("| `limits` | [block](#limits) |"), "{text}");
        assert!(text.contains("| `sites` | list of [blocks](#sites) |"), "{text}");
        assert!(text.contains("| `secret_key` | secret | **required** |"), "{text}");
        assert!(text.contains("| `include_paths` | list of path globs |"), "{text}");
        assert!(text.contains("| `leeway` | duration | `30s` |"), "{text}");
        assert!(text.contains("## `log`\n\nHow the proxy logs"), "{text}");
        let claims = "## `identity.cookie_session.claims`\n\nThe same block as `identity.flask.claims`, \
                      `identity.jwt.claims`, `identity.lookup.claims`, `identity.rails.claims`.";
        assert!(text.contains(claims), "{text}");
        assert!(text.contains("| `required_claims` | list of claim paths | `[exp]` |"), "{text}");
    }
}
