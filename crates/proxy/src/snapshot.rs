//! The data plane's view of dynamic configuration: providers with their keys and prices,
//! policies and agents. Built by the server from the store and swapped in atomically whenever
//! the admin API changes something; requests read it without locks or queries.

use std::collections::HashMap;

use domain::{GlobalLimit, Policy, PriceTable, Provider, Rules};
use http::{HeaderName, HeaderValue};
use secrecy::SecretString;

use crate::upstream::auth_header;

/// One provider, ready for forwarding.
pub struct SnapshotProvider {
    pub provider: Provider,
    /// The provider key in the provider's own auth header (marked sensitive), if configured.
    pub(crate) auth: Option<(HeaderName, HeaderValue)>,
    /// Built-in prices with this provider's overrides.
    pub prices: PriceTable,
}

/// Everything a request needs to know about dynamic configuration.
#[derive(Default)]
pub struct Snapshot {
    /// Domain providers, for `domain::route`; `upstreams[i]` belongs to `providers[i]`.
    pub(crate) providers: Vec<Provider>,
    pub(crate) upstreams: Vec<SnapshotProvider>,
    /// Policies and global limits, indexed for admission.
    pub(crate) rules: Rules,
    /// Groups an admin put each agent in, merged with its token's groups.
    pub(crate) agent_groups: HashMap<String, Vec<String>>,
}

impl Snapshot {
    pub fn new(
        providers: Vec<(Provider, Option<SecretString>)>,
        policies: Vec<Policy>,
        globals: Vec<GlobalLimit>,
        agent_groups: HashMap<String, Vec<String>>,
    ) -> Self {
        let built_in = PriceTable::built_in();
        let upstreams: Vec<SnapshotProvider> = providers
            .into_iter()
            .map(|(provider, key)| SnapshotProvider {
                prices: built_in.with_overrides(&provider.price_overrides),
                auth: key.as_ref().and_then(|k| auth_header(provider.kind, k)),
                provider,
            })
            .collect();
        Self {
            providers: upstreams.iter().map(|u| u.provider.clone()).collect(),
            upstreams,
            rules: Rules::new(policies, globals),
            agent_groups,
        }
    }

    /// The longest window of any limit: how far back counters must be rebuilt from records.
    pub fn longest_window_secs(&self) -> u64 {
        let policy_windows = self.rules.policies().iter().flat_map(|p| p.limits.iter());
        let global_windows = self.rules.globals().iter().map(|g| &g.limit);
        policy_windows.chain(global_windows).map(|l| l.window_secs).max().unwrap_or(0)
    }

    /// Whether `other` has the same limits (so counters can carry over as they are).
    pub fn same_limits(&self, other: &Snapshot) -> bool {
        let policy_limits = |s: &Snapshot| {
            s.rules
                .policies()
                .iter()
                .map(|p| (p.name.clone(), p.sources.clone(), p.limits.clone()))
                .collect::<Vec<_>>()
        };
        let globals = |s: &Snapshot| {
            s.rules
                .globals()
                .iter()
                .map(|g| (g.name.clone(), g.targets.clone(), g.limit))
                .collect::<Vec<_>>()
        };
        policy_limits(self) == policy_limits(other) && globals(self) == globals(other)
    }

    pub(crate) fn upstream(&self, name: &str) -> Option<&SnapshotProvider> {
        self.upstreams.iter().find(|u| u.provider.name == name)
    }
}
