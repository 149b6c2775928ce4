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
            let name = child_text(share, "Name").ok_or("a share without a name")?;
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
            let name = child_text(entry, "Name").ok_or("an entry without a name")?;
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
