//! Loads the captured-shape fixtures under `tests/data/<api>/*.{json,sse}`.

use std::path::PathBuf;

use domain::Endpoint;

pub(crate) struct Fixture {
    /// `<dir>/<file>`, for messages and snapshot names.
    pub(crate) name: String,
    pub(crate) endpoint: Endpoint,
    pub(crate) streaming: bool,
    pub(crate) bytes: Vec<u8>,
}

fn endpoint_for(dir: &str) -> Option<Endpoint> {
    Some(match dir {
        "anthropic" => Endpoint::Messages,
        "openai_chat" => Endpoint::ChatCompletions,
        "openai_responses" => Endpoint::Responses,
        "openai_embeddings" => Endpoint::Embeddings,
        _ => return None,
    })
}

/// Every fixture, sorted by name.
pub(crate) fn all() -> Vec<Fixture> {
    // The directory cargo runs the test in, read at run time: a binary built in another checkout
    // that shares the target directory (cargo reuses it when the sources match) would carry that
    // checkout's path, compiled in.
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    let root = PathBuf::from(manifest_dir).join("tests/data");
    let mut fixtures = Vec::new();
    for dir in std::fs::read_dir(&root).expect("tests/data exists") {
        let dir = dir.expect("readable dir entry").path();
        let Some(dir_name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        let Some(endpoint) = endpoint_for(&dir_name) else {
            continue;
        };
        for file in std::fs::read_dir(&dir).expect("fixture dir is readable") {
            let path = file.expect("readable file entry").path();
            let streaming = match path.extension().and_then(|e| e.to_str()) {
                Some("sse") => true,
                Some("json") => false,
                _ => continue,
            };
            let file_name = path.file_stem().and_then(|n| n.to_str()).unwrap_or_default();
            fixtures.push(Fixture {
                name: format!("{dir_name}/{file_name}"),
                endpoint,
                streaming,
                bytes: std::fs::read(&path).expect("fixture is readable"),
            });
        }
    }
    fixtures.sort_by(|a, b| a.name.cmp(&b.name));
    fixtures
}
