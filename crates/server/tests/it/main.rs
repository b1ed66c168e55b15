//! Integration tests of the assembled server: a real `App` on ephemeral ports, with the mock
//! LLM upstreams and the mock IdP from `testkit`.

mod admin;
mod auth;
mod budgets;
mod deprovision;
mod forward;
mod metering;
mod overlay;
mod selfservice;
mod sign_in;
mod startup;
mod support;
