//! The support desk in a real browser: headless Chromium driven through ChromeDriver
//! (Debian's `chromium` and `chromium-driver`, which `.ci/run` installs). A desk user logs in,
//! finds the ticket an API call just opened, copies a field, resolves it with the amount
//! credited, and the operation completes through the API; a wrong key is refused and another
//! tenant's ticket is not shown. Screenshots of the queue and of the ticket (also at 320 px)
//! go to `target/desk-screenshots/`.

mod common;

use certgate_core::config::SecretRef;
use certgate_server::config::DeskUserConfig;
use common::{digicert_cancel, digicert_order, order, spawn, tenant, Setup, KEY};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use thirtyfour::prelude::*;
use wiremock::MockServer;

const ALICE: &str = "alice-browser-key-0123456789";
const OTHER: &str = "browser-other-tenant-key";

/// ChromeDriver on a free port, stopped when dropped.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

async fn start_driver(chromedriver: &Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Driver(child, port)
}

/// The first element `by` finds, waiting for it (a page that is still loading).
async fn el(browser: &WebDriver, by: By) -> WebElement {
    browser.query(by).first().await.unwrap()
}

/// Clicks the first element `by` finds.
async fn click(browser: &WebDriver, by: By) {
    el(browser, by).await.click().await.unwrap();
}

/// Types `text` into the first element `by` finds.
async fn type_into(browser: &WebDriver, by: By, text: &str) {
    el(browser, by).await.send_keys(text).await.unwrap();
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/desk-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_desk_user_resolves_a_refund_ticket_in_a_real_browser() {
    let (Some(chromedriver), Some(chromium)) = (
        find(&["/usr/bin/chromedriver"]),
        find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]),
    ) else {
        eprintln!("SKIPPED: the desk's browser test needs chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)");
        return;
    };
    // A DigiCert refund of an account-balance order: a cancel, then a refund ticket.
    let mock = MockServer::start().await;
    digicert_order(&mock, "1101", "pending", 1).await;
    digicert_cancel(&mock, "1101", 1).await;
    std::env::set_var("CERTGATE_TEST_DESK_BROWSER_ALICE", ALICE);
    let app = spawn(Setup {
        providers_toml: common::providers_toml_at(&mock.uri()),
        tenants: vec![tenant("browser-other", OTHER, None)],
        desk_users: vec![DeskUserConfig {
            name: "alice".into(),
            tenants: vec!["default".into()],
            key: SecretRef::parse("${CERTGATE_TEST_DESK_BROWSER_ALICE}").unwrap(),
        }],
        ..Setup::default()
    })
    .await;
    let body = json!({
        "provider": "digicert", "intent": "refund", "note": "customer asked",
        "order": order(json!({"id": "ord-browser", "state": "pending", "issued_at": null,
            "supplier_order_id": "1101", "charged_to": "account_balance", "voucher": null}))
    });
    let (status, op) = app.post_operation(KEY, "browser-1", &body).await;
    assert_eq!(status, 202, "{op}");
    let op_id = op["id"].as_str().unwrap().to_owned();
    let waiting = app.wait_for(&op_id, &["manual_ticket_open"]).await;
    let ticket = waiting["steps"][1]["ticket_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another tenant's ticket, which Alice must not see.
    let theirs = json!({"provider": "trustwave", "intent": "cancel",
        "order": order(json!({"id": "ord-theirs", "state": "pending", "issued_at": null}))});
    let (_, other_op) = app.post_operation(OTHER, "browser-2", &theirs).await;
    let other = app
        .wait_for_as(
            OTHER,
            other_op["id"].as_str().unwrap(),
            &["manual_ticket_open"],
        )
        .await;
    let other_ticket = other["steps"][0]["ticket_id"].as_str().unwrap().to_owned();

    let driver = start_driver(&chromedriver).await;
    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary(chromium.to_str().unwrap()).unwrap();
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
    ] {
        caps.add_arg(arg).unwrap();
    }
    let browser = WebDriver::new(format!("http://127.0.0.1:{}", driver.1), caps)
        .await
        .unwrap();
    browser.set_window_rect(0, 0, 1100, 1000).await.unwrap();
    let shots = screenshots();

    // A wrong key is refused.
    browser.goto(format!("{}/desk", app.base)).await.unwrap();
    assert!(browser
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/desk/login"));
    type_into(&browser, By::Id("key"), "wrong-key").await;
    click(&browser, By::Css("button[type=submit]")).await;
    let alert = el(&browser, By::Css("[role=alert]")).await;
    assert!(alert.text().await.unwrap().contains("not a desk user"));

    // Logged in: the queue shows the ticket the API call opened, and not the other tenant's.
    type_into(&browser, By::Id("key"), ALICE).await;
    click(&browser, By::Css("button[type=submit]")).await;
    el(&browser, By::XPath("//h1[text()='Tickets']")).await;
    let queue = browser.source().await.unwrap();
    assert!(queue.contains("ord-browser"), "{queue}");
    assert!(!queue.contains("ord-theirs"));
    browser.screenshot(&shots.join("queue.png")).await.unwrap();
    click(&browser, By::PartialLinkText("ord-browser")).await;
    el(
        &browser,
        By::XPath("//h1[starts-with(., 'Refund request')]"),
    )
    .await;
    assert!(browser
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with(&format!("/desk/tickets/{ticket}")));

    // Copy the supplier order id: the button says so and the page announces it.
    let copy = browser
        .find(By::Css("button[data-copy='1101']"))
        .await
        .unwrap();
    copy.click().await.unwrap();
    let status = browser.find(By::Id("copied")).await.unwrap();
    assert_eq!(status.text().await.unwrap(), "1101 copied");
    // The button says so once the clipboard answered (for a moment).
    el(
        &browser,
        By::XPath("//button[@data-copy='1101' and text()='Copied']"),
    )
    .await;
    browser.screenshot(&shots.join("ticket.png")).await.unwrap();
    browser.set_window_rect(0, 0, 320, 900).await.unwrap();
    browser
        .screenshot(&shots.join("ticket-320px.png"))
        .await
        .unwrap();
    let overflow: bool = browser
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth + 1;",
            vec![],
        )
        .await
        .unwrap()
        .convert()
        .unwrap();
    assert!(!overflow, "the ticket page scrolls sideways at 320 px");
    browser.set_window_rect(0, 0, 1100, 1000).await.unwrap();

    // Resolve it done, with what was credited.
    click(&browser, By::Css("input[name=outcome][value=done]")).await;
    type_into(&browser, By::Id("note"), "credit note received").await;
    type_into(&browser, By::Id("credited_amount"), "120.00").await;
    type_into(&browser, By::Id("credited_reference"), "CR-77").await;
    click(&browser, By::XPath("//button[text()='Resolve']")).await;
    let resolved = el(&browser, By::XPath("//p[starts-with(., 'Resolved:')]")).await;
    assert_eq!(
        resolved.text().await.unwrap(),
        "Resolved: credit note received"
    );

    // The operation completed through the API, its refund credited.
    let done = app.wait_for(&op_id, &["completed"]).await;
    assert_eq!(done["refund"]["status"], "credited", "{done:#}");
    assert_eq!(done["refund"]["credited"]["reference"], "CR-77");
    assert_eq!(done["refund"]["mismatch"], false);

    // Another tenant's ticket is not there for her.
    browser
        .goto(format!("{}/desk/tickets/{other_ticket}", app.base))
        .await
        .unwrap();
    el(&browser, By::XPath("//h1[text()='No such ticket']")).await;
    browser.quit().await.unwrap();
    drop(driver);
    app.stop().await;
    mock.verify().await;
}
