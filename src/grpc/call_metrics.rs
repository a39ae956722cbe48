//! Calls per method and status code, and how long each took, for the
//! metrics: a tower layer around every service of the server. A call ends
//! when its status is known: at once for an answer that is only a status
//! (an error), or at the trailers that end a streamed or unary answer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tonic::codegen::http::{HeaderMap, Request, Response};

use crate::clock::{Clock, SystemClock};
use crate::metrics::{self, CallLabels, MethodLabels};

/// The tower layer.
#[derive(Debug, Clone)]
pub struct CallMetrics<S>(pub S);

impl<S, B> tower::Service<Request<B>> for CallMetrics<S>
where
    S: tower::Service<Request<B>, Response = Response<tonic::body::Body>> + Send,
    S::Future: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let call = Call::new(request.uri().path());
        let answered = self.0.call(request);
        Box::pin(async move {
            let response = answered.await?;
            if let Some(code) = status(response.headers()) {
                call.end(&code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                tonic::body::Body::new(Observed {
                    body,
                    call: Some(call),
                })
            }))
        })
    }
}

/// A call whose status is not yet known. Its latency is real time, on the
/// system's clock, whatever clock the services run on.
struct Call {
    method: MethodLabels,
    began: Instant,
}

impl Call {
    fn new(path: &str) -> Call {
        // Only this server's own services are named: any other path (a
        // scanner's) would make a label value per request.
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .filter(|(service, method)| {
                ["keymaster.v1.", "grpc.health.v1.", "grpc.reflection."]
                    .iter()
                    .any(|p| service.starts_with(p))
                    && !method.is_empty()
                    && method.len() <= 64
                    && method.bytes().all(|b| b.is_ascii_alphanumeric())
            })
            .unwrap_or(("unknown", "unknown"));
        Call {
            method: MethodLabels {
                service: service.to_string(),
                method: method.to_string(),
            },
            began: SystemClock.instant(),
        }
    }

    fn end(self, code: &str) {
        let m = metrics::get();
        m.call_seconds.get_or_create(&self.method).observe(
            SystemClock
                .instant()
                .duration_since(self.began)
                .as_secs_f64(),
        );
        m.calls
            .get_or_create(&CallLabels {
                service: self.method.service,
                method: self.method.method,
                code: code.to_string(),
            })
            .inc();
    }
}

/// The status a header block carries, by its name ("OK", "NotFound").
fn status(headers: &HeaderMap) -> Option<String> {
    let n: i32 = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    Some(match tonic::Code::from_i32(n) {
        tonic::Code::Ok => "OK".to_string(),
        code => format!("{code:?}"),
    })
}

/// An answer's body, watched for the trailers that carry its status.
struct Observed {
    body: tonic::body::Body,
    call: Option<Call>,
}

impl http_body::Body for Observed {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        let code = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame
                .trailers_ref()
                .map(|t| status(t).unwrap_or_else(|| "Unknown".to_string())),
            Poll::Ready(Some(Err(e))) => Some(format!("{:?}", e.code())),
            Poll::Ready(None) => Some("Unknown".to_string()),
            Poll::Pending => None,
        };
        if let Some(code) = code {
            if let Some(call) = this.call.take() {
                call.end(&code);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Observed {
    /// The caller went before the answer ended.
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.end("Cancelled");
        }
    }
}
