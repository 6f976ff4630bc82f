//! CEL expressions over events: trigger filters (`if`), idempotency keys,
//! wait and cancel matches. Expressions are compiled once, when a function is
//! defined, so a typo is an error at start-up rather than at the first event.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::error::{Error, Result};

/// A compiled CEL expression.
#[derive(Clone)]
pub struct Expr {
    source: Arc<str>,
    program: Arc<cel::Program>,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expr").field(&self.source).finish()
    }
}

impl Expr {
    /// Compiles `source`.
    ///
    /// # Errors
    /// [`Error::Expression`] with the parser's message.
    pub fn compile(source: &str) -> Result<Self> {
        let program = cel::Program::compile(source).map_err(|e| Error::Expression {
            expr: source.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            source: source.into(),
            program: Arc::new(program),
        })
    }

    /// The expression's source text.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates with the given JSON variables and returns the result as JSON.
    ///
    /// # Errors
    /// [`Error::Expression`] when evaluation fails (unknown field, wrong types).
    pub fn eval(&self, vars: &[(&str, &Value)]) -> Result<Value> {
        let mut context = cel::Context::default();
        for (name, value) in vars {
            let value = cel::to_value(value).map_err(|e| self.error(e))?;
            context.add_variable_from_value(*name, value);
        }
        let out = self.program.execute(&context).map_err(|e| self.error(e))?;
        out.json().map_err(|e| self.error(e))
    }

    /// Evaluates to a boolean; anything but `true` is false, and an evaluation
    /// error (such as a missing field) is false too, so a filter never matches by accident.
    #[must_use]
    pub fn matches(&self, vars: &[(&str, &Value)]) -> bool {
        matches!(self.eval(vars), Ok(Value::Bool(true)))
    }

    /// Evaluates to a key string (strings as-is, other values as JSON text).
    ///
    /// # Errors
    /// [`Error::Expression`] when evaluation fails or yields `null`.
    pub fn key(&self, vars: &[(&str, &Value)]) -> Result<String> {
        match self.eval(vars)? {
            Value::String(s) => Ok(s),
            Value::Null => Err(self.error("the key evaluated to null")),
            other => Ok(other.to_string()),
        }
    }

    fn error(&self, reason: impl fmt::Display) -> Error {
        Error::Expression {
            expr: self.source.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl Expr {
    /// The part of `value` that this expression can read through the
    /// variable `root`: every field path it selects from `root` (such as
    /// `event.data.userId`), with the rest of `value` left out. Evaluating
    /// the expression with that part bound to `root` gives what it gives
    /// with the whole of `value`. When the expression uses `root` other than
    /// through field selections (compares it whole, indexes it, or a macro
    /// binds a variable of that name), the whole of `value`.
    #[must_use]
    pub fn reads_of(&self, root: &str, value: &Value) -> Value {
        let mut paths = Vec::new();
        if selections(self.program.expression(), root, &mut paths).is_err()
            || paths.iter().any(Vec::is_empty)
        {
            return value.clone();
        }
        paths.sort_by_key(Vec::len);
        let mut part = Value::Object(serde_json::Map::new());
        for path in &paths {
            keep(&mut part, value, path);
        }
        part
    }
}

/// `root` is used whole (not only through field selections).
struct Whole;

/// Collects into `paths` the field paths `expr` selects from `root` (an
/// empty path: `root` itself).
fn selections(
    expr: &cel::IdedExpr,
    root: &str,
    paths: &mut Vec<Vec<String>>,
) -> std::result::Result<(), Whole> {
    use cel::common::ast::{EntryExpr, Expr as Ast};
    // `.event` names `event` too (a leading dot only makes it absolute).
    let is_root = |name: &str| name.strip_prefix('.').unwrap_or(name) == root;
    match &expr.expr {
        Ast::Ident(name) => {
            if is_root(name) {
                paths.push(Vec::new());
            }
        }
        Ast::Select(select) => {
            let mut fields = vec![select.field.clone()];
            let mut operand = &select.operand;
            loop {
                match &operand.expr {
                    Ast::Select(inner) => {
                        fields.push(inner.field.clone());
                        operand = &inner.operand;
                    }
                    Ast::Ident(name) if is_root(name) => {
                        fields.reverse();
                        paths.push(fields);
                        break;
                    }
                    _ => return selections(operand, root, paths),
                }
            }
        }
        Ast::Call(call) => {
            for arg in call.target.as_deref().into_iter().chain(&call.args) {
                selections(arg, root, paths)?;
            }
        }
        Ast::Comprehension(c) => {
            let binds_root = [Some(&c.iter_var), c.iter_var2.as_ref(), Some(&c.accu_var)]
                .into_iter()
                .flatten()
                .any(|var| var == root);
            if binds_root {
                return Err(Whole);
            }
            for part in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                selections(part, root, paths)?;
            }
        }
        Ast::List(list) => {
            for element in &list.elements {
                selections(element, root, paths)?;
            }
        }
        Ast::Map(cel::common::ast::MapExpr { entries })
        | Ast::Struct(cel::common::ast::StructExpr { entries, .. }) => {
            for entry in entries {
                match &entry.expr {
                    EntryExpr::MapEntry(e) => {
                        selections(&e.key, root, paths)?;
                        selections(&e.value, root, paths)?;
                    }
                    EntryExpr::StructField(f) => selections(&f.value, root, paths)?,
                }
            }
        }
        Ast::Literal(_) | Ast::Unspecified => {}
    }
    Ok(())
}

/// Copies into `part` what `value` holds along `path`: the value at its
/// end, or, where the path leaves the objects (a missing field, an array,
/// a scalar), what is there, so that a selection fails or tests absent as
/// it would on the whole value. A path under one already kept whole adds
/// nothing.
fn keep(part: &mut Value, value: &Value, path: &[String]) {
    let (mut part, mut value) = (part, value);
    for (i, field) in path.iter().enumerate() {
        let (Value::Object(into), Value::Object(from)) = (&mut *part, value) else {
            return; // kept whole above
        };
        let Some(next) = from.get(field) else {
            return; // absent here too
        };
        if i + 1 == path.len() || !next.is_object() {
            into.insert(field.clone(), next.clone());
            return;
        }
        part = into
            .entry(field.clone())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        value = next;
    }
}

/// Reads a dotted path such as `data.user.id` from a JSON value.
#[must_use]
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|part| !part.is_empty())
        .try_fold(value, |v, part| match v {
            Value::Object(map) => map.get(part),
            Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_on_event_fields() {
        let expr = Expr::compile("event.data.amount > 100 && event.name == 'a/b'").unwrap();
        let yes = json!({"name": "a/b", "data": {"amount": 150}});
        let no = json!({"name": "a/b", "data": {"amount": 50}});
        assert!(expr.matches(&[("event", &yes)]));
        assert!(!expr.matches(&[("event", &no)]));
    }

    #[test]
    fn missing_field_never_matches() {
        let expr = Expr::compile("event.data.missing == 'x'").unwrap();
        assert!(!expr.matches(&[("event", &json!({"data": {}}))]));
    }

    #[test]
    fn compares_two_events() {
        let expr = Expr::compile("event.data.userId == async.data.userId").unwrap();
        let a = json!({"data": {"userId": "u1"}});
        let b = json!({"data": {"userId": "u1"}});
        assert!(expr.matches(&[("event", &a), ("async", &b)]));
    }

    #[test]
    fn keys_are_strings() {
        let expr = Expr::compile("event.data.orderId").unwrap();
        assert_eq!(
            expr.key(&[("event", &json!({"data": {"orderId": 42}}))])
                .unwrap(),
            "42"
        );
        assert_eq!(
            expr.key(&[("event", &json!({"data": {"orderId": "o-1"}}))])
                .unwrap(),
            "o-1"
        );
    }

    #[test]
    fn syntax_errors_are_reported() {
        let err = Expr::compile("event.data.(").unwrap_err();
        assert!(err.to_string().contains("event.data.("), "{err}");
    }

    #[test]
    fn lookup_reads_paths() {
        let v = json!({"data": {"items": [{"id": "x"}]}});
        assert_eq!(lookup(&v, "data.items.0.id"), Some(&json!("x")));
        assert_eq!(lookup(&v, "data.nope"), None);
    }

    /// A webhook's event, larger than what conditions read of it.
    fn order() -> Value {
        json!({
            "id": "evt_1", "name": "shop/order.paid", "ts": 1,
            "data": {
                "userId": "u1", "shop": "acme", "note": "",
                "total": {"amount": 4200, "currency": "eur"},
                "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}],
                "customer": {"email": "x@example.com", "address": {"city": "Porto"}},
                "tags": "vip,early"
            }
        })
    }

    #[test]
    fn a_match_reads_only_the_fields_it_selects() {
        let expr = Expr::compile("event.data.userId == async.data.userId").unwrap();
        assert_eq!(
            expr.reads_of("event", &order()),
            json!({"data": {"userId": "u1"}})
        );
        let expr = Expr::compile(
            "has(event.data.missing) || event.data.total.amount > 100 && async.data.userId == event.data.userId",
        )
        .unwrap();
        assert_eq!(
            expr.reads_of("event", &order()),
            json!({"data": {"userId": "u1", "total": {"amount": 4200}}})
        );
    }

    #[test]
    fn a_root_used_whole_or_rebound_is_kept_whole() {
        for source in [
            "event == async",
            ".event == async",
            "event['data'].userId == async.data.userId",
            "[1, 2].exists(event, event > 1)",
            "size(event) > 0",
        ] {
            let expr = Expr::compile(source).unwrap();
            assert_eq!(expr.reads_of("event", &order()), order(), "{source}");
        }
    }

    #[test]
    fn what_a_condition_reads_decides_as_the_whole_event_does() {
        let conditions = [
            "event.data.userId == async.data.userId",
            ".event.data.userId == async.data.userId",
            "event.data.items.exists(i, i.sku == async.data.sku)",
            "event.data.total.amount >= async.data.min && event.data.total.currency == 'eur'",
            "has(event.data.customer.address.city) && !has(event.data.customer.phone)",
            "event.data.tags.contains(async.data.tag)",
            "event.data.note.size() == 0",
            "event.data.missing.deeper == 1",
            "event.data.tags.deeper == 1",
            "size(event.data.items) == async.data.count",
            "{'k': event.data.shop}.k == async.data.shop",
            "[event.data.userId][0] == async.data.userId",
        ];
        let candidates = [
            json!({"data": {"userId": "u1", "sku": "b", "min": 4000, "tag": "vip", "count": 2, "shop": "acme"}}),
            json!({"data": {"userId": "u2", "sku": "c", "min": 5000, "tag": "late", "count": 3, "shop": "other"}}),
            json!({"data": {}}),
        ];
        for source in conditions {
            let expr = Expr::compile(source).unwrap();
            let part = expr.reads_of("event", &order());
            assert!(
                part.to_string().len() < order().to_string().len(),
                "{source}: {part}"
            );
            for candidate in &candidates {
                assert_eq!(
                    expr.eval(&[("event", &part), ("async", candidate)]).ok(),
                    expr.eval(&[("event", &order()), ("async", candidate)]).ok(),
                    "{source} with {candidate}"
                );
            }
        }
    }
}
