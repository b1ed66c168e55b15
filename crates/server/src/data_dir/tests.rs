//! Tests for the data directory and master key handling.

use std::os::unix::fs::PermissionsExt;

use super::*;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("agentnet-datadir-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

#[test]
fn first_start_generates_an_owner_only_key_and_later_starts_reuse_it() {
    let dir = temp_dir("generate");
    ensure(&dir).unwrap();
    assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    let first = master_key(&dir).unwrap();
    let path = dir.join(MASTER_KEY_FILE);
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let again = master_key(&dir).unwrap();
    assert_eq!(first.expose_bytes(), again.expose_bytes());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_key_readable_by_others_is_refused() {
    let dir = temp_dir("loose");
    ensure(&dir).unwrap();
    master_key(&dir).unwrap();
    let path = dir.join(MASTER_KEY_FILE);
    set_mode(&path, 0o644).unwrap();
    let err = master_key(&dir).unwrap_err().to_string();
    assert!(err.contains("readable by other users") && err.contains("chmod 600"), "{err}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_corrupt_key_is_an_error_not_a_new_key() {
    let dir = temp_dir("corrupt");
    ensure(&dir).unwrap();
    master_key(&dir).unwrap();
    let path = dir.join(MASTER_KEY_FILE);
    fs::write(&path, "not base64!\n").unwrap();
    set_mode(&path, 0o600).unwrap();
    assert!(master_key(&dir).unwrap_err().to_string().contains("not base64"));
    fs::remove_dir_all(&dir).unwrap();
}
