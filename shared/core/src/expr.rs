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
}
