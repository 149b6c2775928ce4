//! A tiny XML writer for the few documents the Files service sends: error bodies and
//! enumeration results.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// What a name that XML cannot carry is percent-encoded with (`Encoded="true"`), on
/// top of every non-ASCII byte.
const NAME_ENCODE: &AsciiSet = &CONTROLS.add(b'%').add(b'\x7f');

/// An XML document being written.
pub(crate) struct Xml {
    out: String,
}

impl Xml {
    /// A document that starts with the XML declaration Azure sends.
    pub(crate) fn document() -> Self {
        Xml { out: String::from(r#"<?xml version="1.0" encoding="utf-8"?>"#) }
    }

    /// `<name>`.
    pub(crate) fn open(&mut self, name: &str) {
        self.open_with(name, &[]);
    }

    /// `<name a="v" ...>`.
    pub(crate) fn open_with(&mut self, name: &str, attributes: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attributes {
            self.out.push(' ');
            self.out.push_str(key);
            self.out.push_str("=\"");
            escape_into(&mut self.out, value);
            self.out.push('"');
        }
        self.out.push('>');
    }

    /// `</name>`.
    pub(crate) fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// `<name>text</name>`, or `<name />` for empty text.
    pub(crate) fn element(&mut self, name: &str, text: &str) {
        if text.is_empty() {
            self.out.push('<');
            self.out.push_str(name);
            self.out.push_str(" />");
            return;
        }
        self.open(name);
        escape_into(&mut self.out, text);
        self.close(name);
    }

    /// `<Name>` of a listed file, directory or share. Names with characters that XML
    /// 1.0 cannot carry are sent percent-encoded with `Encoded="true"`, as Azure does.
    pub(crate) fn name_element(&mut self, name: &str) {
        if name.chars().all(xml_char) {
            self.element("Name", name);
        } else {
            self.open_with("Name", &[("Encoded", "true")]);
            let encoded = utf8_percent_encode(name, NAME_ENCODE).to_string();
            escape_into(&mut self.out, &encoded);
            self.close("Name");
        }
    }

    /// The finished document.
    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// Characters allowed in XML 1.0 text.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if xml_char(c) => out.push(c),
            // Never reached for names (see `name_element`); elsewhere a character XML
            // cannot carry is dropped rather than making the document unreadable.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_keeps_unicode() {
        let mut xml = Xml::document();
        xml.open_with("R", &[("A", "x\"&<y")]);
        xml.element("Name", "a & b <c> 'd' é ✓");
        xml.element("Empty", "");
        xml.close("R");
        assert_eq!(
            xml.finish(),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><R A=\"x&quot;&amp;&lt;y\">\
             <Name>a &amp; b &lt;c&gt; &apos;d&apos; é ✓</Name><Empty /></R>"
        );
    }

    #[test]
    fn names_xml_cannot_carry_are_percent_encoded() {
        let mut xml = Xml { out: String::new() };
        xml.name_element("a\u{1}b%c é&");
        assert_eq!(xml.finish(), "<Name Encoded=\"true\">a%01b%25c %C3%A9&amp;</Name>");
    }
}
