//! The agentnet domain: principals, providers, routing, policies, pricing and usage.
//!
//! Pure and deterministic: no IO, no async, no clock, no randomness, no environment. Anything
//! time-dependent takes `now` as an argument; a denial is a value (`Decision::Deny`), not an error.
//! Types here are deliberately not `Serialize`: wire formats live in `llm` and `api-types`.

pub mod glob;
pub mod limits;
pub mod policy;
pub mod pricing;
pub mod principal;
pub mod provider;
pub mod time;
pub mod usage;
pub mod window;

pub use glob::ModelPattern;
pub use limits::{
    Actual, Admission, Estimate, GlobalLimit, Headroom, Ledger, Limit, LimitHit, LimitStatus,
    Metric, Owner, Per, Refusal, ReservationId, Rules, Subject,
};
pub use policy::{candidates, evaluate, model_visible, Decision, DenyReason, Policy, Source};
pub use pricing::{Price, PriceTable};
pub use principal::{Principal, PrincipalKind};
pub use provider::{
    route, Api, Endpoint, GatewayPreset, Provider, ProviderKind, RouteError, Stamping,
};
pub use usage::{MicroUsd, Usage};
pub use window::RollingWindow;
