//! The three services as three processes against the same databases:
//! `vnext init` (one-shot), `vnext app` and `vnext execution`. A sample payment
//! whose confirmation window expires (a timer fired by the execution service
//! through the app's internal trigger) and one whose capture calls the merchant
//! (an HTTP task the app sends to the execution service) run start to finish.

use crate::api_support;

use std::time::Duration;

use api_support::{Prefix, Running, pay_by_timer_and_by_http_task, terminate, wait_for_line};

/// A port that was free a moment ago (both services must know each other's URL
/// before either starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_app_and_execution_as_three_processes() {
    let prefix = Prefix::new().await;
    let init = prefix.command(&["init"]).output().expect("run vnext init");
    assert!(init.status.success(), "vnext init: {}\n{}", String::from_utf8_lossy(&init.stdout), String::from_utf8_lossy(&init.stderr));

    let (app_port, exec_port, internal_port) = (free_port(), free_port(), free_port());
    let app_url = format!("http://127.0.0.1:{app_port}");
    let exec_url = format!("http://127.0.0.1:{exec_port}");
    let with_urls = |args: &[&str]| {
        let mut cmd = prefix.command(args);
        cmd.env("VNEXT_APP__URL", &app_url).env("VNEXT_EXECUTION__URL", &exec_url).env("VNEXT_EGRESS__ALLOW_LOOPBACK", "true");
        cmd.env("VNEXT_APP__INTERNAL_LISTEN", format!("127.0.0.1:{internal_port}"))
            .env("VNEXT_APP__INTERNAL_URL", format!("http://127.0.0.1:{internal_port}"));
        cmd
    };
    let mut app = Running(with_urls(&["app", "--listen", &format!("127.0.0.1:{app_port}")]).spawn().expect("spawn app"));
    let mut execution =
        Running(with_urls(&["execution", "--listen", &format!("127.0.0.1:{exec_port}")]).spawn().expect("spawn execution"));
    wait_for_line(&mut app.0, "listening on", Duration::from_secs(60));
    wait_for_line(&mut execution.0, "invoke API on", Duration::from_secs(60));

    let client = reqwest::Client::new();
    pay_by_timer_and_by_http_task(&client, &app_url).await;

    assert!(terminate(&mut app.0).success());
    assert!(terminate(&mut execution.0).success());
}
