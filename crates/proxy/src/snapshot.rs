//! The data plane's view of dynamic configuration: providers with their keys and prices,
//! policies and agents. Built by the server from the store and swapped in atomically whenever
//! the admin API changes something; requests read it without locks or queries.

use std::collections::HashMap;

use domain::{Policy, PriceTable, Provider};
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
    pub(crate) policies: Vec<Policy>,
    /// Groups an admin put each agent in, merged with its token's groups.
    pub(crate) agent_groups: HashMap<String, Vec<String>>,
}

impl Snapshot {
    pub fn new(
        providers: Vec<(Provider, Option<SecretString>)>,
        policies: Vec<Policy>,
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
            policies,
            agent_groups,
        }
    }

    pub(crate) fn upstream(&self, name: &str) -> Option<&SnapshotProvider> {
        self.upstreams.iter().find(|u| u.provider.name == name)
    }
}
