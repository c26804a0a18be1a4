//! A small attribute tree that Plex's XML and Plex's JSON both read into, so one extraction
//! covers both formats. Plex writes numbers as strings in some places and as numbers in
//! others, and booleans as `1`/`0` in XML and `true`/`false` in JSON; here every value is a
//! string, and booleans are `1`/`0`.

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

/// How deep a document may nest before we call it malformed (Plex nests about 5 levels).
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

impl Node {
    /// The attribute `name`, if present and not empty.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn attr_i64(&self, name: &str) -> Option<i64> {
        let raw = self.attr(name)?;
        // "1.0" or "23.975999" where an integer was expected: the integer part.
        raw.parse::<i64>()
            .ok()
            .or_else(|| raw.split_once('.').and_then(|(int, _)| int.parse().ok()))
    }

    /// True for `1` and `true`.
    pub fn attr_bool(&self, name: &str) -> bool {
        matches!(self.attr(name), Some("1" | "true"))
    }

    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Parses an XML document into its root element.
    pub fn from_xml(bytes: &[u8]) -> Result<Node, String> {
        let mut reader = Reader::from_reader(bytes);
        reader.config_mut().trim_text(true);
        let mut stack: Vec<Node> = Vec::new();
        let mut buf = Vec::new();
        let mut root = None;
        loop {
            match reader.read_event_into(&mut buf) {
                Ok(Event::Start(e)) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
                    }
                    stack.push(element(&e)?);
                }
                Ok(Event::Empty(e)) => {
                    let node = element(&e)?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None if root.is_none() => root = Some(node),
                        None => return Err("more than one root element".to_owned()),
                    }
                }
                Ok(Event::End(_)) => {
                    let node = stack.pop().ok_or("a closing tag without an opening one")?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None if root.is_none() => root = Some(node),
                        None => return Err("more than one root element".to_owned()),
                    }
                }
                Ok(Event::Eof) => break,
                Ok(_) => {}
                Err(e) => return Err(format!("at byte {}: {e}", reader.error_position())),
            }
            buf.clear();
        }
        if !stack.is_empty() {
            return Err("the document ends inside an element".to_owned());
        }
        root.ok_or_else(|| "no root element".to_owned())
    }

    /// Reads a JSON value as a node named `name`: scalar fields become attributes, objects
    /// become children named after their field, arrays of objects become several children.
    pub fn from_json(name: &str, value: &serde_json::Value) -> Node {
        let mut node = Node { name: name.to_owned(), ..Node::default() };
        if let serde_json::Value::Object(map) = value {
            for (key, value) in map {
                match value {
                    serde_json::Value::Object(_) => node.children.push(Node::from_json(key, value)),
                    serde_json::Value::Array(items) => {
                        for item in items.iter().filter(|i| i.is_object()) {
                            node.children.push(Node::from_json(key, item));
                        }
                    }
                    serde_json::Value::String(s) => node.attrs.push((key.clone(), s.clone())),
                    serde_json::Value::Number(n) => node.attrs.push((key.clone(), n.to_string())),
                    serde_json::Value::Bool(b) => {
                        node.attrs.push((key.clone(), if *b { "1" } else { "0" }.to_owned()));
                    }
                    serde_json::Value::Null => {}
                }
            }
        }
        node
    }
}

fn element(e: &BytesStart<'_>) -> Result<Node, String> {
    let name = e.name().as_ref().to_owned();
    let mut attrs = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|err| format!("bad attribute in <{name}>: {err}"))?;
        let key = attr.key.as_ref().to_owned();
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| format!("bad value of {name}@{key}: {err}"))?;
        attrs.push((key, value.into_owned()));
    }
    Ok(Node { name, attrs, children: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_and_json_read_alike() {
        let xml = Node::from_xml(br#"<?xml version="1.0"?><MediaContainer size="1"><Video title="Don&apos;t" local="1"><User id="7"/></Video></MediaContainer>"#).unwrap();
        let json = Node::from_json(
            "MediaContainer",
            &serde_json::json!({"size": 1, "Metadata": [{"title": "Don't", "local": true, "User": {"id": 7}}]}),
        );
        for (root, item) in [(&xml, "Video"), (&json, "Metadata")] {
            assert_eq!(root.attr_i64("size"), Some(1));
            let video = root.child(item).unwrap();
            assert_eq!(video.attr("title"), Some("Don't"));
            assert!(video.attr_bool("local"));
            assert_eq!(video.child("User").unwrap().attr("id"), Some("7"));
        }
    }

    #[test]
    fn malformed_xml_is_an_error_not_a_panic() {
        for bad in
            [&b""[..], b"<a>", b"<a></b>", b"</a>", b"<a x=\"1></a>", b"<a/><b/>", b"\xff\xfe<a/>"]
        {
            assert!(Node::from_xml(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        assert!(Node::from_xml(deep.as_bytes()).is_err());
    }
}
