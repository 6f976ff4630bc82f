//! The moto server and the resources the template creates.

use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::json;

use crate::config::{AwsClients, AwsConfig};
/// A moto server on 127.0.0.1, stopped when the test process exits.
#[derive(Debug)]
pub struct Moto {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    _watchdog: Child,
}

fn moto_binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("HOOKFLOW_MOTO_SERVER") {
        return Some(PathBuf::from(path));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
    if venv.exists() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("moto_server"))
            .find(|p| p.exists())
    })
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Moto {
    fn start() -> Result<Self, String> {
        let binary = moto_binary().ok_or(
            "moto_server not found: run scripts/aws-tools (it installs moto into .venv), \
             or set HOOKFLOW_MOTO_SERVER",
        )?;
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        // A shell watchdog stops moto when this test process exits, however it exits.
        let script = r#""$MOTO" -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 & m=$!
while kill -0 "$PARENT" 2>/dev/null && kill -0 "$m" 2>/dev/null; do sleep 0.3; done
kill "$m" 2>/dev/null"#;
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("MOTO", &binary)
            .env("PORT", port.to_string())
            .env("PARENT", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
                use std::io::Write;
                let _ = stream.write_all(b"GET /moto-api/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 12];
                if stream.read(&mut buf).is_ok_and(|n| n > 0) {
                    break;
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "moto_server on port {port} did not start within 60 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            _watchdog: watchdog,
        })
    }

    /// The process-wide moto server, started on first use.
    ///
    /// # Panics
    /// If moto is not installed or does not start: the message says what to run.
    pub fn shared() -> &'static Self {
        static MOTO: OnceLock<Result<Moto, String>> = OnceLock::new();
        match MOTO.get_or_init(Self::start) {
            Ok(moto) => moto,
            Err(err) => panic!("{err}"),
        }
    }

    /// SDK configuration for this endpoint (region us-east-1, dummy credentials).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test",
                "test",
                None,
                None,
                "hookflow-tests",
            ))
            .load()
            .await
    }
}

/// Creates what `template.yaml` creates for these functions: the table with its
/// indexes, the router and function queues each with a DLQ, and the scheduler group.
///
/// # Panics
/// On any AWS error (test setup).
pub async fn create_resources(
    clients: &AwsClients,
    config: &AwsConfig,
    functions: &[String],
    max_receives: u32,
) {
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    // As template.yaml declares them (`tests/e2e.rs` checks).
    let index = |name: &str, keys: &str, projection: ProjectionType| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(&format!("{keys}pk"), KeyType::Hash))
            .key_schema(key(&format!("{keys}sk"), KeyType::Range))
            .projection(Projection::builder().projection_type(projection).build())
            .build()
            .unwrap()
    };
    clients
        .dynamodb
        .create_table()
        .table_name(&config.table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .attribute_definitions(attr("gsi1pk"))
        .attribute_definitions(attr("gsi1sk"))
        .attribute_definitions(attr("gsi2pk"))
        .attribute_definitions(attr("gsi2sk"))
        .global_secondary_indexes(index(
            crate::FUNCTION_INDEX,
            "gsi1",
            ProjectionType::KeysOnly,
        ))
        .global_secondary_indexes(index(crate::STATUS_INDEX, "gsi2", ProjectionType::All))
        .send()
        .await
        .expect("create table");
    let mut names = vec![format!("{}-router", config.queue_prefix)];
    names.extend(
        functions
            .iter()
            .map(|f| format!("{}-{f}", config.queue_prefix)),
    );
    for name in names {
        let dlq = clients
            .sqs
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .expect("dlq");
        let dlq_arn = clients
            .sqs
            .get_queue_attributes()
            .queue_url(dlq.queue_url().unwrap())
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("dlq arn")
            .attributes()
            .unwrap()[&QueueAttributeName::QueueArn]
            .clone();
        let redrive =
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}).to_string();
        clients
            .sqs
            .create_queue()
            .queue_name(&name)
            .attributes(QueueAttributeName::VisibilityTimeout, "1")
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .send()
            .await
            .expect("queue");
    }
    clients
        .scheduler
        .create_schedule_group()
        .name(&config.scheduler_group)
        .send()
        .await
        .expect("schedule group");
    clients
        .s3
        .create_bucket()
        .bucket(&config.bucket)
        .send()
        .await
        .expect("bucket");
}
