//! The Files service over plain HTTP: authentication, paths that try to leave a
//! share, links left in a share, ranges, listings, shares, and injected faults.

mod common;

use std::collections::HashSet;
use std::fs;
use std::time::Duration;

use azure_emulator::Faults;
use common::{Harness, tree};

#[tokio::test]
async fn requests_without_a_valid_signature_are_refused() {
    let h = Harness::start().await;
    let ok = h.send("GET", "/?comp=list", &[], vec![]).await;
    assert_eq!(ok.status, 200, "{}", ok.text());

    let endpoint = h.emulator.files_endpoint();
    let url = |rest: &str| reqwest::Url::parse(&format!("{endpoint}{rest}")).unwrap();
    let anonymous = h.send_unsigned("GET", url("/?comp=list"), &[], vec![]).await;
    assert_eq!((anonymous.status, anonymous.code()), (403, Some("AuthenticationFailed")));
    assert!(anonymous.text().contains("<Code>AuthenticationFailed</Code>"));

    // Signed with another key, for another path, with a mangled signature.
    let other =
        afs_staging::auth::SharedKey::new("devstoreaccount1", "AAECAwQFBgcICQoLDA0ODw==").unwrap();
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let headers = [("x-ms-date", date.as_str()), ("x-ms-version", common::VERSION)];
    let path = h.target("/");
    let forged = [
        other.authorization("GET", &path, Some("comp=list"), headers),
        h.key.authorization("GET", &h.target("/other"), Some("comp=list"), headers),
        h.key.authorization("GET", &path, Some("comp=list"), headers).replace(':', ":x"),
        "Bearer abc".to_owned(),
    ];
    for authorization in forged {
        let mut all: Vec<(String, String)> =
            headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        all.push(("authorization".into(), authorization));
        let answer = h.send_unsigned("GET", url("/?comp=list"), &all, vec![]).await;
        assert_eq!((answer.status, answer.code()), (403, Some("AuthenticationFailed")));
    }

    // A SAS token that was never signed by the key.
    let fake_sas = "/?comp=list&sv=2025-05-05&ss=f&srt=sco&sp=rl&se=2099-01-01T00:00:00Z&sig=AAAA";
    let answer = h.send_unsigned("GET", url(fake_sas), &[], vec![]).await;
    assert_eq!((answer.status, answer.code()), (403, Some("AuthenticationFailed")));

    // Correctly signed account SAS tokens whose times no calendar holds.
    for (st, se) in [
        ("", "99999999999999999-01-01T00:00:00Z"),
        ("9223372036854775807-12-31T23:59:59Z", "2099-01-01T00:00:00Z"),
        ("", "+18446744073709551615-01-01"),
    ] {
        let text =
            format!("{}\nrl\nf\nsco\n{st}\n{se}\n\n\n{}\n\n", h.key.account(), common::VERSION);
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let sig = enc(&h.key.sign(&text));
        let start = if st.is_empty() { String::new() } else { format!("&st={}", enc(st)) };
        let sas = format!(
            "/?comp=list&sv={}&ss=f&srt=sco&sp=rl{start}&se={}&sig={sig}",
            common::VERSION,
            enc(se)
        );
        let answer = h.send_unsigned("GET", url(&sas), &[], vec![]).await;
        assert_eq!((answer.status, answer.code()), (403, Some("AuthenticationFailed")), "{se}");
    }

    // HEAD: the error code in the header, no body.
    let answer = h.send_unsigned("HEAD", url("/share/file"), &[], vec![]).await;
    assert_eq!((answer.status, answer.code()), (403, Some("AuthenticationFailed")));
    assert!(answer.body.is_empty());

    let ids: HashSet<String> = [&ok, &anonymous, &answer]
        .iter()
        .map(|a| a.header("x-ms-request-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn paths_that_try_to_leave_the_share_touch_nothing() {
    let h = Harness::start().await;
    h.create_share("box").await;
    let outside = h.root.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("sentinel"), b"keep").unwrap();
    let before = tree(h.root.path());

    type Headers<'a> = &'a [(&'a str, &'a str)];
    let create_file = [("x-ms-type", "file"), ("x-ms-content-length", "5")];
    let attempts: &[(&str, &str, Headers<'_>)] = &[
        ("PUT", "/box/../escape", &create_file),
        ("PUT", "/box/%2e%2e/escape", &create_file),
        ("PUT", "/box/%2E%2E%2Fescape", &create_file),
        ("PUT", "/box/a%2F..%2F..%2Fescape", &create_file),
        ("PUT", "/box/.%2F..%2F..%2Foutside%2Fplanted", &create_file),
        ("PUT", "/box/..%5Cescape", &create_file),
        ("PUT", "/box/x%5C..%5C..%5Cescape", &create_file),
        ("PUT", "/box/%00escape", &create_file),
        ("PUT", "/box/./escape", &create_file),
        ("PUT", "/box//escape", &create_file),
        ("PUT", "/box/..%2F..%2Fescape-dir?restype=directory", &[]),
        ("PUT", "/%2e%2e?restype=share", &[]),
        ("PUT", "/..%2Foutside%2Fplanted", &create_file),
        ("GET", "/box/..%2F..%2Foutside%2Fsentinel", &[]),
        ("DELETE", "/box/..%2F..%2Foutside%2Fsentinel", &[]),
        ("DELETE", "/box/%2e%2e%2f%2e%2e%2foutside?restype=directory", &[]),
        ("DELETE", "/box/..?restype=share", &[]),
    ];
    for (method, rest, headers) in attempts {
        let answer = h.send_raw(method, &h.target(rest), headers).await;
        assert_eq!(answer.status, 400, "{method} {rest}: {}", answer.text());
        let refused = ["InvalidFileOrDirectoryPathName", "InvalidResourceName", "InvalidUri"];
        assert!(refused.contains(&answer.code().unwrap()), "{method} {rest}: {}", answer.text());
        assert_eq!(tree(h.root.path()), before, "{method} {rest} changed the disk");
    }
    // Through the account segment, too.
    let answer = h.send_raw("PUT", "/devstoreaccount1/../outside/planted", &create_file).await;
    assert_eq!(answer.status, 400);
    assert_eq!(fs::read(outside.join("sentinel")).unwrap(), b"keep");
    assert_eq!(tree(h.root.path()), before);

    // Dots that are names, not steps, are fine and stay inside.
    let answer = h.send_raw("PUT", &h.target("/box/..."), &create_file).await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert_eq!(fs::metadata(h.emulator.share_dir("box").join("...")).unwrap().len(), 5);
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn links_inside_a_share_are_not_followed() {
    let h = Harness::start().await;
    h.create_share("box").await;
    let outside = h.root.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"secret").unwrap();
    // What a container could leave behind.
    let share = h.emulator.share_dir("box");
    std::os::unix::fs::symlink(&outside, share.join("dir-link")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), share.join("file-link")).unwrap();
    std::os::unix::fs::symlink("/", share.join("root-link")).unwrap();
    h.create_file("/box/real.txt", b"real").await;
    let before = tree(h.root.path());

    let read = h.send("GET", "/box/file-link", &[], vec![]).await;
    assert_eq!((read.status, read.code()), (404, Some("ResourceNotFound")));
    assert!(!read.text().contains("secret"));
    let through = h.send("GET", "/box/dir-link/secret", &[], vec![]).await;
    assert_eq!((through.status, through.code()), (404, Some("ParentNotFound")));
    let head = h.send("HEAD", "/box/root-link/etc/passwd", &[], vec![]).await;
    assert_eq!(head.status, 404);

    let create_file = [("x-ms-type", "file"), ("x-ms-content-length", "3")];
    let replace = h.send("PUT", "/box/file-link", &create_file, vec![]).await;
    assert_eq!((replace.status, replace.code()), (409, Some("ResourceTypeMismatch")));
    let plant = h.send("PUT", "/box/dir-link/planted", &create_file, vec![]).await;
    assert_eq!((plant.status, plant.code()), (404, Some("ParentNotFound")));
    let mkdir = h.send("PUT", "/box/dir-link/d?restype=directory", &[], vec![]).await;
    assert_eq!(mkdir.status, 404);
    let write = h
        .send(
            "PUT",
            "/box/file-link?comp=range",
            &[("x-ms-range", "bytes=0-2"), ("x-ms-write", "update")],
            b"bad".to_vec(),
        )
        .await;
    assert_eq!(write.status, 404);
    let list = h.send("GET", "/box/dir-link?restype=directory&comp=list", &[], vec![]).await;
    assert_eq!(list.status, 404);
    let rmdir = h.send("DELETE", "/box/dir-link?restype=directory", &[], vec![]).await;
    assert_eq!(rmdir.status, 404);
    assert_eq!(tree(h.root.path()), before);

    // Links are not part of a listing.
    let list = h.send("GET", "/box?restype=directory&comp=list", &[], vec![]).await;
    assert_eq!(list.status, 200);
    let names = entry_names(&list.text());
    assert_eq!(names, ["real.txt"]);

    // Deleting a link removes the link; deleting the share leaves the targets alone.
    let delete = h.send("DELETE", "/box/file-link", &[], vec![]).await;
    assert_eq!(delete.status, 202);
    assert!(fs::symlink_metadata(share.join("file-link")).is_err());
    let delete = h.send("DELETE", "/box?restype=share", &[], vec![]).await;
    assert_eq!(delete.status, 202);
    assert!(!share.exists());
    assert_eq!(fs::read(outside.join("secret")).unwrap(), b"secret");
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn shares_keep_their_properties_outside_their_directory() {
    let h = Harness::start().await;
    for bad in ["ab", "Upper", "a--b", "-ab", "ab-", "a_b"] {
        let answer = h.send("PUT", &format!("/{bad}?restype=share"), &[], vec![]).await;
        assert_eq!((answer.status, answer.code()), (400, Some("InvalidResourceName")), "{bad}");
    }
    let headers = [("x-ms-share-quota", "12"), ("x-ms-meta-owner", "tests")];
    let created = h.send("PUT", "/run-1?restype=share", &headers, vec![]).await;
    assert_eq!(created.status, 201);
    assert!(created.header("etag").is_some() && created.header("last-modified").is_some());
    let again = h.send("PUT", "/run-1?restype=share", &[], vec![]).await;
    assert_eq!((again.status, again.code()), (409, Some("ShareAlreadyExists")));
    for quota in ["0", "102401", "18446744073709551615", "18446744073709551616", "-1"] {
        let answer =
            h.send("PUT", "/run-2?restype=share", &[("x-ms-share-quota", quota)], vec![]).await;
        assert_eq!((answer.status, answer.code()), (400, Some("InvalidHeaderValue")), "{quota}");
    }
    assert!(!h.emulator.share_dir("run-2").exists());

    let props = h.send("HEAD", "/run-1?restype=share", &[], vec![]).await;
    assert_eq!(props.status, 200);
    assert_eq!(props.header("x-ms-share-quota"), Some("12"));
    assert_eq!(props.header("x-ms-meta-owner"), Some("tests"));
    assert_eq!(props.header("etag"), created.header("etag"));
    // The share's directory holds its files only.
    assert!(tree(&h.emulator.share_dir("run-1")).is_empty());
    assert!(h.data_dir().join("meta/run-1.json").is_file());

    let listed = h.send("GET", "/?comp=list&include=metadata", &[], vec![]).await;
    let doc = roxmltree::Document::parse(std::str::from_utf8(&listed.body).unwrap()).unwrap();
    let quota = doc.descendants().find(|n| n.has_tag_name("Quota")).unwrap();
    assert_eq!(quota.text(), Some("12"));
    let owner = doc.descendants().find(|n| n.has_tag_name("owner")).unwrap();
    assert_eq!(owner.text(), Some("tests"));

    let deleted = h.send("DELETE", "/run-1?restype=share", &[], vec![]).await;
    assert_eq!(deleted.status, 202);
    assert!(!h.emulator.share_dir("run-1").exists());
    assert!(!h.data_dir().join("meta/run-1.json").exists());
    let gone = h.send("DELETE", "/run-1?restype=share", &[], vec![]).await;
    assert_eq!((gone.status, gone.code()), (404, Some("ShareNotFound")));
    let gone = h.send("GET", "/run-1/file", &[], vec![]).await;
    assert_eq!((gone.status, gone.code()), (404, Some("ShareNotFound")));
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn files_are_sized_written_and_read_by_range() {
    let h = Harness::start().await;
    h.create_share("box").await;
    let create = [("x-ms-type", "file"), ("x-ms-content-length", "10")];
    let created = h.send("PUT", "/box/f", &create, vec![]).await;
    assert_eq!(created.status, 201);
    let path = h.emulator.share_dir("box").join("f");
    assert_eq!(fs::read(&path).unwrap(), [0; 10]);

    let put = |range: &'static str, body: &'static [u8]| {
        let headers = [("x-ms-range", range), ("x-ms-write", "update")];
        let h = &h;
        async move { h.send("PUT", "/box/f?comp=range", &headers, body.to_vec()).await }
    };
    let written = put("bytes=2-5", b"abcd").await;
    assert_eq!(written.status, 201, "{}", written.text());
    assert_ne!(written.header("etag"), created.header("etag"));
    assert_eq!(fs::read(&path).unwrap(), b"\0\0abcd\0\0\0\0");
    let past_end = put("bytes=8-11", b"wxyz").await;
    assert_eq!((past_end.status, past_end.code()), (416, Some("InvalidRange")));
    let mismatch = put("bytes=0-3", b"ab").await;
    assert_eq!((mismatch.status, mismatch.code()), (400, Some("InvalidHeaderValue")));
    let headers = [("x-ms-range", "bytes=0-4194304"), ("x-ms-write", "update")];
    let too_big = h.send("PUT", "/box/f?comp=range", &headers, vec![1; (4 << 20) + 1]).await;
    assert_eq!((too_big.status, too_big.code()), (413, Some("RequestBodyTooLarge")));
    let headers = [("x-ms-range", "bytes=3-4"), ("x-ms-write", "clear")];
    let cleared = h.send("PUT", "/box/f?comp=range", &headers, vec![]).await;
    assert_eq!(cleared.status, 201);
    assert_eq!(fs::read(&path).unwrap(), b"\0\0a\0\0d\0\0\0\0");

    // Ranges at the edge of u64: refused as Azure refuses them, nothing written, and
    // the service still answers afterwards.
    let max = u64::MAX.to_string();
    let whole_u64 = format!("bytes=0-{max}");
    let last_byte = format!("bytes={max}-{max}");
    let beyond_u64 = format!("bytes=0-{}", u128::from(u64::MAX) + 1);
    let cases: [(&str, &str, (u16, &str)); 6] = [
        (&whole_u64, "update", (400, "InvalidHeaderValue")),
        (&whole_u64, "clear", (400, "InvalidHeaderValue")),
        (&last_byte, "update", (416, "InvalidRange")),
        (&last_byte, "clear", (416, "InvalidRange")),
        (&beyond_u64, "update", (400, "InvalidHeaderValue")),
        ("bytes=9223372036854775807-18446744073709551614", "clear", (416, "InvalidRange")),
    ];
    for (range, write, expected) in cases {
        let headers = [("x-ms-range", range), ("x-ms-write", write)];
        let body = if write == "update" { b"a".to_vec() } else { vec![] };
        let answer = h.send("PUT", "/box/f?comp=range", &headers, body).await;
        assert_eq!((answer.status, answer.code().unwrap()), expected, "{range} {write}");
    }
    assert_eq!(fs::read(&path).unwrap(), b"\0\0a\0\0d\0\0\0\0");
    let huge = [("x-ms-range", whole_u64.as_str())];
    let whole = h.send("GET", "/box/f", &huge, vec![]).await;
    assert_eq!((whole.status, whole.header("content-range")), (206, Some("bytes 0-9/10")));
    let from_max = [("x-ms-range", last_byte.as_str())];
    let past = h.send("GET", "/box/f", &from_max, vec![]).await;
    assert_eq!((past.status, past.code()), (416, Some("InvalidRange")));

    let whole = h.send("GET", "/box/f", &[], vec![]).await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, b"\0\0a\0\0d\0\0\0\0");
    assert_eq!(whole.header("x-ms-type"), Some("File"));
    let part = h.send("GET", "/box/f", &[("x-ms-range", "bytes=2-100")], vec![]).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 2-9/10"));
    assert_eq!(part.body, b"a\0\0d\0\0\0\0");
    let part = h.send("GET", "/box/f", &[("range", "bytes=5-")], vec![]).await;
    assert_eq!((part.status, part.body.as_slice()), (206, b"d\0\0\0\0".as_slice()));
    let beyond = h.send("GET", "/box/f", &[("x-ms-range", "bytes=10-20")], vec![]).await;
    assert_eq!((beyond.status, beyond.code()), (416, Some("InvalidRange")));
    let head = h.send("HEAD", "/box/f", &[], vec![]).await;
    assert_eq!(head.header("content-length"), Some("10"));
    assert_eq!(head.header("etag"), cleared.header("etag"));

    // A bigger file is created sparse and replaced by a second Create File.
    let create = [("x-ms-type", "file"), ("x-ms-content-length", "1099511627776")];
    assert_eq!(h.send("PUT", "/box/f", &create, vec![]).await.status, 201);
    assert_eq!(fs::metadata(&path).unwrap().len(), 1 << 40);
    let create = [("x-ms-type", "file"), ("x-ms-content-length", "4398046511105")];
    let too_large = h.send("PUT", "/box/f", &create, vec![]).await;
    assert_eq!(too_large.status, 400);
    for len in ["18446744073709551615", "18446744073709551616", "-1"] {
        let create = [("x-ms-type", "file"), ("x-ms-content-length", len)];
        let answer = h.send("PUT", "/box/f", &create, vec![]).await;
        assert_eq!((answer.status, answer.code()), (400, Some("InvalidHeaderValue")), "{len}");
    }
    assert_eq!(fs::metadata(&path).unwrap().len(), 1 << 40);

    let no_parent = [("x-ms-type", "file"), ("x-ms-content-length", "1")];
    let orphan = h.send("PUT", "/box/none/f", &no_parent, vec![]).await;
    assert_eq!((orphan.status, orphan.code()), (404, Some("ParentNotFound")));
    assert_eq!(h.send("PUT", "/box/d?restype=directory", &[], vec![]).await.status, 201);
    let over_dir = h.send("PUT", "/box/d", &no_parent, vec![]).await;
    assert_eq!(over_dir.status, 409);
    let delete = h.send("DELETE", "/box/f", &[], vec![]).await;
    assert_eq!(delete.status, 202);
    assert!(!path.exists());
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn listings_escape_names_and_page_with_markers() {
    let h = Harness::start().await;
    h.create_share("box").await;
    let names = ["a&b", "<c>", "d \"q\"", "\u{e9}t\u{e9}", "z+1%"];
    for name in names {
        let encoded =
            percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
        h.create_file(&format!("/box/{encoded}"), name.as_bytes()).await;
    }
    assert_eq!(h.send("PUT", "/box/sub?restype=directory", &[], vec![]).await.status, 201);

    let mut seen = Vec::new();
    let mut marker = String::new();
    let mut pages = 0;
    loop {
        let encoded =
            percent_encoding::utf8_percent_encode(&marker, percent_encoding::NON_ALPHANUMERIC);
        let rest = format!("/box?restype=directory&comp=list&maxresults=2&marker={encoded}");
        let page = h.send("GET", &rest, &[], vec![]).await;
        assert_eq!(page.status, 200, "{}", page.text());
        pages += 1;
        let text = page.text();
        let doc = roxmltree::Document::parse(&text).unwrap();
        let root = doc.root_element();
        assert_eq!(root.attribute("ShareName"), Some("box"));
        for entry in root.descendants().filter(|n| n.has_tag_name("File")) {
            let name = entry.children().find(|n| n.has_tag_name("Name")).unwrap().text().unwrap();
            let len = entry.descendants().find(|n| n.has_tag_name("Content-Length")).unwrap();
            assert_eq!(len.text().unwrap(), name.len().to_string());
        }
        seen.extend(entry_names(&text));
        marker = root
            .children()
            .find(|n| n.has_tag_name("NextMarker"))
            .and_then(|n| n.text())
            .unwrap_or("")
            .to_owned();
        if marker.is_empty() {
            break;
        }
    }
    let mut expected: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    expected.push("sub".into());
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(pages, 3);

    let prefixed =
        h.send("GET", "/box?restype=directory&comp=list&prefix=%C3%A9", &[], vec![]).await;
    assert_eq!(entry_names(&prefixed.text()), ["\u{e9}t\u{e9}"]);
    // maxresults beyond any integer type is capped or refused, never a crash.
    let all = h
        .send(
            "GET",
            "/box?restype=directory&comp=list&maxresults=18446744073709551615",
            &[],
            vec![],
        )
        .await;
    assert_eq!(all.status, 200, "{}", all.text());
    assert_eq!(entry_names(&all.text()), expected);
    for bad in ["18446744073709551616", "-1", "0"] {
        let answer = h
            .send("GET", &format!("/box?restype=directory&comp=list&maxresults={bad}"), &[], vec![])
            .await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.text());
    }
    let shares = h.send("GET", "/?comp=list&maxresults=18446744073709551615", &[], vec![]).await;
    assert_eq!(shares.status, 200, "{}", shares.text());
    let missing = h.send("GET", "/box/nope?restype=directory&comp=list", &[], vec![]).await;
    assert_eq!((missing.status, missing.code()), (404, Some("ResourceNotFound")));
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn error_rate_one_fails_every_request_and_zero_none() {
    let h = Harness::start().await;
    h.create_share("box").await;
    h.create_file("/box/big", &vec![7; 4 << 20]).await;
    let served = h.emulator.requests_served();

    h.emulator.set_faults(Faults { error_rate: 1.0, ..Faults::default() });
    let mut codes = HashSet::new();
    for _ in 0..30 {
        let answer = h.send("GET", "/?comp=list", &[], vec![]).await;
        assert!(matches!(answer.status, 500 | 503), "{}", answer.status);
        codes.insert(answer.code().unwrap().to_owned());
    }
    assert_eq!(codes, HashSet::from(["InternalError".to_owned(), "ServerBusy".to_owned()]));
    // A client still sending a whole range gets the answer, not a reset connection.
    let headers = [("x-ms-range", "bytes=0-4194303"), ("x-ms-write", "update")];
    let answer = h.send("PUT", "/box/big?comp=range", &headers, vec![1; 4 << 20]).await;
    assert!(matches!(answer.status, 500 | 503));
    assert_eq!(fs::read(h.emulator.share_dir("box").join("big")).unwrap(), vec![7; 4 << 20]);

    h.emulator.set_faults(Faults::default());
    for _ in 0..30 {
        assert_eq!(h.send("GET", "/?comp=list", &[], vec![]).await.status, 200);
    }
    assert_eq!(h.emulator.requests_served(), served + 61);
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn throttling_answers_server_busy_with_retry_after() {
    let h = Harness::start().await;
    h.emulator.set_faults(Faults {
        throttle_rate: 1.0,
        latency: Duration::from_millis(5),
        ..Faults::default()
    });
    let answer = h.send("GET", "/?comp=list", &[], vec![]).await;
    assert_eq!((answer.status, answer.code()), (503, Some("ServerBusy")));
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert!(answer.text().contains("Operations per second is over the account limit."));
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn after_faults_carry_out_the_operation_then_fail() {
    let h = Harness::start().await;
    h.emulator.set_faults(Faults { after_rate: 1.0, ..Faults::default() });
    let answer = h.send("PUT", "/box?restype=share", &[], vec![]).await;
    assert_eq!((answer.status, answer.code()), (500, Some("InternalError")));
    assert!(h.emulator.share_dir("box").is_dir());
    // A failing operation keeps its own error.
    let again = h.send("PUT", "/box?restype=share", &[], vec![]).await;
    assert_eq!((again.status, again.code()), (409, Some("ShareAlreadyExists")));
    h.emulator.shutdown().await;
}

/// The names of the entries of a directory listing, in order.
fn entry_names(xml: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("File") || n.has_tag_name("Directory"))
        .map(|n| n.children().find(|c| c.has_tag_name("Name")).unwrap().text().unwrap().to_owned())
        .collect()
}
