//! In-process tests of the Varlink server against raw sockets, so every byte is under control.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_service_runtime::varlink::{
    Call, ErrorReply, HandlerResult, Replier, Server, ServerConfig, ServerInfo, Service,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

const IDL: &str = "interface org.example.test

method Echo(text: string, n: ?int) -> (text: string, n: ?int)

# [Supports 'more' flag]
method Count(to: int) -> (value: int)

# [Requires 'more' flag]
method Watch() -> (tick: int)

method Slow(ms: int) -> ()

method Fail() -> ()

method Fd() -> (fileDescriptor: int)

error Failed(reason: string)
";

struct TestService;

#[derive(Debug, Clone, Copy)]
enum Method {
    Echo,
    Count,
    Watch,
    Slow,
    Fail,
    Fd,
}

/// Subscriptions whose handler returned because the client went away.
static WATCHES_ENDED: AtomicUsize = AtomicUsize::new(0);

impl Service for TestService {
    type Method = Method;

    fn route(method: &str) -> Option<Method> {
        Some(match method.strip_prefix("org.example.test.")? {
            "Echo" => Method::Echo,
            "Count" => Method::Count,
            "Watch" => Method::Watch,
            "Slow" => Method::Slow,
            "Fail" => Method::Fail,
            "Fd" => Method::Fd,
            _ => return None,
        })
    }

    async fn handle(&self, method: Method, call: Call, replier: &mut Replier<'_>) -> HandlerResult {
        let p = call.parameters().clone();
        match method {
            Method::Echo => replier.reply(&p).await,
            Method::Count => {
                let to = p["to"].as_i64().unwrap_or(0);
                let last = if call.more { to } else { 1.min(to) };
                for value in 1..=last {
                    replier.push(&json!({ "value": value })).await?;
                }
                Ok(())
            }
            Method::Watch => {
                for tick in 0.. {
                    replier.notify(&json!({ "tick": tick })).await?;
                    tokio::select! {
                        () = replier.closed() => break,
                        () = tokio::time::sleep(Duration::from_secs(10)) => {}
                    }
                }
                WATCHES_ENDED.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Method::Slow => {
                let ms = p["ms"].as_u64().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(())
            }
            Method::Fd => {
                let file = tempfile::tempfile().expect("a file");
                std::io::Write::write_all(&mut &file, b"passed").expect("written");
                let reply = json!({"fileDescriptor": 0});
                replier.reply_with_fds(&reply, vec![file.into()]).await
            }
            Method::Fail => Err(ErrorReply {
                name: "org.example.test.Failed".into(),
                parameters: json!({"reason": "asked"}).as_object().unwrap().clone(),
            }),
        }
    }
}

struct Running {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let listener = berth_service_runtime::activation::bind(&path, 0o600).unwrap();
        let mut config = ServerConfig::new(ServerInfo::berth("test"), vec![IDL]);
        config.shutdown_grace = Duration::from_millis(200);
        let server = Server::new(TestService, config).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .run(vec![listener], async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            _dir: dir,
            path,
            stop: Some(stop),
            task,
        }
    }

    async fn client(&self) -> Client {
        Client(BufReader::new(
            UnixStream::connect(&self.path).await.unwrap(),
        ))
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("server stops")
            .unwrap();
    }
}

struct Client(BufReader<UnixStream>);

impl Client {
    async fn send_raw(&mut self, bytes: &[u8]) {
        self.0.get_mut().write_all(bytes).await.unwrap();
        self.0.get_mut().write_all(b"\0").await.unwrap();
    }

    async fn send(&mut self, message: Value) {
        self.send_raw(message.to_string().as_bytes()).await;
    }

    /// The next message, or `None` when the server closed the connection.
    async fn recv(&mut self) -> Option<Value> {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), self.0.read_until(0, &mut buf))
            .await
            .expect("a reply in time");
        let read = match read {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            other => other.unwrap(),
        };
        if read == 0 {
            return None;
        }
        buf.pop();
        Some(serde_json::from_slice(&buf).unwrap())
    }

    async fn call(&mut self, message: Value) -> Value {
        self.send(message).await;
        self.recv().await.expect("a reply")
    }
}

fn invalid(parameter: &str) -> Value {
    json!({"error": "org.varlink.service.InvalidParameter", "parameters": {"parameter": parameter}})
}

#[tokio::test]
async fn malformed_calls_get_sd_varlink_errors_and_the_connection_stays_open() {
    let server = Running::start().await;
    let mut c = server.client().await;
    let cases = [
        (
            json!({"method": "org.example.test.Echo", "parameters": {}}),
            invalid("text"),
        ),
        (
            json!({"method": "org.example.test.Echo", "parameters": {"text": 1}}),
            invalid("text"),
        ),
        (
            json!({"method": "org.example.test.Echo", "parameters": {"text": "a", "zz": 1}}),
            invalid("zz"),
        ),
        (
            json!({"method": "org.example.test.Echo", "parameters": {"text": "a", "n": -1.5}}),
            invalid("n"),
        ),
        (
            json!({"method": "org.example.test.Nope", "parameters": {}}),
            json!({"error": "org.varlink.service.MethodNotFound", "parameters": {"method": "org.example.test.Nope"}}),
        ),
        (
            json!({"method": "org.other.Nope"}),
            json!({"error": "org.varlink.service.MethodNotFound", "parameters": {"method": "org.other.Nope"}}),
        ),
        (
            json!({"method": "org.example.test.Watch", "parameters": {}}),
            json!({"error": "org.varlink.service.ExpectedMore", "parameters": {}}),
        ),
        (
            json!({"method": "org.example.test.Fail"}),
            json!({"error": "org.example.test.Failed", "parameters": {"reason": "asked"}}),
        ),
    ];
    for (call, expected) in cases {
        assert_eq!(c.call(call.clone()).await, expected, "for {call}");
    }
    let reply = c
        .call(json!({"method": "org.example.test.Echo", "parameters": {"text": "ok", "n": "7"}}))
        .await;
    assert_eq!(reply, json!({"parameters": {"text": "ok", "n": 7}}));
    server.stop().await;
}

#[tokio::test]
async fn introspection_serves_the_idl_text_verbatim() {
    let server = Running::start().await;
    let mut c = server.client().await;
    let info = c
        .call(json!({"method": "org.varlink.service.GetInfo"}))
        .await;
    assert_eq!(info["parameters"]["vendor"], "Berth");
    assert_eq!(
        info["parameters"]["interfaces"],
        json!(["org.example.test", "org.varlink.service"])
    );
    let description = c
        .call(
            json!({"method": "org.varlink.service.GetInterfaceDescription",
                     "parameters": {"interface": "org.example.test"}}),
        )
        .await;
    assert_eq!(description["parameters"]["description"], IDL);
    let missing = c
        .call(
            json!({"method": "org.varlink.service.GetInterfaceDescription",
                     "parameters": {"interface": "org.nope"}}),
        )
        .await;
    assert_eq!(
        missing,
        json!({"error": "org.varlink.service.InterfaceNotFound", "parameters": {"interface": "org.nope"}})
    );
    server.stop().await;
}

#[tokio::test]
async fn enumerations_mark_all_but_the_last_reply_continues() {
    let server = Running::start().await;
    let mut c = server.client().await;
    c.send(json!({"method": "org.example.test.Count", "parameters": {"to": 3}, "more": true}))
        .await;
    let mut replies = Vec::new();
    for _ in 0..3 {
        replies.push(c.recv().await.unwrap());
    }
    assert_eq!(
        replies,
        [
            json!({"parameters": {"value": 1}, "continues": true}),
            json!({"parameters": {"value": 2}, "continues": true}),
            json!({"parameters": {"value": 3}}),
        ]
    );
    let single = c
        .call(json!({"method": "org.example.test.Count", "parameters": {"to": 3}}))
        .await;
    assert_eq!(single, json!({"parameters": {"value": 1}}));
    server.stop().await;
}

#[tokio::test]
async fn oneway_calls_get_no_reply_and_pipelined_calls_are_answered_in_order() {
    let server = Running::start().await;
    let mut c = server.client().await;
    c.send(json!({"method": "org.example.test.Echo", "parameters": {"text": "a"}, "oneway": true}))
        .await;
    c.send(json!({"method": "org.example.test.Echo", "parameters": {"text": "b"}}))
        .await;
    c.send(json!({"method": "org.example.test.Echo", "parameters": {"text": "c"}}))
        .await;
    assert_eq!(c.recv().await.unwrap()["parameters"]["text"], "b");
    assert_eq!(c.recv().await.unwrap()["parameters"]["text"], "c");
    server.stop().await;
}

#[tokio::test]
async fn protocol_violations_and_oversized_messages_close_only_that_connection() {
    let server = Running::start().await;
    let mut bystander = server.client().await;
    for bad in [
        &b"{not json"[..],
        b"[1,2]",
        br#"{"method":"a.b.C","bogus":1}"#,
    ] {
        let mut c = server.client().await;
        c.send_raw(bad).await;
        assert_eq!(
            c.recv().await,
            None,
            "closed after {}",
            String::from_utf8_lossy(bad)
        );
    }
    let mut big = server.client().await;
    let chunk = vec![b' '; 1024 * 1024];
    for _ in 0..17 {
        if big.0.get_mut().write_all(&chunk).await.is_err() {
            break;
        }
    }
    assert_eq!(big.recv().await, None);
    let reply = bystander
        .call(json!({"method": "org.example.test.Echo", "parameters": {"text": "still here"}}))
        .await;
    assert_eq!(reply["parameters"]["text"], "still here");
    server.stop().await;
}

#[tokio::test]
async fn a_slow_call_or_a_stalled_client_does_not_hold_up_anyone_else() {
    let server = Running::start().await;
    let mut slow = server.client().await;
    slow.send(json!({"method": "org.example.test.Slow", "parameters": {"ms": 600000}}))
        .await;
    // A client that asks for a long stream and never reads it.
    let mut stalled = server.client().await;
    stalled
        .send(json!({"method": "org.example.test.Count", "parameters": {"to": 1000000}, "more": true}))
        .await;
    // Each reply must come within `recv`'s deadline although the others never finish.
    let mut quick = server.client().await;
    for _ in 0..10 {
        quick
            .call(json!({"method": "org.example.test.Echo", "parameters": {"text": "x"}}))
            .await;
    }
    drop((slow, stalled));
    server.stop().await;
}

#[tokio::test]
async fn subscriptions_notice_a_client_that_hangs_up() {
    let server = Running::start().await;
    let mut c = server.client().await;
    c.send(json!({"method": "org.example.test.Watch", "parameters": {}, "more": true}))
        .await;
    assert_eq!(
        c.recv().await.unwrap(),
        json!({"parameters": {"tick": 0}, "continues": true})
    );
    drop(c);
    // The handler sees the hang-up at once, not at its next write ten seconds later.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while WATCHES_ENDED.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the subscription outlived its client"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.stop().await;
}

/// A service that serves the test interface but forgot one of its methods.
struct ForgetfulService;

impl Service for ForgetfulService {
    type Method = Method;

    fn route(method: &str) -> Option<Method> {
        TestService::route(method).filter(|m| !matches!(m, Method::Slow))
    }

    async fn handle(&self, method: Method, call: Call, replier: &mut Replier<'_>) -> HandlerResult {
        TestService.handle(method, call, replier).await
    }
}

#[test]
fn a_server_with_a_method_without_handler_does_not_start() {
    let config = ServerConfig::new(ServerInfo::berth("test"), vec![IDL]);
    let error = Server::new(ForgetfulService, config).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Method org.example.test.Slow is served but has no handler"
    );
}

#[tokio::test]
async fn descriptors_are_passed_with_the_reply() {
    use std::io::{Read, Seek, Write};
    let server = Running::start().await;
    let path = server.path.clone();
    let (reply, fds) = tokio::task::spawn_blocking(move || {
        let mut stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
        stream
            .write_all(b"{\"method\":\"org.example.test.Fd\"}\0")
            .unwrap();
        let mut buffer = vec![0u8; 4096];
        let (read, fds) = berth_os::socket::recv_with_fds(&stream, &mut buffer).unwrap();
        (buffer[..read].to_vec(), fds)
    })
    .await
    .unwrap();
    assert_eq!(reply, b"{\"parameters\":{\"fileDescriptor\":0}}\0");
    assert_eq!(fds.len(), 1);
    let mut file = std::fs::File::from(fds.into_iter().next().unwrap());
    file.rewind().unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    assert_eq!(text, "passed");
    server.stop().await;
}
