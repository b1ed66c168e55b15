//! Tests of the verified-token cache: hits, expiry and bounded eviction.

use domain::Principal;

use super::{ClaimCache, Digest, SHARDS};
use crate::claims::{GroupsClaim, Rules, Verified};
use crate::AuthError;

const NOW: i64 = 1_700_000_000;

fn rules() -> Rules {
    Rules {
        issuer: "https://idp.example".into(),
        audiences: vec!["agentnet".into()],
        groups: GroupsClaim::new("groups"),
        leeway_secs: 30,
    }
}

fn verified(name: &str, exp: i64) -> Verified {
    Verified { principal: Principal::agent(name, vec![]), exp, nbf: None, nonce: None }
}

#[test]
fn digest_is_sha256() {
    let digest = Digest::of("abc");
    assert_eq!(digest.0[..4], [0xba, 0x78, 0x16, 0xbf], "SHA-256(\"abc\") starts with ba7816bf");
}

#[test]
fn hit_miss_and_expiry() {
    let cache = ClaimCache::new(100);
    let rules = rules();
    let token = Digest::of("token-a");
    assert!(cache.get(&token, &rules, NOW).is_none());
    cache.insert(token, verified("a", NOW + 60), &rules, NOW);
    assert_eq!(cache.get(&token, &rules, NOW), Some(Ok(Principal::agent("a", vec![]))));
    assert!(cache.get(&Digest::of("token-b"), &rules, NOW).is_none());
    // Within the leeway after exp: still good.
    assert!(matches!(cache.get(&token, &rules, NOW + 60 + 29), Some(Ok(_))));
    assert_eq!(cache.get(&token, &rules, NOW + 60 + 30), Some(Err(AuthError::Expired)));
    assert!(cache.get(&token, &rules, NOW).is_none(), "expired entries are removed");
    assert_eq!(cache.len(), 0);
}

#[test]
fn not_yet_valid_entries_are_reported() {
    let cache = ClaimCache::new(100);
    let rules = rules();
    let token = Digest::of("t");
    let entry = Verified { nbf: Some(NOW + 100), ..verified("a", NOW + 600) };
    cache.insert(token, entry, &rules, NOW);
    assert_eq!(cache.get(&token, &rules, NOW), Some(Err(AuthError::NotYetValid)));
    assert!(matches!(cache.get(&token, &rules, NOW + 100), Some(Ok(_))));
}

#[test]
fn capacity_zero_disables_caching() {
    let cache = ClaimCache::new(0);
    let rules = rules();
    cache.insert(Digest::of("t"), verified("a", NOW + 60), &rules, NOW);
    assert!(cache.get(&Digest::of("t"), &rules, NOW).is_none());
    assert_eq!(cache.len(), 0);
}

/// `n` distinct digests that all land in the same shard.
fn same_shard(prefix: &str, n: usize) -> Vec<Digest> {
    (0..).map(|i| Digest::of(&format!("{prefix}-{i}"))).filter(|d| d.shard() == 0).take(n).collect()
}

#[test]
fn expired_entries_are_evicted_first() {
    let cache = ClaimCache::new(SHARDS * 4);
    let rules = rules();
    let old = same_shard("old", 4);
    for digest in &old {
        cache.insert(*digest, verified("old", NOW + 10), &rules, NOW);
    }
    assert_eq!(cache.len(), 4);
    // Once those expired, new tokens replace them and nothing valid is lost.
    let later = NOW + 100;
    let fresh = same_shard("fresh", 4);
    for digest in &fresh {
        cache.insert(*digest, verified("new", later + 600), &rules, later);
    }
    for digest in &fresh {
        assert!(matches!(cache.get(digest, &rules, later), Some(Ok(_))));
    }
    assert_eq!(cache.len(), 4);
    // Full of valid entries: some go, the newest stays.
    let extra = same_shard("extra", 1)[0];
    cache.insert(extra, verified("extra", later + 600), &rules, later);
    assert!(matches!(cache.get(&extra, &rules, later), Some(Ok(_))));
    assert!(cache.len() <= 4);
}

#[test]
fn bounded_under_floods() {
    let capacity = SHARDS * 4;
    let cache = ClaimCache::new(capacity);
    let rules = rules();
    for i in 0..capacity * 10 {
        cache.insert(Digest::of(&format!("flood-{i}")), verified("f", NOW + 600), &rules, NOW);
        assert!(cache.len() <= capacity);
    }
    assert!(cache.len() >= capacity / 2);
}

#[test]
fn capacity_one_per_shard() {
    let cache = ClaimCache::new(1);
    let rules = rules();
    for i in 0..100 {
        let digest = Digest::of(&format!("t-{i}"));
        cache.insert(digest, verified("a", NOW + 60), &rules, NOW);
        assert!(matches!(cache.get(&digest, &rules, NOW), Some(Ok(_))));
    }
    assert!(cache.len() <= SHARDS);
}
