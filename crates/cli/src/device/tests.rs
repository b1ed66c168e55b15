//! The device key: made once, owner-only, reused, tightened when others could read it, and a
//! clear error for a file that is not a key.

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::fake_server::session_file;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_key_is_made_once_beside_the_session_readable_only_by_its_owner() {
    let (file, session_path, _dir) = session_file("device-key");
    let path = key_path(&file);
    assert_eq!(path, session_path.with_file_name("wireguard.key"));
    let key = load_or_create_key(&file).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, format!("{}\n", key.to_base64()));
    let again = load_or_create_key(&file).unwrap();
    assert_eq!(again.public_key(), key.public_key());
    // No temporary file is left behind.
    let entries = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
    assert_eq!(entries, 1);
}

#[test]
fn a_key_others_could_read_is_tightened_and_a_broken_one_is_refused() {
    let (file, _, _dir) = session_file("device-key-mode");
    let path = key_path(&file);
    let key = load_or_create_key(&file).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(load_or_create_key(&file).unwrap().public_key(), key.public_key());
    assert_eq!(mode(&path), 0o600);

    std::fs::write(&path, "not a key\n").unwrap();
    let err = load_or_create_key(&file).unwrap_err().to_string();
    assert!(err.ends_with("is not a WireGuard private key; delete it and this device gets a new key (run `agentnet peer config` again)"), "{err}");
    assert!(!err.contains("not a key"), "the file's content is not echoed: {err}");
}
