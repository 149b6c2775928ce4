//! Reading the XML documents Azure Files answers with.

use crate::client::{DirEntry, ShareItem};

/// One page of a listing.
pub(crate) struct Page<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name(name))
}

fn child_text(node: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    child(node, name).map(|n| n.text().unwrap_or("").to_owned())
}

/// The `Name` of a listed share, file or folder. Azure percent-encodes a name that
/// XML 1.0 cannot carry and marks it `Encoded="true"`: such a name is decoded here
/// (and, like any other, checked by whoever uses it as a path).
fn entry_name(node: roxmltree::Node<'_, '_>) -> Result<Option<String>, String> {
    let Some(name) = child(node, "Name") else { return Ok(None) };
    let text = name.text().unwrap_or("");
    if !name.attribute("Encoded").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(Some(text.to_owned()));
    }
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| Some(decoded.into_owned()))
        .map_err(|_| format!("encoded name {text:?} is not UTF-8 once decoded"))
}

fn next_marker(root: roxmltree::Node<'_, '_>) -> Option<String> {
    child_text(root, "NextMarker").filter(|m| !m.is_empty())
}

/// `EnumerationResults` of List Shares.
pub(crate) fn parse_share_list(text: &str) -> Result<Page<ShareItem>, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    let mut items = Vec::new();
    if let Some(shares) = child(root, "Shares") {
        for share in shares.children().filter(|n| n.has_tag_name("Share")) {
            let name = entry_name(share)?.ok_or("a share without a name")?;
            let metadata = child(share, "Metadata")
                .map(|m| {
                    m.children()
                        .filter(roxmltree::Node::is_element)
                        .map(|e| {
                            let name = e.tag_name().name().to_ascii_lowercase();
                            (name, e.text().unwrap_or("").to_owned())
                        })
                        .collect()
                })
                .unwrap_or_default();
            items.push(ShareItem { name, metadata });
        }
    }
    Ok(Page { items, next_marker: next_marker(root) })
}

/// `EnumerationResults` of List Directories and Files.
pub(crate) fn parse_dir_list(text: &str) -> Result<Page<DirEntry>, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    let mut items = Vec::new();
    if let Some(entries) = child(root, "Entries") {
        for entry in entries.children().filter(roxmltree::Node::is_element) {
            let name = entry_name(entry)?.ok_or("an entry without a name")?;
            let file_len = match entry.tag_name().name() {
                "File" => {
                    let len = child(entry, "Properties")
                        .and_then(|p| child_text(p, "Content-Length"))
                        .ok_or_else(|| format!("file {name:?} without a length"))?;
                    Some(len.trim().parse().map_err(|_| format!("file {name:?}: bad length"))?)
                }
                "Directory" => None,
                _ => continue,
            };
            items.push(DirEntry { name, file_len });
        }
    }
    Ok(Page { items, next_marker: next_marker(root) })
}

/// The code and message of an `Error` document, when the body is one.
pub(crate) fn parse_error(text: &str) -> (Option<String>, Option<String>) {
    let Ok(doc) = roxmltree::Document::parse(text) else { return (None, None) };
    let root = doc.root_element();
    (child_text(root, "Code"), child_text(root, "Message"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_directory_listing() {
        let text = r#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="https://a.file.core.windows.net/" ShareName="s" DirectoryPath="d">
  <Marker>m</Marker><MaxResults>2</MaxResults>
  <Entries>
    <File><Name>a &amp; b.txt</Name><Properties><Content-Length>12</Content-Length></Properties></File>
    <Directory><Name>sub</Name><Properties/></Directory>
  </Entries>
  <NextMarker>next</NextMarker>
</EnumerationResults>"#;
        let page = parse_dir_list(text).unwrap();
        assert_eq!(page.items[0], DirEntry { name: "a & b.txt".into(), file_len: Some(12) });
        assert_eq!(page.items[1], DirEntry { name: "sub".into(), file_len: None });
        assert_eq!(page.next_marker.as_deref(), Some("next"));
        let last =
            parse_dir_list("<EnumerationResults><Entries/><NextMarker/></EnumerationResults>")
                .unwrap();
        assert!(last.items.is_empty() && last.next_marker.is_none());
    }

    #[test]
    fn decodes_encoded_names() {
        let text = r#"<EnumerationResults><Entries>
    <File><Name Encoded="true">a%01b%25c%20%C3%A9%EF%BF%BF</Name><Properties><Content-Length>1</Content-Length></Properties></File>
    <Directory><Name Encoded="True">..%2F..%2Fx</Name><Properties/></Directory>
    <File><Name Encoded="false">%41</Name><Properties><Content-Length>2</Content-Length></Properties></File>
    <Directory><Name>%41</Name><Properties/></Directory>
  </Entries><NextMarker/></EnumerationResults>"#;
        let names: Vec<String> =
            parse_dir_list(text).unwrap().items.into_iter().map(|e| e.name).collect();
        // Decoded as they are: refusing `..`, `/` and control characters is for the
        // caller that makes paths of them (`check_name`).
        assert_eq!(names, ["a\u{1}b%c \u{e9}\u{ffff}", "../../x", "%41", "%41"]);
        let bad = r#"<EnumerationResults><Entries><File><Name Encoded="true">%FF</Name>
            <Properties><Content-Length>1</Content-Length></Properties></File></Entries></EnumerationResults>"#;
        let Err(err) = parse_dir_list(bad) else { panic!("a name that is not UTF-8") };
        assert!(err.contains("not UTF-8"), "{err}");
        let shares = "<EnumerationResults><Shares><Share><Name Encoded=\"true\">run%2D1</Name>\
                      </Share></Shares></EnumerationResults>";
        assert_eq!(parse_share_list(shares).unwrap().items[0].name, "run-1");
    }

    #[test]
    fn reads_shares_and_errors() {
        let text = "<EnumerationResults><Shares><Share><Name>run-1</Name><Metadata>\
                    <worker>w1</worker></Metadata></Share></Shares><NextMarker/></EnumerationResults>";
        let page = parse_share_list(text).unwrap();
        assert_eq!(page.items[0].metadata, vec![("worker".to_owned(), "w1".to_owned())]);
        let (code, message) = parse_error(
            "<?xml version=\"1.0\"?><Error><Code>ShareNotFound</Code><Message>The specified share does not exist.\nRequestId:x</Message></Error>",
        );
        assert_eq!(code.as_deref(), Some("ShareNotFound"));
        assert!(message.unwrap().starts_with("The specified share"));
    }
}
