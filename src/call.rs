//! Calls the filter sends itself through the gateway (a retry on another provider, a health
//! probe) and their replies, as plain data: the decisions build and read them, the glue sends
//! them with `dispatch_http_call`.

/// A request to one of the gateway's clusters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    pub cluster: String,
    /// Pseudo-headers (`:method`, `:path`, `:authority`) first, then the others, lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: u32,
}

/// What came back: `status` is `None` when the call failed without a response (refused,
/// reset, timed out as the host reports it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallReply {
    pub status: Option<u32>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl CallReply {
    /// The reply of a call that got no response.
    pub fn failed() -> Self {
        Self::default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// A store read's reply (Webdis, an endpoint, a `/metrics` page): the body of a 200, or
    /// why there is none.
    pub fn into_store_reply(self) -> Result<Vec<u8>, crate::store::StoreError> {
        use crate::store::StoreError;
        match self.status {
            Some(200) => Ok(self.body),
            None => Err(StoreError::Unavailable(
                "the call failed, was refused or timed out".into(),
            )),
            Some(status) => Err(StoreError::Unavailable(format!(
                "the call was answered with status {status}"
            ))),
        }
    }

    /// A reply of which only `:status` was read (`None`: the host gave none).
    pub fn of_status(status: Option<&[u8]>) -> Self {
        Self {
            status: status
                .and_then(|value| std::str::from_utf8(value).ok())
                .and_then(|value| value.parse().ok()),
            ..Self::default()
        }
    }

    /// Reads `:status` from a header list as the host hands it over.
    pub fn from_parts(headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        let status = headers
            .iter()
            .find(|(key, _)| key == ":status")
            .and_then(|(_, value)| value.parse().ok());
        Self {
            status,
            headers,
            body,
        }
    }
}

/// Headers a proxy must not forward as they are (RFC 9110 §7.6.1), and the ones a re-sent
/// request gets anew.
pub fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "upgrade"
            | "trailer"
            | "content-length"
    ) || name.starts_with(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_read_alone_is_the_same_reply_as_one_read_from_every_header() {
        for status in [Some("200"), Some("503"), Some("2x0"), Some(""), None] {
            let headers = status
                .map(|status| vec![(":status".to_string(), status.to_string())])
                .unwrap_or_default();
            let whole = CallReply::from_parts(headers, Vec::new());
            let alone = CallReply::of_status(status.map(str::as_bytes));
            assert_eq!(alone.status, whole.status, "{status:?}");
        }
        assert_eq!(CallReply::of_status(Some(b"\xff200")).status, None);
        assert_eq!(
            CallReply::of_status(Some(b"200")).into_store_reply(),
            Ok(Vec::new())
        );
    }
}
