//! The platform's emails, rendered with minijinja from `.html` templates
//! (auto-escaped: names and titles come from shoppers and creators).

use std::sync::LazyLock;

use minijinja::Environment;
use serde::Serialize;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("review.html", REVIEW),
        ("payout.html", PAYOUT),
        ("application.html", APPLICATION),
    ] {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name}: {e}"));
    }
    env
});

const REVIEW: &str = r#"<p>Hi {{ first_name or "there" }},</p>
<p>How is your order {{ order }}{% if items %} ({{ items | join(", ") }}){% endif %}? {% if sequence > 1 %}We would still love to hear from you.{% else %}We would love to hear what you think.{% endif %}</p>
<p><a href="{{ link }}">Write a review</a> and get {{ percent_off }}% off your next order with the code <strong>{{ code }}</strong>.</p>
<p>{{ shop }}</p>
"#;

const PAYOUT: &str = r#"<p>Hi {{ name }},</p>
<p>We sent you {{ amount }} {{ currency }} (transfer {{ transfer }}). It usually arrives within two business days.</p>
<p>{{ shop }}</p>
"#;

const APPLICATION: &str = r#"<p>Hi {{ name }},</p>
<p>Thanks for applying to the {{ shop }} creator program. We review every application and will get back to you within a week.</p>
"#;

/// Renders template `name` with `context`.
///
/// # Errors
/// A rendering error (a bug in a template).
pub fn render<S: Serialize>(name: &str, context: S) -> anyhow::Result<String> {
    Ok(TEMPLATES.get_template(name)?.render(context)?)
}

/// An amount in minor units as the currency writes it: `12345` USD is
/// `123.45`, `2500` JPY is `2500`.
#[must_use]
pub fn amount(minor: i64, currency: &str) -> String {
    let exponent = hookflow_clients::shopify::currency_exponent(currency);
    let sign = if minor < 0 { "-" } else { "" };
    let minor = minor.unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{minor}");
    }
    let scale = 10_u64.pow(exponent);
    let width = exponent as usize;
    format!("{sign}{}.{:0width$}", minor / scale, minor % scale)
}

#[cfg(test)]
mod tests {
    use minijinja::context;

    #[test]
    fn emails_escape_what_shoppers_typed() {
        let html = super::render(
            "review.html",
            context! { first_name => "<b>Ada</b>", order => "#1001", items => vec!["Mug & Tee"],
                sequence => 1, link => "https://x/r?order=1", percent_off => 10, code => "R1", shop => "Acme" },
        )
        .unwrap();
        assert!(
            html.contains("&lt;b&gt;Ada&lt;&#x2f;b&gt;") || html.contains("&lt;b&gt;Ada"),
            "{html}"
        );
        assert!(html.contains("Mug &amp; Tee"), "{html}");
        assert_eq!(super::amount(2500, "usd"), "25.00");
        assert_eq!(super::amount(-5, "EUR"), "-0.05");
        assert_eq!(super::amount(2500, "JPY"), "2500");
        assert_eq!(super::amount(1235, "KWD"), "1.235");
    }
}
