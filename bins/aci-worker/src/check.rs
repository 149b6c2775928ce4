//! `check`: the configuration and every connection, each said plainly.

use std::time::{SystemTime, UNIX_EPOCH};

use celery_amqp::{BrokerOptions, Publisher, PublisherConfig, TaskMessage};

use crate::config::Config;

/// One check's result.
struct Line {
    what: String,
    result: Result<String, String>,
}

/// Runs every check, printing one line each; `true` when all passed.
pub async fn check(config: &Config) -> bool {
    let mut lines = vec![Line { what: "configuration".into(), result: Ok("valid".into()) }];
    for notice in &config.notices {
        lines.push(Line { what: "configuration".into(), result: Ok(format!("note: {notice}")) });
    }
    let options = |url: &celery_amqp::BrokerUrl, role: &str| {
        let mut o = BrokerOptions::new(
            url.clone(),
            format!("aci-worker {} (check {role})", config.worker_name),
        );
        o.ca_file = config.broker_ca_file.clone();
        o
    };
    if let Some(broker) = &config.broker {
        let result = match celery_amqp::queue_status(&options(broker, "tasks"), &config.queue).await
        {
            Ok(s) => Ok(format!(
                "queue {} on {broker}: {} waiting, {} consumers",
                config.queue, s.messages, s.consumers
            )),
            // The site declares it with its first task; so does the worker when it starts.
            Err(e) if e.is_not_found() => Ok(format!(
                "connected to {broker}; queue {} does not exist yet (serve declares it, with x-max-priority 2 as the site does)",
                config.queue
            )),
            Err(e) => Err(format!(
                "{}. Is BROKER_URL right (host, user, password, vhost)?",
                celery_amqp::error_chain(&e)
            )),
        };
        lines.push(Line { what: "task broker".into(), result });
    }
    if let Some(main) = &config.main_broker {
        // Publish to the updates exchange with a routing key bound to nothing: the
        // broker checks the write permission and drops the message.
        let nonce = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let mut probe = PublisherConfig::to_queue(options(main, "updates"), &config.updates_queue);
        probe.queue = None;
        probe.routing_key = format!("aci-worker-check-{nonce}");
        probe.deadline = std::time::Duration::from_secs(15);
        let publisher = Publisher::new(probe);
        let result = match publisher
            .publish(&TaskMessage::new("aci_worker.check", vec![]), &[])
            .await
        {
            Ok(()) | Err(celery_amqp::Error::Unroutable { .. }) => {
                Ok(format!("may publish to exchange {} on {main}", config.updates_queue))
            }
            // No exchange yet: the site's consumer of the updates declares it, and so
            // does the worker with its first update. Write permission shows then.
            Err(e) if e.is_not_found() => Ok(format!(
                "connected to {main}; exchange {} does not exist yet (the worker declares it with its first update, where the user may)",
                config.updates_queue
            )),
            Err(e) => Err(format!(
                "{}. The main broker user needs write permission on {} of the main vhost (MAIN_BROKER_URL, MAIN_BROKER_LOGIN, MAIN_BROKER_PASS)",
                celery_amqp::error_chain(&e),
                config.updates_queue
            )),
        };
        publisher.close().await;
        lines.push(Line { what: "main broker".into(), result });
    }
    if let Some(azure) = &config.azure {
        let result = match crate::backends::arm_client(azure) {
            Err(e) => Err(format!("{e:#}")),
            Ok(arm) => arm
                .check_resource_group()
                .await
                .map(|()| format!("token accepted; resource group {} readable", azure.resource_group))
                .map_err(|e| {
                    format!(
                        "{e}. Check the service principal in AZURE_AUTH_LOCATION (or the managed identity), its role on resource group {}, and AZURE_RESOURCE_GROUP",
                        azure.resource_group
                    )
                }),
        };
        lines.push(Line { what: "Azure Resource Manager".into(), result });
    }
    if let Some(afs) = &config.afs {
        let result = if afs.mounted {
            let probe = config.work_root.join(format!(".aci-worker-check-{}", std::process::id()));
            std::fs::write(&probe, b"check")
                .and_then(|()| std::fs::remove_file(&probe))
                .map(|()| format!("mounted share writable at {}", config.work_root.display()))
                .map_err(|e| {
                    format!(
                        "{}: {e}. Is AFS_SHARE mounted at SUBMISSION_TEMP_DIR?",
                        config.work_root.display()
                    )
                })
        } else {
            match crate::backends::stager(config) {
                Err(e) => Err(format!("{e:#}")),
                Ok(None) => Err("no Azure Files settings".into()),
                Ok(Some(stager)) => stager
                    .stale_shares("aci-worker-check", u64::MAX)
                    .await
                    .map(|_| format!("storage account {} answers with this key", afs.account))
                    .map_err(|e| {
                        format!(
                            "{}. Check AFS_NAME, AFS_KEY and AFS_ENDPOINT",
                            compute::error_chain(&e)
                        )
                    }),
            }
        };
        lines.push(Line { what: "Azure Files".into(), result });
    }
    if !(config.aci_pred && config.aci_score) {
        let result = match crate::backends::docker(config).await {
            Ok(docker) => docker
                .ping()
                .await
                .map(|()| "engine answers".to_owned())
                .map_err(|e| compute::error_chain(&e)),
            Err(e) => Err(format!("{e:#}")),
        };
        lines.push(Line { what: "Docker".into(), result });
    }
    let mut ok = true;
    for line in &lines {
        match &line.result {
            Ok(text) => println!("ok    {}: {text}", line.what),
            Err(text) => {
                ok = false;
                println!("FAIL  {}: {text}", line.what);
            }
        }
    }
    ok
}
