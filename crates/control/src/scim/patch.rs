//! SCIM PATCH (RFC 7644 §3.5.2) over a resource held as JSON, with the shapes IdPs really send:
//!
//! - `op` in any case (`add`, Entra's `Add` / `Replace` / `Remove`);
//! - no `path`: `value` is an object of attributes, whose keys may be dotted (`name.givenName`)
//!   or carry a schema URN (`urn:…:enterprise:2.0:User:department`), and may include read-only
//!   ones that are ignored (Okta sends `id` when it renames a group);
//! - `path` with a value filter: `emails[type eq "work"].value`, `members[value eq "<id>"]`;
//!   an `add` or `replace` that matches nothing creates the element when the filter is a
//!   conjunction of `eq` (Entra replaces `emails[type eq "work"].value` on users that have none);
//! - `remove` of `members` with a `value` list (Entra's default) removes those members only;
//! - adding a value that is already there (same `value`) merges into it instead of duplicating:
//!   adding an existing member is a no-op;
//! - `replace` of a complex attribute replaces the sub-attributes given and keeps the others;
//! - setting a value as `primary` clears `primary` on the attribute's other values.
//!
//! The caller normalizes the result (booleans from strings, `null`s, read-only attributes) and
//! derives what it stores from it; a group's members are in the document as `members` during the
//! patch, so member operations are ordinary multi-valued attribute operations.

use scim_v2::filter::{AttrExp, CompValue, CompareOp, PatchPath, ValFilter};
use serde_json::{Map, Value};

use super::{
    error::ScimError,
    filter::element_matches,
    schema::{key_ci, normalize_single, normalize_value, unassigned, Attr, Container, ResourceDef},
    PATCH_OP_URN,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Add,
    Remove,
    Replace,
}

/// One operation of a PatchOp request.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    kind: OpKind,
    path: Option<String>,
    value: Option<Value>,
}

/// Reads a PatchOp request body: `{"schemas": [PatchOp URN], "Operations": [...]}` (the
/// `Operations` key in any case; a missing `schemas` is tolerated).
pub(crate) fn parse(body: &Value) -> Result<Vec<Operation>, ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::invalid_syntax("a PATCH body is a PatchOp object"));
    };
    if let Some(schemas) = body.get("schemas").and_then(Value::as_array) {
        if !schemas.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_URN)))
        {
            return Err(ScimError::invalid_syntax(format!(
                "a PATCH body's schemas must include {PATCH_OP_URN}"
            )));
        }
    }
    let operations = body
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Operations"))
        .map(|(_, v)| v)
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("a PATCH body needs an 'Operations' list"))?;
    operations
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let op = op.as_object().ok_or_else(|| {
                ScimError::invalid_syntax(format!("operation {i} is not an object"))
            })?;
            let field =
                |name: &str| op.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
            let kind =
                match field("op").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
                    Some("add") => OpKind::Add,
                    Some("remove") => OpKind::Remove,
                    Some("replace") => OpKind::Replace,
                    other => {
                        return Err(ScimError::invalid_syntax(format!(
                            "operation {i}: 'op' must be add, remove or replace, not {}",
                            other.map_or("missing".to_owned(), |o| format!("'{o}'"))
                        )))
                    }
                };
            let path = match field("path") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) if p.trim().is_empty() => None,
                Some(Value::String(p)) => Some(p.trim().to_owned()),
                Some(_) => {
                    return Err(ScimError::invalid_path(format!(
                        "operation {i}: 'path' must be a string"
                    )))
                }
            };
            Ok(Operation { kind, path, value: field("value").cloned() })
        })
        .collect()
}

/// Applies the operations in order to `doc`, all or nothing (the caller discards `doc` on
/// error).
pub(crate) fn apply(
    def: &ResourceDef,
    doc: &mut Map<String, Value>,
    ops: &[Operation],
) -> Result<(), ScimError> {
    for op in ops {
        match &op.path {
            Some(path) => {
                let target = Target::parse(def, path)?;
                target.check_writable(path)?;
                target.apply(doc, op.kind, op.value.as_ref())?;
            }
            None => {
                if op.kind == OpKind::Remove {
                    return Err(ScimError::no_target("a remove operation needs a path"));
                }
                let Some(Value::Object(values)) = &op.value else {
                    return Err(ScimError::invalid_value(
                        "an add or replace without a path needs an object of attributes as its value",
                    ));
                };
                for (key, value) in values {
                    if ["schemas", "id", "meta"].iter().any(|k| key.eq_ignore_ascii_case(k)) {
                        continue;
                    }
                    let known = def.extension(key).map(|ext| ext.urn.to_owned());
                    if let Some(urn) = known.or_else(|| unknown_extension(def, key, value)) {
                        // {"urn:…:enterprise:2.0:User": {"department": …}}
                        let Value::Object(attrs) = value else {
                            return Err(ScimError::invalid_value(format!(
                                "'{key}' must be an object"
                            )));
                        };
                        for (name, value) in attrs {
                            let target =
                                Target::attribute(def, Container::Extension(urn.clone()), name);
                            if !target.read_only() {
                                target.apply(doc, op.kind, Some(value))?;
                            }
                        }
                        continue;
                    }
                    let target = if key.contains(':') || key.contains('.') {
                        Target::parse(def, key)
                            .unwrap_or_else(|_| Target::attribute(def, Container::Core, key))
                    } else {
                        Target::attribute(def, Container::Core, key)
                    };
                    // Read-only attributes in a path-less value are ignored, not refused.
                    if !target.read_only() {
                        target.apply(doc, op.kind, Some(value))?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Whether a path-less key is a whole extension this server does not know (its value an
/// object, and what precedes its last `:` not a schema of the resource type, so it is not an
/// attribute of a known schema): `{"urn:example:custom:1.0:User": {"badge": 7}}`.
fn unknown_extension(def: &ResourceDef, key: &str, value: &Value) -> Option<String> {
    let is_urn = key.len() > 4 && key[..4].eq_ignore_ascii_case("urn:");
    let prefix_known = key
        .rsplit_once(':')
        .is_some_and(|(prefix, _)| def.schemas().any(|s| s.urn.eq_ignore_ascii_case(prefix)));
    (is_urn && value.is_object() && !prefix_known).then(|| key.to_owned())
}

/// What an operation's path designates.
#[derive(Debug)]
struct Target<'d> {
    def: &'d ResourceDef,
    container: Container,
    /// The whole extension object (`path` is the extension's URN).
    whole_extension: bool,
    name: String,
    attr: Option<&'d Attr>,
    filter: Option<ValFilter>,
    sub: Option<String>,
}

impl<'d> Target<'d> {
    fn attribute(def: &'d ResourceDef, container: Container, key: &str) -> Self {
        let (name, sub) = match key.split_once('.') {
            Some((name, sub)) => (name, Some(sub)),
            None => (key, None),
        };
        let attr = def.attr(&container, name);
        Target {
            def,
            name: attr.map_or(name, |a| a.name.as_str()).to_owned(),
            sub: sub.map(|s| attr.and_then(|a| a.sub(s)).map_or(s, |a| a.name.as_str()).to_owned()),
            attr,
            container,
            whole_extension: false,
            filter: None,
        }
    }

    fn parse(def: &'d ResourceDef, path: &str) -> Result<Self, ScimError> {
        // A bare extension URN: the parser would read its last segment as an attribute.
        if let Some(ext) = def.extension(path) {
            return Ok(Target {
                def,
                container: Container::Extension(ext.urn.to_owned()),
                whole_extension: true,
                name: String::new(),
                attr: None,
                filter: None,
                sub: None,
            });
        }
        let parsed: PatchPath = path
            .parse()
            .map_err(|err| ScimError::invalid_path(format!("invalid path '{path}': {err}")))?;
        let (attr_path, filter, trailing) = match parsed {
            PatchPath::Attr(a) => (a, None, None),
            PatchPath::Value(v) => (v.attr, Some(v.filter), v.sub_attr),
        };
        if attr_path.sub_attr.is_some() && filter.is_some() {
            return Err(ScimError::invalid_path(format!("invalid path '{path}'")));
        }
        let container = match &attr_path.uri {
            None => Container::Core,
            Some(uri) => def.container_of(uri),
        };
        let key = match attr_path.sub_attr.or(trailing) {
            Some(sub) => format!("{}.{sub}", attr_path.name),
            None => attr_path.name,
        };
        let mut target = Target::attribute(def, container, &key);
        if filter.is_some() && target.attr.is_some_and(|a| !a.multi_valued) {
            return Err(ScimError::invalid_path(format!(
                "'{path}': a value filter needs a multi-valued attribute"
            )));
        }
        target.filter = filter;
        Ok(target)
    }

    fn sub_attr(&self) -> Option<&'d Attr> {
        self.attr.and_then(|a| self.sub.as_deref().and_then(|s| a.sub(s)))
    }

    fn read_only(&self) -> bool {
        self.attr.is_some_and(Attr::read_only) || self.sub_attr().is_some_and(Attr::read_only)
    }

    /// An explicit path to a read-only attribute is a 400 `mutability`.
    fn check_writable(&self, path: &str) -> Result<(), ScimError> {
        if self.read_only() {
            return Err(ScimError::mutability(format!("'{path}' is read-only")));
        }
        Ok(())
    }

    fn is_multi(&self, existing: Option<&Value>, value: Option<&Value>) -> bool {
        match self.attr {
            Some(attr) => attr.multi_valued,
            None => {
                matches!(existing, Some(Value::Array(_))) || matches!(value, Some(Value::Array(_)))
            }
        }
    }

    fn apply(
        &self,
        doc: &mut Map<String, Value>,
        kind: OpKind,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if self.whole_extension {
            return self.apply_extension(doc, kind, value);
        }
        if kind != OpKind::Remove && value.is_none_or(Value::is_null) {
            // Adding nothing changes nothing; replacing with null unassigns.
            if kind == OpKind::Replace {
                return self.apply(doc, OpKind::Remove, None);
            }
            return Ok(());
        }
        let Some(container) = container_mut(doc, &self.container, kind != OpKind::Remove) else {
            return Ok(()); // removing from an absent extension
        };
        let key = key_ci(container, &self.name).unwrap_or_else(|| self.name.clone());
        match kind {
            OpKind::Remove => self.remove(container, &key, value),
            _ if self.filter.is_some() => {
                self.write_filtered(container, &key, kind, value.unwrap_or(&Value::Null))?
            }
            _ if self.sub.is_some() => {
                self.write_sub(container, &key, value.unwrap_or(&Value::Null))
            }
            _ => self.write(container, &key, kind, value.unwrap_or(&Value::Null))?,
        }
        tidy(container, &key);
        if let Container::Extension(urn) = &self.container {
            tidy(doc, &key_ci(doc, urn).unwrap_or_else(|| urn.clone()));
        }
        Ok(())
    }

    fn apply_extension(
        &self,
        doc: &mut Map<String, Value>,
        kind: OpKind,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let Container::Extension(urn) = &self.container else { return Ok(()) };
        match (kind, value) {
            (OpKind::Remove, _) | (OpKind::Replace, None | Some(Value::Null)) => {
                if let Some(key) = key_ci(doc, urn) {
                    doc.remove(&key);
                }
                Ok(())
            }
            (_, Some(Value::Object(attrs))) => {
                for (name, value) in attrs {
                    let target = Target::attribute(self.def, self.container.clone(), name);
                    if !target.read_only() {
                        target.apply(doc, kind, Some(value))?;
                    }
                }
                Ok(())
            }
            (_, None | Some(Value::Null)) => Ok(()),
            (_, Some(_)) => {
                Err(ScimError::invalid_value(format!("the value for '{urn}' must be an object")))
            }
        }
    }

    /// Normalizes an incoming value of the whole attribute (a list for a multi-valued one).
    fn incoming(&self, value: &Value) -> Value {
        match self.attr {
            Some(attr) => normalize_value(attr, value).unwrap_or(Value::Null),
            None => value.clone(),
        }
    }

    /// Normalizes one incoming element (or the value of a single-valued attribute).
    fn incoming_single(&self, value: &Value) -> Value {
        match self.attr {
            Some(attr) => normalize_single(attr, value).unwrap_or(Value::Null),
            None => value.clone(),
        }
    }

    fn incoming_sub(&self, value: &Value) -> Value {
        match self.sub_attr() {
            Some(sub) => normalize_value(sub, value).unwrap_or(Value::Null),
            None => value.clone(),
        }
    }

    fn remove(&self, container: &mut Map<String, Value>, key: &str, value: Option<&Value>) {
        let Some(existing) = container.get_mut(key) else { return };
        if let Some(filter) = &self.filter {
            let Value::Array(items) = existing else { return };
            let subs = self.attr.map(|a| a.sub_attributes.as_slice()).unwrap_or_default();
            let selected =
                |item: &Value| item.as_object().is_some_and(|o| element_matches(subs, o, filter));
            match &self.sub {
                Some(sub) => {
                    for item in items.iter_mut().filter(|i| selected(i)) {
                        remove_key(item, sub);
                    }
                }
                None => items.retain(|item| !selected(item)),
            }
            return;
        }
        if let Some(sub) = &self.sub {
            match existing {
                Value::Array(items) => items.iter_mut().for_each(|item| remove_key(item, sub)),
                other => remove_key(other, sub),
            }
            return;
        }
        // `remove` with a value list (Entra's member removal): only those values.
        if let Some(value) = value.filter(|v| !v.is_null()) {
            if let Value::Array(items) = existing {
                let gone: Vec<Value> = match self.incoming(value) {
                    Value::Array(gone) => gone,
                    Value::Null => Vec::new(),
                    one => vec![one],
                };
                items.retain(|item| !gone.iter().any(|g| same_value(item, g)));
                return;
            }
        }
        container.remove(key);
    }

    fn write(
        &self,
        container: &mut Map<String, Value>,
        key: &str,
        kind: OpKind,
        value: &Value,
    ) -> Result<(), ScimError> {
        let existing = container.get(key);
        if self.is_multi(existing, Some(value)) {
            let incoming = match self.incoming(value) {
                Value::Array(items) => items,
                Value::Null => Vec::new(),
                one => vec![one],
            };
            let mut items = match (kind, container.remove(key)) {
                (OpKind::Add, Some(Value::Array(items))) => items,
                (OpKind::Add, Some(other)) if !unassigned(&other) => vec![other],
                _ => Vec::new(),
            };
            let mut touched = Vec::new();
            for new in incoming {
                match items.iter().position(|item| same_value(item, &new)) {
                    Some(at) => {
                        merge(&mut items[at], new);
                        touched.push(at);
                    }
                    None => {
                        items.push(new);
                        touched.push(items.len() - 1);
                    }
                }
            }
            one_primary(&mut items, &touched);
            container.insert(key.to_owned(), Value::Array(items));
            return Ok(());
        }
        let incoming = self.incoming_single(value);
        let complex = self.attr.map_or(
            incoming.is_object() && existing.is_some_and(Value::is_object),
            Attr::is_complex,
        );
        if complex {
            // RFC 7644 §3.5.2.1 and §3.5.2.3: sub-attributes given are set, the others kept.
            let Value::Object(_) = incoming else {
                return Err(ScimError::invalid_value(format!(
                    "'{}' takes an object of sub-attributes",
                    self.name
                )));
            };
            let slot = container.entry(key.to_owned()).or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            merge(slot, incoming);
            return Ok(());
        }
        container.insert(key.to_owned(), incoming);
        Ok(())
    }

    /// `name.sub` without a filter: the sub-attribute of a complex attribute, or of every value
    /// of a multi-valued one.
    fn write_sub(&self, container: &mut Map<String, Value>, key: &str, value: &Value) {
        let Some(sub) = &self.sub else { return };
        let value = self.incoming_sub(value);
        let multi = self.is_multi(container.get(key), None);
        let slot = container.entry(key.to_owned()).or_insert_with(|| {
            if multi {
                Value::Array(Vec::new())
            } else {
                Value::Object(Map::new())
            }
        });
        match slot {
            Value::Array(items) => {
                if items.is_empty() {
                    items.push(Value::Object(Map::new()));
                }
                for item in items.iter_mut() {
                    set_key(item, sub, value.clone());
                }
            }
            other => set_key(other, sub, value),
        }
    }

    fn write_filtered(
        &self,
        container: &mut Map<String, Value>,
        key: &str,
        kind: OpKind,
        value: &Value,
    ) -> Result<(), ScimError> {
        let Some(filter) = &self.filter else { return Ok(()) };
        let subs = self.attr.map(|a| a.sub_attributes.as_slice()).unwrap_or_default();
        let slot = container.entry(key.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
        if !slot.is_array() {
            let one = slot.take();
            *slot = Value::Array(if unassigned(&one) { Vec::new() } else { vec![one] });
        }
        let Value::Array(items) = slot else { return Ok(()) };
        let mut touched: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, item)| item.as_object().is_some_and(|o| element_matches(subs, o, filter)))
            .map(|(i, _)| i)
            .collect();
        if touched.is_empty() {
            let Some(seed) = seed(filter) else {
                return Err(ScimError::no_target(format!(
                    "no value of '{}' matches the path's filter",
                    self.name
                )));
            };
            items.push(Value::Object(seed));
            touched.push(items.len() - 1);
        }
        for &at in &touched {
            match &self.sub {
                Some(sub) => set_key(&mut items[at], sub, self.incoming_sub(value)),
                None => {
                    let new = self.incoming_single(value);
                    if !new.is_object() {
                        return Err(ScimError::invalid_value(format!(
                            "a value of '{}' is an object",
                            self.name
                        )));
                    }
                    if kind == OpKind::Replace {
                        // Keep what the filter selected on (e.g. `type`), replace the rest.
                        let mut fresh = match seed(filter) {
                            Some(seed) => Value::Object(seed),
                            None => Value::Object(Map::new()),
                        };
                        merge(&mut fresh, new);
                        items[at] = fresh;
                    } else {
                        merge(&mut items[at], new);
                    }
                }
            }
        }
        one_primary(items, &touched);
        Ok(())
    }
}

/// The object of a container, created when `create` (for writes).
fn container_mut<'a>(
    doc: &'a mut Map<String, Value>,
    container: &Container,
    create: bool,
) -> Option<&'a mut Map<String, Value>> {
    match container {
        Container::Core => Some(doc),
        Container::Extension(urn) => {
            let key = match key_ci(doc, urn) {
                Some(key) => key,
                None if create => urn.clone(),
                None => return None,
            };
            let slot = doc.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                if !create {
                    return None;
                }
                *slot = Value::Object(Map::new());
            }
            slot.as_object_mut()
        }
    }
}

/// Removes `key` from `map` if its value became unassigned.
fn tidy(map: &mut Map<String, Value>, key: &str) {
    if map.get(key).is_some_and(|v| {
        unassigned(v) || v.as_array().is_some_and(|items| items.iter().all(unassigned))
    }) {
        map.remove(key);
    }
}

fn remove_key(value: &mut Value, name: &str) {
    if let Value::Object(map) = value {
        if let Some(key) = key_ci(map, name) {
            map.remove(&key);
        }
    }
}

fn set_key(value: &mut Value, name: &str, new: Value) {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    if let Value::Object(map) = value {
        let key = key_ci(map, name).unwrap_or_else(|| name.to_owned());
        if new.is_null() {
            map.remove(&key);
        } else {
            map.insert(key, new);
        }
    }
}

/// Merges the sub-attributes of `new` into `into` (a `null` unassigns); a non-object replaces.
fn merge(into: &mut Value, new: Value) {
    match (into, new) {
        (Value::Object(into), Value::Object(new)) => {
            for (k, v) in new {
                let key = key_ci(into, &k).unwrap_or(k);
                if v.is_null() {
                    into.remove(&key);
                } else {
                    into.insert(key, v);
                }
            }
        }
        (into, new) => *into = new,
    }
}

/// Whether two values of a multi-valued attribute are the same value: complex values with a
/// `value` compare by it (and by `type`, when both have one), others as wholes.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => match (a.get("value"), b.get("value")) {
            (Some(va), Some(vb)) => {
                va == vb
                    && match (a.get("type"), b.get("type")) {
                        (Some(Value::String(ta)), Some(Value::String(tb))) => {
                            ta.eq_ignore_ascii_case(tb)
                        }
                        _ => true,
                    }
            }
            _ => a == b,
        },
        (Value::Object(a), scalar) | (scalar, Value::Object(a)) => a.get("value") == Some(scalar),
        (a, b) => a == b,
    }
}

/// RFC 7643 §2.4: at most one value is `primary`. If one of `touched` (just written) is, the
/// others stop being.
fn one_primary(items: &mut [Value], touched: &[usize]) {
    let is_primary = |v: &Value| v.get("primary") == Some(&Value::Bool(true));
    let Some(&winner) = touched.iter().rev().find(|&&i| items.get(i).is_some_and(is_primary))
    else {
        return;
    };
    for (i, item) in items.iter_mut().enumerate() {
        if i != winner && is_primary(item) {
            if let Value::Object(map) = item {
                map.insert("primary".into(), Value::Bool(false));
            }
        }
    }
}

/// The element a filter of `eq` terms describes (`type eq "work"` → `{"type": "work"}`), to
/// create when nothing matches; `None` for any other filter.
fn seed(filter: &ValFilter) -> Option<Map<String, Value>> {
    match filter {
        ValFilter::Attr(AttrExp::Comparison(path, CompareOp::Eq, value))
            if path.uri.is_none() && path.sub_attr.is_none() =>
        {
            let value = match value {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::True => Value::Bool(true),
                CompValue::False => Value::Bool(false),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return None,
            };
            let mut map = Map::new();
            map.insert(path.name.clone(), value);
            Some(map)
        }
        ValFilter::And(operands) => {
            let mut out = Map::new();
            for operand in operands.iter() {
                out.extend(seed(operand)?);
            }
            Some(out)
        }
        _ => None,
    }
}
