//! `--automate`: pays a Checkout page through WebDriver (fantoccini). Starts `chromedriver` (or
//! `geckodriver`) on a free port unless a WebDriver URL is given, fills the form by trying lists
//! of selectors in the page and in every frame (Stripe puts card fields in iframes and renames
//! things), clicks pay and waits for the success redirect or message. On failure it saves a
//! screenshot next to the receipt.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::config::vars;
use crate::error::{Error, Result};
use crate::printer::Printer;
use crate::secret;

pub const TEST_CARD: &str = "4242424242424242";
pub const DECLINED_CARD: &str = "4000000000000002";

/// What to pay with and where.
#[derive(Debug, Clone)]
pub struct PayOptions {
    pub checkout_url: String,
    /// The success URL given at checkout creation: reaching it means paid.
    pub success_url: String,
    /// `None`: start chromedriver (or geckodriver) on a free port.
    pub webdriver_url: Option<String>,
    pub headed: bool,
    pub email: String,
    pub card_number: String,
    pub expiry: String,
    pub cvc: String,
    pub name: String,
    pub postal_code: String,
    /// Where a failure screenshot goes (`<dir>/<stem>-automate-failure.png`).
    pub screenshot_dir: PathBuf,
    pub screenshot_stem: String,
    /// The whole payment, from opening the page to the success redirect.
    pub timeout: Duration,
}

impl PayOptions {
    /// Paying a receipt's checkout: its success URL and buyer email, screenshots next to it.
    pub fn for_receipt(receipt: &super::receipt::Receipt, receipt_path: &Path) -> Self {
        let success_url = receipt
            .success_url
            .clone()
            .unwrap_or_else(|| super::default_success_url(&receipt.base_url));
        let mut o = Self::new(&receipt.checkout_url, &success_url, &receipt.buyer_email);
        o.screenshot_dir = receipt_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        o.screenshot_stem = receipt_path
            .file_stem()
            .map_or("checkout".into(), |s| s.to_string_lossy().into_owned());
        o
    }

    pub fn new(checkout_url: &str, success_url: &str, email: &str) -> Self {
        Self {
            checkout_url: checkout_url.to_owned(),
            success_url: success_url.to_owned(),
            webdriver_url: None,
            headed: false,
            email: email.to_owned(),
            card_number: TEST_CARD.to_owned(),
            expiry: "12 / 34".to_owned(),
            cvc: "123".to_owned(),
            name: "Stripe Ops Smoke".to_owned(),
            postal_code: "94107".to_owned(),
            screenshot_dir: PathBuf::from(super::receipt::DEFAULT_DIR),
            screenshot_stem: "checkout".to_owned(),
            timeout: Duration::from_secs(90),
        }
    }
}

const EMAIL: &[&str] = &[
    "input[name='email']",
    "input#email",
    "input[type='email']",
    "input[autocomplete='email']",
];
const CARD_NUMBER: &[&str] = &[
    "input[name='cardNumber']",
    "input[name='cardnumber']",
    "input[autocomplete='cc-number']",
    "input#cardNumber",
    "input[data-elements-stable-field-name='cardNumber']",
];
const EXPIRY: &[&str] = &[
    "input[name='cardExpiry']",
    "input[name='exp-date']",
    "input[autocomplete='cc-exp']",
    "input#cardExpiry",
];
const CVC: &[&str] = &[
    "input[name='cardCvc']",
    "input[name='cvc']",
    "input[autocomplete='cc-csc']",
    "input#cardCvc",
];
const NAME: &[&str] = &[
    "input[name='billingName']",
    "input[autocomplete='cc-name']",
    "input#billingName",
];
const POSTAL: &[&str] = &[
    "input[name='billingPostalCode']",
    "input[name='postal']",
    "input[autocomplete='postal-code']",
];
/// When Checkout offers several payment methods, the card one.
const CARD_METHOD: &[&str] = &[
    "[data-testid='card-accordion-item-button']",
    "button[value='card']",
    "input[type='radio'][value='card']",
    "#payment-method-accordion-item-title-card",
];
const PAY: &[&str] = &[
    ".SubmitButton",
    "button[data-testid='hosted-payment-submit-button']",
    "button[type='submit']",
];
const SUCCESS_TEXT: &[&str] = &[
    "payment successful",
    "payment succeeded",
    "thanks for your payment",
];
const DECLINE_TEXT: &[&str] = &["declined"];
/// Where Checkout shows payment errors.
const ALERTS: &str = "[role='alert'], .ErrorText, .FieldError, #payment-error";
/// How deep to search nested frames.
const FRAME_DEPTH: u8 = 3;

/// Pays the checkout page. Errors are `Exit::Failed` (the page did not let us pay) or
/// `Exit::External` (no WebDriver); a screenshot is saved when the page was reached.
pub async fn pay(o: &PayOptions) -> Result<()> {
    let driver = match &o.webdriver_url {
        Some(url) => Driver::external(url),
        None => Driver::start().await?,
    };
    let client = ClientBuilder::rustls()
        .map_err(|e| Error::external(format!("WebDriver TLS setup failed: {e}")))?
        .capabilities(capabilities(&driver, o.headed)?)
        .connect(driver.url())
        .await
        .map_err(|e| {
            Error::external(format!(
                "cannot open a browser session at {}: {}",
                driver.url(),
                crate::error::chain(&e)
            ))
        })?;
    let result = tokio::time::timeout(o.timeout, fill_and_pay(&client, o))
        .await
        .unwrap_or_else(|_| {
            Err(Error::failed(format!(
                "the payment did not complete within {} s",
                o.timeout.as_secs()
            )))
        });
    let result = match result {
        Ok(()) => Ok(()),
        Err(e) => Err(with_screenshot(&client, o, e).await),
    };
    let _ = client.close().await;
    drop(driver);
    result
}

async fn with_screenshot(client: &Client, o: &PayOptions, e: Error) -> Error {
    let path = o
        .screenshot_dir
        .join(format!("{}-automate-failure.png", o.screenshot_stem));
    let saved = async {
        let png = client.screenshot().await.ok()?;
        secret::write_private(&path, &png).ok()
    }
    .await;
    match saved {
        Some(()) => Error::new(
            e.exit,
            format!("{} (screenshot {})", e.message(), path.display()),
        ),
        None => e,
    }
}

async fn fill_and_pay(c: &Client, o: &PayOptions) -> Result<()> {
    c.goto(&o.checkout_url)
        .await
        .map_err(|e| Error::failed(format!("cannot open the checkout page: {e}")))?;
    wait_until_found(c, CARD_NUMBER, CARD_METHOD, Duration::from_secs(20)).await?;
    if !act(c, CARD_NUMBER, &Action::Probe).await? {
        act(c, CARD_METHOD, &Action::Click).await?;
    }
    act(c, EMAIL, &Action::Type(o.email.clone())).await?;
    let required = [
        (CARD_NUMBER, &o.card_number, "card number"),
        (EXPIRY, &o.expiry, "expiry"),
        (CVC, &o.cvc, "CVC"),
    ];
    for (selectors, value, what) in required {
        if !act(c, selectors, &Action::Type(value.clone())).await? {
            return Err(Error::failed(format!(
                "no {what} field found on the checkout page"
            )));
        }
    }
    act(c, NAME, &Action::Type(o.name.clone())).await?;
    act(c, POSTAL, &Action::Type(o.postal_code.clone())).await?;
    if !act(c, PAY, &Action::Click).await? {
        return Err(Error::failed("no pay button found on the checkout page"));
    }
    wait_for_success(c, &o.success_url).await
}

/// Waits until the card field (or a card-method chooser) is on the page.
async fn wait_until_found(c: &Client, a: &[&str], b: &[&str], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if act(c, a, &Action::Probe).await? || act(c, b, &Action::Probe).await? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::failed(
                "the checkout page showed no card field (a bot check?)",
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_for_success(c: &Client, success_url: &str) -> Result<()> {
    let prefix = success_prefix(success_url);
    loop {
        let url = c.current_url().await.map_err(cmd_error)?;
        if url.as_str().starts_with(&prefix) {
            return Ok(());
        }
        let page = c.source().await.map_err(cmd_error)?.to_lowercase();
        if SUCCESS_TEXT.iter().any(|t| page.contains(t)) {
            return Ok(());
        }
        if let Some(alert) = shown_alert(c).await
            && DECLINE_TEXT
                .iter()
                .any(|t| alert.to_lowercase().contains(t))
        {
            return Err(Error::failed(format!("the checkout page says: {alert}")));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The text of a displayed error message on the page, if any.
async fn shown_alert(c: &Client) -> Option<String> {
    for el in c.find_all(Locator::Css(ALERTS)).await.ok()? {
        if el.is_displayed().await.unwrap_or(false) {
            let text = el.text().await.unwrap_or_default();
            if !text.trim().is_empty() {
                return Some(text.trim().to_owned());
            }
        }
    }
    None
}

/// The part of the success URL before its query (which carries the session id placeholder).
fn success_prefix(success_url: &str) -> String {
    success_url
        .split(['?', '#'])
        .next()
        .unwrap_or(success_url)
        .to_owned()
}

enum Action {
    Probe,
    Click,
    Type(String),
}

/// Finds the first displayed element matching any selector, in the page or any nested frame,
/// and acts on it. Returns whether one was found. Starts in the top frame and returns to it
/// (every frame entered is left again).
async fn act(c: &Client, selectors: &[&str], action: &Action) -> Result<bool> {
    act_in_frame(c, selectors, action, FRAME_DEPTH).await
}

fn act_in_frame<'a>(
    c: &'a Client,
    selectors: &'a [&'a str],
    action: &'a Action,
    depth: u8,
) -> Pin<Box<dyn Future<Output = Result<bool>> + Send + 'a>> {
    Box::pin(async move {
        for sel in selectors {
            for el in c.find_all(Locator::Css(sel)).await.map_err(cmd_error)? {
                if !el.is_displayed().await.unwrap_or(false) {
                    continue;
                }
                match action {
                    Action::Probe => {}
                    Action::Click => el.click().await.map_err(cmd_error)?,
                    Action::Type(text) => {
                        el.clear().await.map_err(cmd_error)?;
                        el.send_keys(text).await.map_err(cmd_error)?;
                    }
                }
                return Ok(true);
            }
        }
        if depth == 0 {
            return Ok(false);
        }
        let frames = c
            .find_all(Locator::Css("iframe, frame"))
            .await
            .map_err(cmd_error)?;
        for frame in frames {
            if frame.enter_frame().await.is_err() {
                continue;
            }
            let found = act_in_frame(c, selectors, action, depth - 1).await;
            c.enter_parent_frame().await.map_err(cmd_error)?;
            if found? {
                return Ok(true);
            }
        }
        Ok(false)
    })
}

fn cmd_error(e: fantoccini::error::CmdError) -> Error {
    Error::failed(format!("browser automation: {e}"))
}

/// A WebDriver server: given (`started` is `None`), or started here and stopped on drop.
struct Driver {
    url: String,
    started: Option<Started>,
}

/// A WebDriver this process started. It runs in a process group of its own, with the browser
/// it starts: when it goes (success, error, a stop request, a panic unwinding), the whole group
/// is killed, so no Chromium, zygote or crash handler outlives the smoke.
struct Started {
    kind: DriverKind,
    child: tokio::process::Child,
    profile: tempfile::TempDir,
}

impl Drop for Started {
    fn drop(&mut self) {
        crate::process::kill_group(self.child.id());
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum DriverKind {
    Chrome,
    Firefox,
}

impl Driver {
    fn external(url: &str) -> Driver {
        Driver {
            url: url.to_owned(),
            started: None,
        }
    }

    fn url(&self) -> &str {
        &self.url
    }

    fn profile(&self) -> Option<&Path> {
        self.started.as_ref().map(|s| s.profile.path())
    }

    async fn start() -> Result<Driver> {
        let (exe, kind) = find_driver().ok_or_else(|| {
            Error::external(
                "no WebDriver: install chromedriver (or geckodriver), or give --webdriver-url",
            )
        })?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| Error::external(format!("no free port for the WebDriver: {e}")))?
            .port();
        let mut cmd = tokio::process::Command::new(&exe);
        match kind {
            DriverKind::Chrome => cmd.arg(format!("--port={port}")),
            DriverKind::Firefox => cmd.args(["--port", &port.to_string()]),
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::external(format!("cannot start {}: {e}", exe.display())))?;
        let url = format!("http://127.0.0.1:{port}");
        wait_for_port(port, Duration::from_secs(20))
            .await
            .map_err(|()| Error::external(format!("{} did not start listening", exe.display())))?;
        let profile = tempfile::tempdir()
            .map_err(|e| Error::external(format!("cannot create a browser profile: {e}")))?;
        Ok(Driver {
            url,
            started: Some(Started {
                kind,
                child,
                profile,
            }),
        })
    }
}

async fn wait_for_port(port: u16, timeout: Duration) -> std::result::Result<(), ()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(())
}

/// Whether `pay` can start a WebDriver by itself.
pub fn webdriver_available() -> bool {
    find_driver().is_some()
}

/// `STRIPE_OPS_CHROMEDRIVER`, else `chromedriver` on PATH, else `geckodriver` on PATH.
fn find_driver() -> Option<(PathBuf, DriverKind)> {
    if let Some(p) = vars::STRIPE_OPS_CHROMEDRIVER.os().filter(|v| !v.is_empty()) {
        return Some((PathBuf::from(p), DriverKind::Chrome));
    }
    on_path("chromedriver")
        .map(|p| (p, DriverKind::Chrome))
        .or_else(|| on_path("geckodriver").map(|p| (p, DriverKind::Firefox)))
}

fn on_path(name: &str) -> Option<PathBuf> {
    vars::PATH.os().and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// `STRIPE_OPS_CHROMIUM`, else `chromium` on PATH; `None` lets chromedriver find Chrome itself.
fn chromium_binary() -> Option<PathBuf> {
    vars::STRIPE_OPS_CHROMIUM
        .os()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| on_path("chromium"))
}

fn capabilities(driver: &Driver, headed: bool) -> Result<serde_json::Map<String, Value>> {
    let mut chrome_args: Vec<String> = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1024",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if !headed {
        chrome_args.push("--headless=new".into());
    }
    if let Some(profile) = driver.profile() {
        chrome_args.push(format!("--user-data-dir={}", profile.display()));
    }
    let mut chrome = json!({ "args": chrome_args });
    if let Some(bin) = chromium_binary() {
        chrome["binary"] = json!(bin);
    }
    let firefox_args: Vec<&str> = if headed { vec![] } else { vec!["-headless"] };
    let caps = match driver.started.as_ref().map(|s| s.kind) {
        Some(DriverKind::Firefox) => {
            json!({ "browserName": "firefox", "moz:firefoxOptions": { "args": firefox_args } })
        }
        Some(DriverKind::Chrome) => {
            json!({ "browserName": "chrome", "goog:chromeOptions": chrome })
        }
        // Unknown driver: vendor options are ignored by the other vendor's driver.
        None => json!({
            "goog:chromeOptions": chrome,
            "moz:firefoxOptions": { "args": firefox_args },
        }),
    };
    match caps {
        Value::Object(m) => Ok(m),
        _ => unreachable!("built as an object"),
    }
}

/// Opens a URL in the desktop browser: `$BROWSER`, else `open` (macOS) or `xdg-open` when a
/// display is available. Returns `false` (and says why) when there is none.
pub fn open_in_browser(url: &str, out: &Printer) -> bool {
    let opener = vars::BROWSER
        .string()
        .filter(|b| !b.trim().is_empty())
        .or_else(|| {
            if cfg!(target_os = "macos") {
                Some("open".to_owned())
            } else if vars::DISPLAY.os().is_some() || vars::WAYLAND_DISPLAY.os().is_some() {
                on_path("xdg-open").map(|_| "xdg-open".to_owned())
            } else {
                None
            }
        });
    let Some(opener) = opener else {
        out.status("no desktop browser here (no DISPLAY and no $BROWSER): open the URL yourself");
        return false;
    };
    match std::process::Command::new(&opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(_) => {
            out.status(format!("opened the checkout page with {opener}"));
            true
        }
        Err(e) => {
            out.status(format!(
                "could not run {opener} ({e}): open the URL yourself"
            ));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_prefix_drops_the_query() {
        assert_eq!(
            success_prefix("http://a/billing/success?session_id={CHECKOUT_SESSION_ID}"),
            "http://a/billing/success"
        );
        assert_eq!(success_prefix("http://a/done"), "http://a/done");
    }

    #[test]
    fn chrome_capabilities_are_headless_unless_headed() {
        let d = Driver::external("http://x");
        let caps = capabilities(&d, false).unwrap();
        let args = caps["goog:chromeOptions"]["args"].as_array().unwrap();
        assert!(args.iter().any(|a| a == "--headless=new"));
        assert_eq!(caps["moz:firefoxOptions"]["args"][0], "-headless");
        let caps = capabilities(&d, true).unwrap();
        let args = caps["goog:chromeOptions"]["args"].as_array().unwrap();
        assert!(!args.iter().any(|a| a == "--headless=new"));
    }
}
