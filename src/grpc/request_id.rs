//! A request id per call: the caller's `x-request-id` when it sent a
//! usable one, otherwise one made up here; echoed in the response's
//! metadata, in every log line of the call (a `call` span) and in the audit
//! entries the call writes (`audit::with_request_id`); passed on with a call
//! sent to the Key Master, so both nodes' logs and entries carry it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::http::{HeaderValue, Request, Response};
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

/// The tower layer: wraps every service of the server.
#[derive(Debug, Clone)]
pub struct RequestIds<S>(pub S);

impl<S, B, R> tower::Service<Request<B>> for RequestIds<S>
where
    S: tower::Service<Request<B>, Response = Response<R>> + Send,
    S::Future: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let id = request
            .headers()
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| usable(v))
            .map(str::to_string)
            .unwrap_or_else(made_up);
        let value = HeaderValue::from_str(&id).expect("a usable id is a header value");
        request.headers_mut().insert(HEADER, value.clone());
        let span = tracing::info_span!("call", request_id = %id, path = %request.uri().path());
        let served = crate::audit::with_request_id(id, self.0.call(request)).instrument(span);
        Box::pin(async move {
            let mut response = served.await?;
            response.headers_mut().insert(HEADER, value);
            Ok(response)
        })
    }
}

/// An id a caller may choose: 1 to 128 characters of letters, digits and
/// `-._:`, so that it is safe in a log line and a header.
fn usable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
}

/// 16 random bytes in hex.
fn made_up() -> String {
    let mut bytes = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    crate::hex::hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_are_taken_from_callers() {
        assert!(usable("req-123_abc.def:9"));
        assert!(!usable(""));
        assert!(!usable("with space"));
        assert!(!usable("new\nline"));
        assert!(!usable(&"x".repeat(129)));
        assert_eq!(made_up().len(), 32);
        assert!(usable(&made_up()));
    }
}
