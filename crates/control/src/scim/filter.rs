//! SCIM filters (RFC 7644 §3.4.2.2), parsed by the `scim_v2` crate and evaluated here against
//! rendered resources: every operator (`eq ne co sw ew gt ge lt le pr`), `and`, `or`, `not`,
//! grouping and value paths (`emails[type eq "work"]`).
//!
//! Comparisons follow the attribute's `caseExact` (so `userName eq` is case-insensitive, `id eq`
//! is not). A multi-valued attribute matches when one of its values does; naming a complex one
//! without a sub-attribute compares its `value` (`members eq "<user id>"`, `emails eq "…"`).
//! `ne` is the negation of `eq`. An attribute the resource does not have matches only `ne` and
//! `eq null`.
//!
//! [`lookup`] picks, among the top-level `and` terms, an indexed equality (`id`, `userName` /
//! `displayName`, `externalId`, `members`, `emails`) so that the store narrows the candidates
//! before the whole filter is evaluated: Okta's `userName eq "…"` and Entra's
//! `id eq "…" and members eq "…"` never scan the directory.

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter, ValFilter};
use serde_json::{Map, Value};
use store::ScimLookup;

use super::{
    error::ScimError,
    schema::{self, find, get_ci, Attr, Container, ResourceDef},
};

/// Parses a filter expression; a malformed one is a 400 `invalidFilter`.
pub(crate) fn parse(text: &str) -> Result<Filter, ScimError> {
    text.parse::<Filter>()
        .map_err(|err| ScimError::invalid_filter(format!("invalid filter '{text}': {err}")))
}

/// Whether `resource` (rendered, with `id`, `meta` and memberships) matches `filter`.
pub(crate) fn matches(def: &ResourceDef, resource: &Map<String, Value>, filter: &Filter) -> bool {
    match filter {
        Filter::Attr(exp) => attr_exp(def, resource, exp),
        Filter::ValuePath(vp) => {
            let Some((values, attr)) = resolve(def, resource, &vp.attr) else { return false };
            let subs = attr.map(|a| a.sub_attributes.as_slice()).unwrap_or_default();
            elements(values)
                .any(|e| e.as_object().is_some_and(|e| element_matches(subs, e, &vp.filter)))
        }
        Filter::Not(inner) => !matches(def, resource, inner),
        Filter::And(operands) => operands.iter().all(|f| matches(def, resource, f)),
        Filter::Or(operands) => operands.iter().any(|f| matches(def, resource, f)),
    }
}

/// Whether one element of a multi-valued complex attribute matches a value filter, its
/// sub-attributes defined by `subs`.
pub(crate) fn element_matches(
    subs: &[Attr],
    element: &Map<String, Value>,
    filter: &ValFilter,
) -> bool {
    match filter {
        ValFilter::Attr(exp) => {
            let path = path_of(exp);
            let attr = find(subs, &path.name);
            let value = get_ci(element, &path.name);
            let (leaves, case_exact) = match (&path.sub_attr, value) {
                (Some(sub), Some(Value::Object(map))) => {
                    let sub_attr = attr.and_then(|a| a.sub(sub));
                    (
                        get_ci(map, sub).into_iter().collect::<Vec<_>>(),
                        sub_attr.is_some_and(|a| a.case_exact),
                    )
                }
                (Some(_), _) => (Vec::new(), false),
                (None, value) => (value.into_iter().collect(), attr.is_some_and(|a| a.case_exact)),
            };
            compare(exp, &leaves, case_exact)
        }
        ValFilter::Not(inner) => !element_matches(subs, element, inner),
        ValFilter::And(operands) => operands.iter().all(|f| element_matches(subs, element, f)),
        ValFilter::Or(operands) => operands.iter().any(|f| element_matches(subs, element, f)),
    }
}

fn path_of(exp: &AttrExp) -> &AttrPath {
    match exp {
        AttrExp::Present(path) | AttrExp::Comparison(path, _, _) => path,
    }
}

fn attr_exp(def: &ResourceDef, resource: &Map<String, Value>, exp: &AttrExp) -> bool {
    let path = path_of(exp);
    let Some((value, attr)) = resolve(def, resource, path) else {
        return compare(exp, &[], false);
    };
    let mut leaves: Vec<&Value> = Vec::new();
    // The sub-attribute compared: the one named, or `value` for a complex attribute.
    let sub_name = match (&path.sub_attr, value) {
        (Some(sub), _) => Some(sub.as_str()),
        (None, Value::Object(_)) => Some("value"),
        (None, Value::Array(items)) if items.iter().any(Value::is_object) => Some("value"),
        (None, _) => None,
    };
    for element in elements(value) {
        match (sub_name, element) {
            (Some(sub), Value::Object(map)) => leaves.extend(get_ci(map, sub)),
            (Some(_), _) if path.sub_attr.is_some() => {}
            (_, other) => leaves.push(other),
        }
    }
    let leaf_attr = match sub_name {
        Some(sub) => attr.and_then(|a| a.sub(sub)),
        None => attr,
    };
    compare(exp, &leaves, leaf_attr.is_some_and(|a| a.case_exact))
}

/// The value an attribute path names in a resource, with its definition if known.
fn resolve<'r, 'd>(
    def: &'d ResourceDef,
    resource: &'r Map<String, Value>,
    path: &AttrPath,
) -> Option<(&'r Value, Option<&'d Attr>)> {
    let container = match &path.uri {
        None => Container::Core,
        Some(uri) => def.container_of(uri),
    };
    let object = match &container {
        Container::Core => resource,
        Container::Extension(urn) => get_ci(resource, urn)?.as_object()?,
    };
    let value = get_ci(object, &path.name)?;
    Some((value, def.attr(&container, &path.name)))
}

/// The values of an attribute: the elements of a list, or the value itself.
fn elements(value: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match value {
        Value::Array(items) => Box::new(items.iter()),
        other => Box::new(std::iter::once(other)),
    }
}

fn compare(exp: &AttrExp, leaves: &[&Value], case_exact: bool) -> bool {
    let leaves: Vec<&Value> = leaves.iter().copied().filter(|v| !v.is_null()).collect();
    match exp {
        AttrExp::Present(_) => {
            leaves.iter().any(|v| !schema::unassigned(v) && v.as_str() != Some(""))
        }
        AttrExp::Comparison(_, CompareOp::Ne, value) => !equal_any(&leaves, value, case_exact),
        AttrExp::Comparison(_, CompareOp::Eq, value) => equal_any(&leaves, value, case_exact),
        AttrExp::Comparison(_, op, value) => {
            leaves.iter().any(|leaf| ordered(op, leaf, value, case_exact))
        }
    }
}

fn equal_any(leaves: &[&Value], expected: &CompValue, case_exact: bool) -> bool {
    if *expected == CompValue::Null {
        return leaves.is_empty();
    }
    leaves.iter().any(|leaf| match (expected, leaf) {
        (CompValue::Str(s), Value::String(v)) => fold(v, case_exact) == fold(s, case_exact),
        (CompValue::True, Value::Bool(b)) => *b,
        (CompValue::False, Value::Bool(b)) => !*b,
        // Entra and others may hold booleans as strings.
        (CompValue::True, Value::String(v)) => v.eq_ignore_ascii_case("true"),
        (CompValue::False, Value::String(v)) => v.eq_ignore_ascii_case("false"),
        (CompValue::Number(n), Value::Number(v)) => n.as_f64() == v.as_f64(),
        (CompValue::Str(s), Value::Number(v)) => s.parse::<f64>().ok() == v.as_f64(),
        _ => false,
    })
}

fn ordered(op: &CompareOp, leaf: &Value, expected: &CompValue, case_exact: bool) -> bool {
    match (expected, leaf) {
        (CompValue::Str(s), Value::String(v)) => {
            let (v, s) = (fold(v, case_exact), fold(s, case_exact));
            match op {
                CompareOp::Co => v.contains(s.as_str()),
                CompareOp::Sw => v.starts_with(s.as_str()),
                CompareOp::Ew => v.ends_with(s.as_str()),
                CompareOp::Gt => v > s,
                CompareOp::Ge => v >= s,
                CompareOp::Lt => v < s,
                CompareOp::Le => v <= s,
                CompareOp::Eq | CompareOp::Ne => false,
            }
        }
        (CompValue::Number(n), Value::Number(v)) => {
            let (Some(v), Some(n)) = (v.as_f64(), n.as_f64()) else { return false };
            match op {
                CompareOp::Gt => v > n,
                CompareOp::Ge => v >= n,
                CompareOp::Lt => v < n,
                CompareOp::Le => v <= n,
                _ => false,
            }
        }
        _ => false,
    }
}

fn fold(s: &str, case_exact: bool) -> String {
    if case_exact {
        s.to_owned()
    } else {
        s.to_lowercase()
    }
}

/// Whether the filter names the core attribute `name` anywhere (e.g. `members`, `groups`).
pub(crate) fn mentions(filter: &Filter, name: &str) -> bool {
    let named = |path: &AttrPath| path.name.eq_ignore_ascii_case(name);
    match filter {
        Filter::Attr(exp) => named(path_of(exp)),
        Filter::ValuePath(vp) => named(&vp.attr),
        Filter::Not(inner) => mentions(inner, name),
        Filter::And(operands) | Filter::Or(operands) => operands.iter().any(|f| mentions(f, name)),
    }
}

/// The indexed lookup that narrows the candidates of `filter` (see the module doc).
pub(crate) fn lookup(def: &ResourceDef, filter: &Filter) -> ScimLookup {
    let terms: Vec<&Filter> = match filter {
        Filter::And(operands) => operands.iter().collect(),
        other => vec![other],
    };
    let mut best: Option<(u8, ScimLookup)> = None;
    for term in terms {
        let Filter::Attr(AttrExp::Comparison(path, CompareOp::Eq, CompValue::Str(value))) = term
        else {
            continue;
        };
        if path.uri.as_deref().is_some_and(|uri| !uri.eq_ignore_ascii_case(def.core.urn)) {
            continue;
        }
        let name = path.name.as_str();
        let value_sub = path.sub_attr.as_deref().is_none_or(|s| s.eq_ignore_ascii_case("value"));
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        let candidate = if is("id") && path.sub_attr.is_none() {
            Some((0, ScimLookup::Id(value.clone())))
        } else if path.sub_attr.is_none()
            && (is("userName") && def.name == "User" || is("displayName") && def.name == "Group")
        {
            Some((1, ScimLookup::Name(value.clone())))
        } else if is("externalId") && path.sub_attr.is_none() {
            Some((2, ScimLookup::ExternalId(value.clone())))
        } else if is("members") && value_sub && def.name == "Group" {
            Some((3, ScimLookup::Member(value.clone())))
        } else if is("emails") && value_sub && def.name == "User" && value.is_ascii() {
            // SQLite's lower() folds ASCII only.
            Some((4, ScimLookup::Email(value.clone())))
        } else {
            None
        };
        if let Some((rank, lookup)) = candidate {
            if best.as_ref().is_none_or(|(r, _)| rank < *r) {
                best = Some((rank, lookup));
            }
        }
    }
    best.map_or(ScimLookup::All, |(_, lookup)| lookup)
}
