//! The resource schemas agentnet serves (RFC 7643 §4, §8.7.1: User with the enterprise
//! extension, and Group), published at `/Schemas` from the JSON files next to this module, and
//! what the server derives from them: attribute lookup by case-insensitive name, the
//! normalization of a written resource, and `attributes` / `excludedAttributes` projection.
//!
//! Normalizing a resource (on POST, PUT and after a PATCH) makes it what is stored:
//! - known attributes get their schema spelling (`username` → `userName`);
//! - read-only attributes (`id`, `meta`, a user's `groups`, `manager.displayName`) and the
//!   write-only `password` are dropped: the server owns the first, and never stores the second;
//! - `null`, `[]` and `{}` mean unassigned (RFC 7643 §2.5) and are dropped, which also takes care
//!   of Entra's `"$ref": null` in member adds;
//! - booleans sent as strings (Entra's `"False"`) become booleans;
//! - a single value of a multi-valued attribute becomes a one-element list, and a bare value of
//!   a complex attribute (Entra's `"manager": "<id>"`) becomes `{"value": …}`;
//! - attributes the schemas do not know are kept as sent, so they round-trip.

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::ScimError;

pub(crate) const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub(crate) const ENTERPRISE_URN: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

const USER_JSON: &str = include_str!("schemas/user.json");
const GROUP_JSON: &str = include_str!("schemas/group.json");
const ENTERPRISE_JSON: &str = include_str!("schemas/enterprise_user.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Type {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Returned {
    Always,
    Never,
    Default,
    Request,
}

/// One attribute definition (RFC 7643 §7).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Attr {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: Type,
    pub(crate) multi_valued: bool,
    #[serde(default)]
    pub(crate) case_exact: bool,
    pub(crate) mutability: Mutability,
    pub(crate) returned: Returned,
    #[serde(default)]
    pub(crate) sub_attributes: Vec<Attr>,
}

impl Attr {
    fn common(name: &str, kind: Type, mutability: Mutability, returned: Returned) -> Self {
        Attr {
            name: name.to_owned(),
            kind,
            multi_valued: false,
            case_exact: true,
            mutability,
            returned,
            sub_attributes: Vec::new(),
        }
    }

    pub(crate) fn sub(&self, name: &str) -> Option<&Attr> {
        find(&self.sub_attributes, name)
    }

    pub(crate) fn is_complex(&self) -> bool {
        self.kind == Type::Complex
    }

    /// Whether a client may not set it: the server maintains it.
    pub(crate) fn read_only(&self) -> bool {
        self.mutability == Mutability::ReadOnly
    }

    /// Whether it is never returned (and so never stored): `password`.
    pub(crate) fn never_returned(&self) -> bool {
        self.returned == Returned::Never || self.mutability == Mutability::WriteOnly
    }
}

/// A schema: its URN, attributes, and the JSON published at `/Schemas/{urn}`.
#[derive(Debug)]
pub(crate) struct Schema {
    pub(crate) urn: &'static str,
    pub(crate) attrs: Vec<Attr>,
    pub(crate) json: Value,
}

/// A resource type: its core schema (with the common attributes `id`, `externalId`, `meta`)
/// and extensions.
#[derive(Debug)]
pub(crate) struct ResourceDef {
    /// `User` or `Group`.
    pub(crate) name: &'static str,
    /// `Users` or `Groups`.
    pub(crate) endpoint: &'static str,
    pub(crate) core: Schema,
    pub(crate) extensions: Vec<Schema>,
}

/// Where an attribute lives: in the core schema or under an extension's URN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Container {
    Core,
    /// The extension URN, in the schema's spelling when the extension is known.
    Extension(String),
}

impl ResourceDef {
    pub(crate) fn attrs(&self, container: &Container) -> &[Attr] {
        match container {
            Container::Core => &self.core.attrs,
            Container::Extension(urn) => {
                self.extension(urn).map(|s| s.attrs.as_slice()).unwrap_or_default()
            }
        }
    }

    pub(crate) fn attr(&self, container: &Container, name: &str) -> Option<&Attr> {
        find(self.attrs(container), name)
    }

    pub(crate) fn extension(&self, urn: &str) -> Option<&Schema> {
        self.extensions.iter().find(|s| s.urn.eq_ignore_ascii_case(urn))
    }

    /// The container a URN names: the core schema, a known extension, or an unknown one.
    pub(crate) fn container_of(&self, urn: &str) -> Container {
        if urn.eq_ignore_ascii_case(self.core.urn) {
            Container::Core
        } else {
            Container::Extension(self.extension(urn).map_or(urn, |s| s.urn).to_owned())
        }
    }

    /// Every schema of this resource type, core first.
    pub(crate) fn schemas(&self) -> impl Iterator<Item = &Schema> {
        std::iter::once(&self.core).chain(&self.extensions)
    }
}

pub(crate) fn users() -> &'static ResourceDef {
    static DEF: OnceLock<ResourceDef> = OnceLock::new();
    DEF.get_or_init(|| ResourceDef {
        name: "User",
        endpoint: "Users",
        core: schema(USER_URN, USER_JSON, true),
        extensions: vec![schema(ENTERPRISE_URN, ENTERPRISE_JSON, false)],
    })
}

pub(crate) fn groups() -> &'static ResourceDef {
    static DEF: OnceLock<ResourceDef> = OnceLock::new();
    DEF.get_or_init(|| ResourceDef {
        name: "Group",
        endpoint: "Groups",
        core: schema(GROUP_URN, GROUP_JSON, true),
        extensions: Vec::new(),
    })
}

/// Parses an embedded schema file. The files are part of the binary and checked by the tests,
/// so a parse failure is a build defect.
fn schema(urn: &'static str, text: &str, with_common: bool) -> Schema {
    #[derive(Deserialize)]
    struct File {
        attributes: Vec<Attr>,
    }
    let json: Value = serde_json::from_str(text).expect("embedded SCIM schema is valid JSON");
    let mut attrs = serde_json::from_value::<File>(json.clone())
        .expect("embedded SCIM schema has valid attribute definitions")
        .attributes;
    if with_common {
        // RFC 7643 §3.1: common attributes, part of every resource but of no schema.
        attrs.push(Attr::common("id", Type::String, Mutability::ReadOnly, Returned::Always));
        attrs.push(Attr::common(
            "externalId",
            Type::String,
            Mutability::ReadWrite,
            Returned::Default,
        ));
        let mut meta = Attr::common("meta", Type::Complex, Mutability::ReadOnly, Returned::Default);
        for (name, kind) in [
            ("resourceType", Type::String),
            ("created", Type::DateTime),
            ("lastModified", Type::DateTime),
            ("location", Type::Reference),
            ("version", Type::String),
        ] {
            meta.sub_attributes.push(Attr::common(
                name,
                kind,
                Mutability::ReadOnly,
                Returned::Default,
            ));
        }
        attrs.push(meta);
    }
    Schema { urn, attrs, json }
}

pub(crate) fn find<'a>(attrs: &'a [Attr], name: &str) -> Option<&'a Attr> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// The key of `map` that spells `name` case-insensitively (the exact spelling first).
pub(crate) fn key_ci(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_owned());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

pub(crate) fn get_ci<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// Whether a value stands for an unassigned attribute (RFC 7643 §2.5).
pub(crate) fn unassigned(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// Normalizes a resource as written by a client (see the module doc). Server-owned keys
/// (`schemas`, `id`, `meta`) are dropped whatever their case.
pub(crate) fn normalize_resource(
    def: &ResourceDef,
    input: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in input {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if key.len() > 4 && key[..4].eq_ignore_ascii_case("urn:") {
            // An extension object. (A core-URN-prefixed attribute key is not a resource shape.)
            let Value::Object(ext) = value else { continue };
            let container = def.container_of(key);
            let Container::Extension(urn) = &container else { continue };
            let attrs = def.attrs(&container);
            let normalized = normalize_object(attrs, ext);
            if !normalized.is_empty() {
                out.insert(urn.clone(), Value::Object(normalized));
            }
            continue;
        }
        insert_normalized(&mut out, def.attrs(&Container::Core), key, value);
    }
    out
}

/// The attributes of `input` normalized against `attrs`.
pub(crate) fn normalize_object(attrs: &[Attr], input: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in input {
        insert_normalized(&mut out, attrs, key, value);
    }
    out
}

fn insert_normalized(out: &mut Map<String, Value>, attrs: &[Attr], key: &str, value: &Value) {
    match find(attrs, key) {
        Some(attr) if attr.read_only() || attr.never_returned() => {}
        Some(attr) => {
            if let Some(value) = normalize_value(attr, value) {
                out.insert(attr.name.clone(), value);
            }
        }
        None => {
            if !unassigned(value) {
                out.insert(key.to_owned(), value.clone());
            }
        }
    }
}

/// A value of `attr` normalized; `None` if it is unassigned.
pub(crate) fn normalize_value(attr: &Attr, value: &Value) -> Option<Value> {
    if attr.multi_valued {
        let items: Vec<Value> = match value {
            Value::Array(items) => items.iter().filter_map(|v| normalize_single(attr, v)).collect(),
            other => normalize_single(attr, other).into_iter().collect(),
        };
        return (!items.is_empty()).then_some(Value::Array(items));
    }
    match value {
        // A one-element list for a single-valued attribute: its element.
        Value::Array(items) if items.len() == 1 => normalize_single(attr, &items[0]),
        other => normalize_single(attr, other),
    }
}

/// One value (an element, for a multi-valued attribute) normalized.
pub(crate) fn normalize_single(attr: &Attr, value: &Value) -> Option<Value> {
    if value.is_null() {
        return None;
    }
    if attr.is_complex() {
        let object = match value {
            Value::Object(map) => normalize_object(&attr.sub_attributes, map),
            scalar => {
                let mut map = Map::new();
                map.insert("value".into(), scalar.clone());
                normalize_object(&attr.sub_attributes, &map)
            }
        };
        return (!object.is_empty()).then_some(Value::Object(object));
    }
    match (attr.kind, value) {
        (Type::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => {
            Some(Value::Bool(true))
        }
        (Type::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => {
            Some(Value::Bool(false))
        }
        _ => Some(value.clone()),
    }
}

/// The `schemas` of a stored or rendered resource: the core schema, then every extension
/// object it carries.
pub(crate) fn schemas_of(def: &ResourceDef, resource: &Map<String, Value>) -> Value {
    let mut schemas = vec![Value::String(def.core.urn.to_owned())];
    for (key, value) in resource {
        if key.len() > 4 && key[..4].eq_ignore_ascii_case("urn:") && value.is_object() {
            schemas.push(Value::String(key.clone()));
        }
    }
    Value::Array(schemas)
}

/// An attribute named in `attributes` or `excludedAttributes`: `userName`, `name.givenName`,
/// `emails.value`, `urn:…:enterprise:2.0:User:department`, or a whole extension URN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttrRef {
    container: Container,
    /// `None`: the whole extension.
    name: Option<String>,
    sub: Option<String>,
}

impl AttrRef {
    pub(crate) fn parse(def: &ResourceDef, text: &str) -> Result<AttrRef, ScimError> {
        let text = text.trim();
        let (container, rest) = if text.len() > 4 && text[..4].eq_ignore_ascii_case("urn:") {
            // The longest schema URN of this resource type that prefixes it, else the text up
            // to its last ':' (an unknown extension).
            let known = def
                .schemas()
                .map(|s| s.urn)
                .filter(|urn| {
                    text.len() >= urn.len()
                        && text[..urn.len()].eq_ignore_ascii_case(urn)
                        && (text.len() == urn.len() || text.as_bytes()[urn.len()] == b':')
                })
                .max_by_key(|urn| urn.len());
            match known {
                Some(urn) => (def.container_of(urn), text.get(urn.len() + 1..).unwrap_or("")),
                None => match text.rsplit_once(':') {
                    Some((urn, rest)) => (def.container_of(urn), rest),
                    None => (Container::Core, text),
                },
            }
        } else {
            (Container::Core, text)
        };
        if rest.is_empty() {
            return match container {
                Container::Extension(_) => Ok(AttrRef { container, name: None, sub: None }),
                Container::Core => {
                    Err(ScimError::invalid_value(format!("'{text}' names no attribute")))
                }
            };
        }
        let (name, sub) = match rest.split_once('.') {
            Some((name, sub)) => (name, Some(sub)),
            None => (rest, None),
        };
        let attr = def.attr(&container, name);
        let name = attr.map_or(name, |a| a.name.as_str()).to_owned();
        let sub =
            sub.map(|s| attr.and_then(|a| a.sub(s)).map_or(s, |a| a.name.as_str()).to_owned());
        Ok(AttrRef { container, name: Some(name), sub })
    }

    /// Whether it names `name` (or part of it) in the core schema.
    pub(crate) fn names_core(&self, name: &str) -> bool {
        self.container == Container::Core
            && self.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name))
    }
}

/// Parses a comma-separated `attributes` / `excludedAttributes` value.
pub(crate) fn attr_refs(def: &ResourceDef, lists: &[String]) -> Result<Vec<AttrRef>, ScimError> {
    lists
        .iter()
        .flat_map(|list| list.split(','))
        .filter(|s| !s.trim().is_empty())
        .map(|s| AttrRef::parse(def, s))
        .collect()
}

/// What a response shows of a resource: everything (returned "default" and "always"), only
/// some attributes plus those returned "always", or everything but some.
#[derive(Debug, Clone, Default)]
pub(crate) struct Projection {
    pub(crate) attributes: Vec<AttrRef>,
    pub(crate) excluded: Vec<AttrRef>,
}

impl Projection {
    pub(crate) fn parse(
        def: &ResourceDef,
        attributes: &[String],
        excluded: &[String],
    ) -> Result<Self, ScimError> {
        Ok(Projection {
            attributes: attr_refs(def, attributes)?,
            excluded: attr_refs(def, excluded)?,
        })
    }

    /// Whether the response will show the core attribute `name`.
    pub(crate) fn shows(&self, name: &str) -> bool {
        if !self.attributes.is_empty() {
            return self.attributes.iter().any(|r| r.names_core(name));
        }
        !self.excluded.iter().any(|r| r.names_core(name) && r.sub.is_none())
    }

    /// Applies the projection to a rendered resource (its `schemas` are recomputed).
    pub(crate) fn apply(
        &self,
        def: &ResourceDef,
        mut resource: Map<String, Value>,
    ) -> Map<String, Value> {
        if !self.attributes.is_empty() {
            let mut out = Map::new();
            if let Some(id) = resource.get("id") {
                out.insert("id".into(), id.clone());
            }
            for r in &self.attributes {
                copy_ref(&resource, &mut out, r);
            }
            resource = out;
        }
        for r in &self.excluded {
            if r.names_core("id") {
                continue; // returned "always"
            }
            remove_ref(&mut resource, r);
        }
        let schemas = schemas_of(def, &resource);
        resource.insert("schemas".into(), schemas);
        resource
    }
}

fn container_of<'a>(
    resource: &'a Map<String, Value>,
    container: &Container,
) -> Option<&'a Map<String, Value>> {
    match container {
        Container::Core => Some(resource),
        Container::Extension(urn) => get_ci(resource, urn).and_then(Value::as_object),
    }
}

fn copy_ref(from: &Map<String, Value>, to: &mut Map<String, Value>, r: &AttrRef) {
    let Some(source) = container_of(from, &r.container) else { return };
    let target = match &r.container {
        Container::Core => to,
        Container::Extension(urn) => {
            let Some(key) = key_ci(from, urn) else { return };
            match to.entry(key).or_insert_with(|| Value::Object(Map::new())) {
                Value::Object(target) => target,
                _ => return,
            }
        }
    };
    let Some(name) = &r.name else {
        // The whole extension.
        target.extend(source.clone());
        return;
    };
    let Some(key) = key_ci(source, name) else { return };
    let value = &source[&key];
    let Some(sub) = &r.sub else {
        target.insert(key, value.clone());
        return;
    };
    let pick = |v: &Value| -> Option<Value> {
        let map = v.as_object()?;
        let sub_key = key_ci(map, sub)?;
        let mut out = Map::new();
        out.insert(sub_key.clone(), map[&sub_key].clone());
        Some(Value::Object(out))
    };
    let picked = match value {
        Value::Array(items) => {
            let items: Vec<Value> = items.iter().filter_map(pick).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        other => pick(other),
    };
    if let Some(picked) = picked {
        match (target.get_mut(&key), picked) {
            (Some(Value::Object(existing)), Value::Object(more)) => existing.extend(more),
            (Some(Value::Array(existing)), Value::Array(more)) if existing.len() == more.len() => {
                for (e, m) in existing.iter_mut().zip(more) {
                    if let (Value::Object(e), Value::Object(m)) = (e, m) {
                        e.extend(m);
                    }
                }
            }
            (_, picked) => {
                target.insert(key, picked);
            }
        }
    }
}

fn remove_ref(resource: &mut Map<String, Value>, r: &AttrRef) {
    let container = match &r.container {
        Container::Core => resource,
        Container::Extension(urn) => {
            let Some(key) = key_ci(resource, urn) else { return };
            if r.name.is_none() {
                resource.remove(&key);
                return;
            }
            match resource.get_mut(&key) {
                Some(Value::Object(map)) => map,
                _ => return,
            }
        }
    };
    let Some(name) = &r.name else { return };
    let Some(key) = key_ci(container, name) else { return };
    let Some(sub) = &r.sub else {
        container.remove(&key);
        return;
    };
    match container.get_mut(&key) {
        Some(Value::Object(map)) => {
            if let Some(k) = key_ci(map, sub) {
                map.remove(&k);
            }
        }
        Some(Value::Array(items)) => {
            for item in items {
                if let Value::Object(map) = item {
                    if let Some(k) = key_ci(map, sub) {
                        map.remove(&k);
                    }
                }
            }
        }
        _ => {}
    }
}
