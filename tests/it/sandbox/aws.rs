//! `--secrets-from-aws` against moto_server: secrets re-read when the ECS service redeploys.

use super::*;

fn moto_ecs(moto: &Moto) -> aws_sdk_ecs::Client {
    use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
    let conf = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .build();
    aws_sdk_ecs::Client::from_conf(conf)
}

fn moto_secrets(moto: &Moto) -> aws_sdk_secretsmanager::Client {
    use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
    let conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .build();
    aws_sdk_secretsmanager::Client::from_conf(conf)
}

/// The staging service of CONTRACT.md section 4 in moto.
async fn staging_service(ecs: &aws_sdk_ecs::Client) {
    use aws_sdk_ecs::types::ContainerDefinition;
    ecs.create_cluster()
        .cluster_name("proofwork-staging-cluster")
        .send()
        .await
        .unwrap();
    ecs.register_task_definition()
        .family("proofwork-staging-api")
        .container_definitions(
            ContainerDefinition::builder()
                .name("api")
                .image("proofwork/api:1")
                .memory(256)
                .build(),
        )
        .send()
        .await
        .unwrap();
    ecs.create_service()
        .cluster("proofwork-staging-cluster")
        .service_name("proofwork-staging-api")
        .task_definition("proofwork-staging-api")
        .desired_count(1)
        .send()
        .await
        .unwrap();
}

async fn redeploy(ecs: &aws_sdk_ecs::Client) {
    ecs.update_service()
        .cluster("proofwork-staging-cluster")
        .service("proofwork-staging-api")
        .force_new_deployment(true)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_from_aws_are_reread_when_the_service_redeploys() {
    const KEY_ONE: &str = "sk_test_fromAWSfirst0123456789";
    const KEY_TWO: &str = "sk_test_fromAWSsecond012345678";
    let moto = Moto::start();
    let ecs = moto_ecs(&moto);
    let sm = moto_secrets(&moto);
    staging_service(&ecs).await;
    sm.create_secret()
        .name("proofwork-staging/STRIPE_SECRET_KEY")
        .secret_string(KEY_ONE)
        .send()
        .await
        .unwrap();

    let mut cmd = bin();
    cmd.envs(moto.env());
    let sb = Sandbox::start_with(
        cmd,
        &[
            "--secrets-from-aws",
            "--env",
            "staging",
            "--aws-poll",
            "100ms",
        ],
    );
    let app = App::new(&sb.app);
    assert!(accepts_key(&sb, KEY_ONE).await);
    assert!(
        sb.info["stripe_key_file"].is_null(),
        "the key came from AWS"
    );
    // No webhook secret in AWS yet: a generated one until a redeploy brings the real one.
    assert!(accepts_secret(&app, &secret_from_start_line(&sb)).await);
    assert!(!accepts_secret(&app, SECRET_A).await);

    sm.create_secret()
        .name("proofwork-staging/STRIPE_WEBHOOK_SECRET")
        .secret_string(SECRET_A)
        .send()
        .await
        .unwrap();
    redeploy(&ecs).await;
    eventually(
        "the app to take SECRET_A after a redeploy",
        Duration::from_secs(20),
        || async { accepts_secret(&app, SECRET_A).await.then_some(()) },
    )
    .await;

    sm.put_secret_value()
        .secret_id("proofwork-staging/STRIPE_WEBHOOK_SECRET")
        .secret_string(SECRET_B)
        .send()
        .await
        .unwrap();
    sm.put_secret_value()
        .secret_id("proofwork-staging/STRIPE_SECRET_KEY")
        .secret_string(KEY_TWO)
        .send()
        .await
        .unwrap();
    // Several polls without a redeploy: the running "task" keeps its secrets.
    let checks = || async {
        let (_, v) = app.get("/health", None).await;
        v["deployment_checks"].as_u64().unwrap()
    };
    let before = checks().await;
    eventually(
        "three more deployment checks",
        Duration::from_secs(20),
        || async { (checks().await >= before + 3).then_some(()) },
    )
    .await;
    assert!(accepts_secret(&app, SECRET_A).await);
    assert!(!accepts_secret(&app, SECRET_B).await);
    assert!(accepts_key(&sb, KEY_ONE).await);

    redeploy(&ecs).await;
    eventually(
        "the app to take SECRET_B after a redeploy",
        Duration::from_secs(20),
        || async { accepts_secret(&app, SECRET_B).await.then_some(()) },
    )
    .await;
    assert!(!accepts_secret(&app, SECRET_A).await);
    assert!(accepts_key(&sb, KEY_TWO).await);
    assert!(!accepts_key(&sb, KEY_ONE).await);
}

#[test]
fn secrets_from_aws_unreachable_exits_3() {
    let o = bin()
        .args(["sandbox", "--secrets-from-aws", "--env", "staging"])
        .env("AWS_ENDPOINT_URL", closed_url())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap();
    assert_code(&o, 3);
    assert!(stderr(&o).contains("Secrets Manager"), "{}", stderr(&o));
    let o = run(&["sandbox", "--secrets-from-aws"]);
    assert_code(&o, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_deployed_after_start_brings_its_secrets() {
    let moto = Moto::start();
    let mut cmd = bin();
    cmd.envs(moto.env());
    // Nothing in AWS yet: the sandbox starts anyway, on generated secrets.
    let sb = Sandbox::start_with(
        cmd,
        &[
            "--secrets-from-aws",
            "--env",
            "staging",
            "--aws-poll",
            "100ms",
        ],
    );
    let app = App::new(&sb.app);
    assert!(accepts_secret(&app, &secret_from_start_line(&sb)).await);
    let sm = moto_secrets(&moto);
    sm.create_secret()
        .name("proofwork-staging/STRIPE_WEBHOOK_SECRET")
        .secret_string(format!("{SECRET_A},{SECRET_B}"))
        .send()
        .await
        .unwrap();
    staging_service(&moto_ecs(&moto)).await;
    eventually(
        "the first deployment to bring both secrets",
        Duration::from_secs(20),
        || async { accepts_secret(&app, SECRET_A).await.then_some(()) },
    )
    .await;
    assert!(
        accepts_secret(&app, SECRET_B).await,
        "comma-separated secrets"
    );
}
