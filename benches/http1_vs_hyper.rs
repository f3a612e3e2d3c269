//! The lean HTTP/1.1 client (`src/http1/`) beside hyper's own low-level client
//! (`hyper::client::conn::http1::handshake`, its connection future spawned), in the same run:
//! one kept-alive connection each to the same loopback receiver, the same signed
//! `customer.created` event POSTed with Stripe's delivery headers, the whole answer read.
//! Client, receiver and kernel share one current-thread runtime, so the time per request is
//! also the CPU a request costs (both sides and the loopback). After criterion's figures it
//! prints the CPU per request it measured itself (`getrusage`). Run:
//! `cargo bench --bench http1_vs_hyper`.
//!
//! 2026-12-06, 2 cores: median per request src/http1 3.79 µs, hyper 6.56 µs (1.73 times); CPU
//! per request 3.9-4.0 µs against 6.7-6.8 µs, `hyper / src/http1: 1.65`-`1.73` (above 1:
//! src/http1 is faster).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use stripe_ops::http::ANSWER;
use stripe_ops::http1::{Conn, Origin, write_head};
use stripe_ops::webhook::fixtures::{Catalog, RenderOptions};
use stripe_ops::webhook::signature::{self, Signer};
use stripe_ops::webhook::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, USER_AGENT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// What the receiver answers every delivery with (a webhook receiver's usual acknowledgement).
const ANSWERED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
Content-Length: 17\r\n\r\n{\"received\":true}";
/// The length of `ANSWERED`'s body, which both clients must read whole.
const ANSWERED_BODY: usize = 17;

/// The request both clients send: the same body and header values.
struct Delivery {
    body: Bytes,
    signature: String,
}

impl Delivery {
    fn new() -> Self {
        let now = 1_700_000_000;
        let body = Catalog::load(None)
            .unwrap()
            .prepare("customer.created", &RenderOptions::default())
            .unwrap()
            .body("evt_bench", now);
        let signer = Signer::new(b"whsec_benchHTTP1bench0123456789abcdefgh");
        let signature = signature::header(now, body.as_bytes(), &[signer]);
        Delivery {
            body: Bytes::from(body),
            signature,
        }
    }

    fn headers(&self) -> [(&'static str, &[u8]); 5] {
        [
            ("User-Agent", USER_AGENT.as_bytes()),
            ("Content-Type", CONTENT_TYPE.as_bytes()),
            ("Accept", ACCEPT.as_bytes()),
            ("Cache-Control", CACHE_CONTROL.as_bytes()),
            ("Stripe-Signature", self.signature.as_bytes()),
        ]
    }
}

/// A keep-alive receiver on loopback: for each request on a connection (head, then as many
/// body bytes as its `Content-Length` says) it writes `ANSWERED`. Returns its URL.
async fn receiver() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/stripe", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    url
}

async fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    loop {
        let (head, body) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            if let httparse::Status::Complete(head) = req.parse(&buf).unwrap() {
                let length = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |h| {
                        std::str::from_utf8(h.value).unwrap().parse().unwrap()
                    });
                break (head, length);
            }
            if read_more(&mut stream, &mut buf).await == 0 {
                return;
            }
        };
        while buf.len() < head + body {
            if read_more(&mut stream, &mut buf).await == 0 {
                return;
            }
        }
        buf.drain(..head + body);
        if stream.write_all(ANSWERED).await.is_err() {
            return;
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> usize {
    buf.reserve(8 * 1024);
    stream.read_buf(buf).await.unwrap_or(0)
}

/// One delivery with the lean client, as `load::conn` and the relay send it.
async fn lean(conn: &mut Conn, origin: &Origin, delivery: &Delivery) -> usize {
    let write = |out: &mut Vec<u8>| {
        write_head(
            out,
            "POST",
            origin,
            &delivery.headers(),
            delivery.body.len(),
        );
        out.extend_from_slice(&delivery.body);
    };
    let answer = conn.exchange(write, ANSWER).await.unwrap();
    assert_eq!(answer.status, 200);
    assert!(answer.reusable);
    assert_eq!(answer.body.len as usize, ANSWERED_BODY);
    answer.body.len as usize
}

/// One delivery with hyper's connection-level client (which adds no `Host` of its own).
async fn hyper(
    sender: &mut SendRequest<Full<Bytes>>,
    origin: &Origin,
    delivery: &Delivery,
) -> usize {
    let mut request =
        hyper::Request::post(origin.target.as_str()).header("Host", &origin.authority);
    for (name, value) in delivery.headers() {
        request = request.header(name, value);
    }
    let request = request.body(Full::new(delivery.body.clone())).unwrap();
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .len()
}

async fn hyper_connection(origin: &Origin) -> SendRequest<Full<Bytes>> {
    let tcp = TcpStream::connect(origin.authority.as_str()).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// CPU (user + system) this process has used so far.
fn cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn bench(c: &mut Criterion) {
    let rt: Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let delivery = Delivery::new();
    let url = rt.block_on(receiver());
    let origin = Origin::new(&url, None).unwrap();
    let mut conn = rt.block_on(origin.connect()).unwrap();
    let mut sender = rt.block_on(hyper_connection(&origin));

    let mut g = c.benchmark_group("http1_vs_hyper");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(10));
    let size = delivery.body.len();
    g.bench_function(
        format!("src/http1, POST of {size} B, one connection"),
        |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        black_box(lean(&mut conn, &origin, &delivery).await);
                    }
                    started.elapsed()
                })
            })
        },
    );
    g.bench_function(
        format!("hyper conn::http1, POST of {size} B, one connection"),
        |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        black_box(hyper(&mut sender, &origin, &delivery).await);
                    }
                    started.elapsed()
                })
            })
        },
    );
    g.finish();
    // Only under `cargo bench` (which passes `--bench`), not when `cargo test` runs it once.
    if std::env::args().any(|a| a == "--bench") {
        cpu_per_request(&rt, &mut conn, &origin, &mut sender, &delivery);
    }
}

/// Both clients' CPU per request, three rounds back to back.
fn cpu_per_request(
    rt: &Runtime,
    conn: &mut Conn,
    origin: &Origin,
    sender: &mut SendRequest<Full<Bytes>>,
    delivery: &Delivery,
) {
    const N: u32 = 20_000;
    for round in 1..=3 {
        let started = cpu();
        rt.block_on(async {
            for _ in 0..N {
                lean(conn, origin, delivery).await;
            }
        });
        let lean_cpu = (cpu() - started) / N;
        let started = cpu();
        rt.block_on(async {
            for _ in 0..N {
                hyper(sender, origin, delivery).await;
            }
        });
        let hyper_cpu = (cpu() - started) / N;
        println!(
            "CPU per request, round {round}, {N} requests each: src/http1 {:.1} µs, hyper {:.1} µs, \
             hyper / src/http1: {:.2} (above 1: src/http1 is faster)",
            lean_cpu.as_secs_f64() * 1e6,
            hyper_cpu.as_secs_f64() * 1e6,
            hyper_cpu.as_secs_f64() / lean_cpu.as_secs_f64()
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
