//! The project's documents link only to files that exist inside the repository: whoever clones
//! it must be able to follow every link.

use std::path::{Path, PathBuf};

/// The relative link targets of a Markdown text (`[text](target)`), without anchors.
fn links(markdown: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = markdown;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split('#').next().unwrap_or_default().trim();
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            found.push(target.to_string());
        }
        rest = &rest[end..];
    }
    found
}

#[test]
fn every_link_of_the_readme_and_the_docs_points_at_a_file_inside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut documents: Vec<PathBuf> = ["README.md", "BENCHMARKS.md", "FAULTS.md"]
        .iter()
        .map(|name| root.join(name))
        .collect();
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/ exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            documents.push(path);
        }
    }
    let root = root.canonicalize().unwrap();
    for document in documents {
        let text = std::fs::read_to_string(&document).unwrap();
        let base = document.parent().unwrap();
        for target in links(&text) {
            let resolved = base.join(&target).canonicalize().unwrap_or_else(|_| {
                panic!("{}: the link {target} leads nowhere", document.display())
            });
            assert!(
                resolved.starts_with(&root),
                "{}: the link {target} leaves the repository",
                document.display()
            );
        }
    }
}

#[test]
fn the_link_reader_finds_relative_targets_only() {
    let found = links("see [a](docs/api.md#x), [b](https://x.org) and [c](../out.md)");
    assert_eq!(found, ["docs/api.md", "../out.md"]);
}

#[tokio::test]
async fn the_service_serves_the_committed_openapi_document() {
    let app = crate::helpers::spawn_app_without_database().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let served = response.text().await.unwrap();
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json"))
            .unwrap();
    assert_eq!(served, committed);
    let document: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
}
