//! Every request the official Python SDK signed must get the same `Authorization`.

use afs_staging::auth::SharedKey;

/// The shared fixtures: `$ACI_FIXTURES`, else `shared/fixtures` beside the checkout.
fn fixtures() -> std::path::PathBuf {
    std::env::var_os("ACI_FIXTURES").map(Into::into).unwrap_or_else(|| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
    })
}

#[test]
fn every_recorded_request_verifies() {
    let path = fixtures().join("azure-files/azure-files-sharedkey-vectors.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set ACI_FIXTURES)", path.display()));
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let key =
        SharedKey::new(doc["account_name"].as_str().unwrap(), doc["account_key"].as_str().unwrap())
            .unwrap();
    let requests = doc["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 12);
    for request in requests {
        let method = request["method"].as_str().unwrap();
        let url = request["url"].as_str().unwrap();
        let after_host = &url[url.find("://").unwrap() + 3..];
        let target = &after_host[after_host.find('/').unwrap()..];
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let headers: Vec<(&str, &str)> = request["headers"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(name, _)| *name != "Authorization")
            .map(|(name, value)| (name.as_str(), value.as_str().unwrap()))
            .collect();
        let expected = request["headers"]["Authorization"].as_str().unwrap();
        let got = key.authorization(method, path, query, headers.iter().copied());
        assert_eq!(got, expected, "{method} {url}");
        assert!(key.verify(expected, method, path, query, headers.iter().copied()));
        let wrong = SharedKey::new("devstoreaccount1", "AQIDBA==").unwrap();
        assert!(!wrong.verify(expected, method, path, query, headers.iter().copied()));
    }
}
