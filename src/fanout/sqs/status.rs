//! What `fanout --from-sqs` shows while it runs: `/status` (per queue and per target counts, the
//! queues' backlog and dead letters), SIGHUP's reload of the targets, and the small listener that
//! serves `/health` and `/status` (no events come in over HTTP in this mode).

use super::*;

impl Status {
    /// Applies the targets as the config and the secret files say now (SIGHUP): each running
    /// target takes its new URL, secret and route. The queues a relay polls are fixed at start:
    /// a target added, removed or moved to another queue is named as needing a restart, and an
    /// error keeps every current target; both said loudly.
    pub fn reload(&self, specs: crate::error::Result<Vec<TargetSpec>>, log: &Log) {
        let specs = match specs {
            Ok(s) => s,
            Err(e) => {
                log.line(format!(
                    "reload FAILED, keeping the current targets: {}",
                    e.message()
                ));
                return;
            }
        };
        if let Some(t) = specs.iter().find(|t| t.signer.is_none()) {
            log.line(format!(
                "reload FAILED, keeping the current targets: target {} has no secret to sign with",
                t.name
            ));
            return;
        }
        let (mut changed, mut restart) = (Vec::new(), Vec::new());
        for target in self.targets.iter() {
            let current = target.spec();
            match specs.iter().find(|s| s.name == current.name) {
                Some(new) if new.queue == current.queue => {
                    *target.spec.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new.clone());
                    changed.push(current.name.clone());
                }
                _ => restart.push(current.name.clone()),
            }
        }
        restart.extend(
            specs
                .iter()
                .filter(|s| !self.targets.iter().any(|t| t.spec().name == s.name))
                .map(|s| s.name.clone()),
        );
        log.line(format!(
            "reloaded: targets [{}] re-read",
            changed.join(", ")
        ));
        if !restart.is_empty() {
            log.line(format!(
                "reload: targets [{}] were added, removed or moved to another queue: under \
                 --from-sqs that needs a restart; running as before for them",
                restart.join(", ")
            ));
        }
    }

    /// The queue's backlog as SQS reports it, and how many messages wait in its dead-letter
    /// queue: that depth, not the relays' own `dead_lettered` counts, is the number to watch,
    /// because SQS moves a message there on the receive after its last failure, which no relay
    /// sees (and a relay killed holding it never reports it).
    async fn backlog(&self, q: &Queue) -> Result<Value, String> {
        let QueueInfo {
            visible,
            not_visible,
            dead_letter,
        } = self.sqs.info(&q.url).await?;
        // SQS answered: the consumer need not ask again.
        let _ = q.dead_letter.set(dead_letter.clone());
        let waiting = match &dead_letter {
            Some((arn, _)) => {
                let dlq = q.dead_letter_url(&self.sqs, arn).await?;
                Some(self.sqs.info(&dlq).await?.visible)
            }
            None => None,
        };
        Ok(json!({
            "visible": visible, "not_visible": not_visible,
            "dead_letter_queue": dead_letter.as_ref().map(|d| &d.0),
            "max_receive_count": dead_letter.map(|d| d.1),
            "dead_letter_messages": waiting,
        }))
    }

    /// Per queue and per target: the counts, and each queue's backlog as SQS reports it.
    pub async fn json(&self) -> Value {
        let mut queues = Vec::new();
        for q in &self.queues {
            let mut doc = q.counts.json();
            doc["url"] = json!(q.url);
            doc["backlog"] =
                match tokio::time::timeout(Duration::from_secs(5), self.backlog(q)).await {
                    Ok(Ok(backlog)) => backlog,
                    Ok(Err(e)) => json!({"error": e}),
                    Err(_) => json!({"error": "SQS did not answer GetQueueAttributes within 5 s"}),
                };
            // What the relay knows of the redrive policy: until SQS has answered, poison cannot
            // be dead-lettered, and /status says so.
            doc["dead_letter"] = match q.dead_letter.get() {
                Some(Some(_)) => json!("known"),
                Some(None) => json!("none"),
                None => json!("unknown"),
            };
            queues.push(doc);
        }
        let targets: Vec<Value> = self
            .targets
            .iter()
            .map(|t| {
                let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
                let spec = t.spec();
                json!({"name": spec.name, "url": spec.url, "route": spec.route.describe(),
                    "delivered": n(&t.delivered), "failed": n(&t.failed), "in_flight": n(&t.in_flight)})
            })
            .collect();
        json!({"mode": "sqs", "queues": queues, "targets": targets})
    }
}

/// The listener of `fanout --from-sqs`: `/health` and `/status` (no events come in over HTTP).
pub struct StatusServer {
    pub url: String,
    targets: Vec<Value>,
    queues: Vec<String>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

pub async fn serve_status(
    listen: &str,
    status: Arc<Status>,
    idle_timeout: Duration,
) -> crate::error::Result<StatusServer> {
    use crate::error::ResultExt;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .or_external(format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr().or_external("listener address")?;
    let targets = status
        .targets
        .iter()
        .map(|t| {
            let spec = t.spec();
            json!({"name": spec.name, "url": spec.url, "resigned": true, "queue": spec.queue})
        })
        .collect();
    let queues = status.queues.iter().map(|q| q.url.clone()).collect();
    let router = axum::Router::new()
        .route(
            "/health",
            axum::routing::get(|| async { axum::Json(json!({"ok": true})) }),
        )
        .route(
            "/status",
            axum::routing::get(move || {
                let status = status.clone();
                async move { axum::Json(status.json().await) }
            }),
        );
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(crate::server::serve(
        listener,
        router,
        stopped,
        idle_timeout,
    ));
    Ok(StatusServer {
        url: format!("http://{addr}"),
        targets,
        queues,
        stop,
        task,
    })
}

impl StatusServer {
    pub fn started(&self) -> crate::fanout::Started {
        crate::fanout::Started {
            doc: json!({
                "listen": self.url,
                "health": format!("{}/health", self.url),
                "status": format!("{}/status", self.url),
                "from_sqs": self.queues,
                "targets": self.targets,
            }),
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
