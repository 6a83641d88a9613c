//! The `lambda` backend: each attempt is one synchronous (RequestResponse)
//! Lambda invocation whose payload is the task JSON.

use async_trait::async_trait;
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use excam_worker::task::{Task, TaskResult};

use super::backend::{parse_answer, AttemptError, Backend, FailureKind};

/// Invokes `function` through `client`.
pub struct LambdaBackend {
    /// Lambda client (region, credentials and endpoint from the default chain).
    pub client: aws_sdk_lambda::Client,
    /// Function name or ARN.
    pub function: String,
}

impl LambdaBackend {
    /// A client from the `aws-config` default chain (`AWS_ENDPOINT_URL_LAMBDA`
    /// is honoured by the SDK).
    pub async fn new(function: String) -> LambdaBackend {
        let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        LambdaBackend {
            client: aws_sdk_lambda::Client::new(&conf),
            function,
        }
    }
}

#[async_trait]
impl Backend for LambdaBackend {
    fn name(&self) -> &'static str {
        "lambda"
    }

    async fn run(&self, task: Task) -> Result<TaskResult, AttemptError> {
        let json = serde_json::to_vec(&task)
            .map_err(|e| AttemptError::new(FailureKind::Lost, format!("task JSON: {e}")))?;
        let out = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(json))
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(SdkError::ServiceError(e)) => {
                let status = e.raw().status().as_u16();
                if matches!(e.err(), InvokeError::TooManyRequestsException(_)) || status == 429 {
                    return Err(AttemptError::new(
                        FailureKind::Throttled,
                        format!("{:?}", e.err()),
                    ));
                }
                // AWS answers a function error with 200 and X-Amz-Function-Error;
                // `cargo lambda watch` answers it with an HTTP error whose body
                // is the function's {"errorType", "errorMessage"} payload.
                // Either way it is the worker's own error, not a lost attempt.
                if let Some(fe) = e.raw().body().bytes().and_then(function_error_payload) {
                    return Err(fe);
                }
                return Err(AttemptError::new(
                    FailureKind::Lost,
                    format!("{:?}", e.err()),
                ));
            }
            Err(e) => {
                return Err(AttemptError::new(
                    FailureKind::Lost,
                    format!("invoke {}: {}", self.function, aws_error_text(&e)),
                ))
            }
        };
        let payload = out.payload.map(|b| b.into_inner()).unwrap_or_default();
        if let Some(fe) = out.function_error {
            return Err(match parse_answer(&payload) {
                Err(mut e) => {
                    e.kind = FailureKind::FunctionError;
                    e.message = format!("{fe}: {}", e.message);
                    e
                }
                Ok(_) => AttemptError::new(FailureKind::FunctionError, fe),
            });
        }
        parse_answer(&payload)
    }
}

/// The worker's error when `body` is a Lambda function-error payload
/// (`{"errorType": .., "errorMessage": ..}`).
fn function_error_payload(body: &[u8]) -> Option<AttemptError> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let kind = v.get("errorType")?.as_str()?.to_string();
    v.get("errorMessage")?;
    match parse_answer(body) {
        Err(mut e) => {
            e.kind = FailureKind::FunctionError;
            e.message = format!("{kind}: {}", e.message);
            Some(e)
        }
        Ok(_) => None,
    }
}

/// An SDK error with its causes on one line.
fn aws_error_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_error_payloads_are_recognised() {
        let body = br#"{"errorType":"&alloc::string::String","errorMessage":"{\"phase\":\"rebase\",\"error\":\"boom\"}"}"#;
        let e = function_error_payload(body).expect("a function error");
        assert_eq!(e.kind, FailureKind::FunctionError);
        assert!(e.message.contains("boom"), "{}", e.message);
        assert!(function_error_payload(b"<html>gateway</html>").is_none());
        assert!(function_error_payload(br#"{"message":"Service unavailable"}"#).is_none());
    }
}
