//! v0 request signatures for HTTP interactivity (spec §8): HMAC-SHA256 of
//! `v0:<timestamp>:<raw body>` keyed by the signing secret, compared in
//! constant time, within ±300 s, and never accepted twice.

use super::config::Secret;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Mutex;

/// The clock window, seconds (inclusive).
pub const WINDOW_SECONDS: i64 = 300;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A header is missing.
    #[error("missing X-Slack-Request-Timestamp or X-Slack-Signature")]
    Missing,
    /// The timestamp is not a number.
    #[error("bad timestamp")]
    BadTimestamp,
    /// Outside the 5-minute window.
    #[error("timestamp outside the 5-minute window")]
    Stale,
    /// The signature does not match.
    #[error("signature mismatch")]
    Mismatch,
    /// Seen before.
    #[error("replayed signature")]
    Replayed,
}

fn mac(secret: &[u8], ts: &str, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).ok()?;
    m.update(b"v0:");
    m.update(ts.as_bytes());
    m.update(b":");
    m.update(body);
    Some(m)
}

/// `v0=<hex>` for a request (what Slack would send).
pub fn sign(secret: &str, ts: &str, body: &[u8]) -> String {
    mac(secret.as_bytes(), ts, body)
        .map(|m| format!("v0={}", hex::encode(m.finalize().into_bytes())))
        .unwrap_or_default()
}

/// Checks signatures and remembers the accepted ones for the window.
#[derive(Debug)]
pub struct Verifier {
    secret: Secret,
    seen: Mutex<HashMap<String, i64>>,
}

impl Verifier {
    /// A verifier for one signing secret.
    pub fn new(secret: Secret) -> Verifier {
        Verifier {
            secret,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Verifies one request at `now` (Unix seconds).
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let (Some(ts), Some(sig)) = (timestamp, signature) else {
            return Err(SignatureError::Missing);
        };
        let t: i64 = ts
            .trim()
            .parse()
            .map_err(|_| SignatureError::BadTimestamp)?;
        if (now - t).abs() > WINDOW_SECONDS {
            return Err(SignatureError::Stale);
        }
        let given = sig
            .strip_prefix("v0=")
            .and_then(|h| hex::decode(h).ok())
            .ok_or(SignatureError::Mismatch)?;
        let m = mac(self.secret.expose().as_bytes(), ts, body).ok_or(SignatureError::Mismatch)?;
        m.verify_slice(&given)
            .map_err(|_| SignatureError::Mismatch)?;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, at| (now - *at).abs() <= 2 * WINDOW_SECONDS);
        // Keyed by the canonical form (lower-case hex of the bytes): the same
        // signature in upper case is the same request, not a new one.
        if seen
            .insert(format!("v0={}", hex::encode(&given)), t)
            .is_some()
        {
            return Err(SignatureError::Replayed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const A_SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn vector_a_and_its_window() {
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        assert_eq!(sign(secret, "1531420618", A_BODY.as_bytes()), A_SIG);
        for (now, ok) in [
            (1531420618, true),
            (1531420618 + 300, true),
            (1531420618 + 301, false),
            (1531420618 - 301, false),
        ] {
            let v = Verifier::new(Secret::new(secret));
            let r = v.verify(Some("1531420618"), Some(A_SIG), A_BODY.as_bytes(), now);
            assert_eq!(r.is_ok(), ok, "now {now}: {r:?}");
        }
    }

    #[test]
    fn vectors_c_and_d_and_replay() {
        let v = Verifier::new(Secret::new("s3cr3t"));
        let c = "payload=%7B%22type%22%3A%22block_actions%22%7D";
        let sig_c = "v0=9bd5477541a00dbf00547fcf0c737fae226b1171a61f7e01d959b5a519d32da7";
        assert_eq!(
            v.verify(Some("1700000000"), Some(sig_c), c.as_bytes(), 1700000000),
            Ok(())
        );
        assert_eq!(
            v.verify(Some("1700000000"), Some(sig_c), c.as_bytes(), 1700000001),
            Err(SignatureError::Replayed)
        );
        let sig_d = "v0=7ad0ebb3c6d81a9e405202a046b04ce8f876759740b099f47adcd4d72eefc622";
        assert_eq!(
            v.verify(Some("1700000000"), Some(sig_d), b"", 1700000000),
            Ok(())
        );
        assert_eq!(
            v.verify(Some("1700000000"), Some(sig_d), b"x", 1700000000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            v.verify(None, Some(sig_d), b"", 0),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn vector_b() {
        let json = r#"{"type":"block_actions","user":{"id":"U0DBA0001","username":"alice","team_id":"T0TEAM001"},"team":{"id":"T0TEAM001","domain":"acme"},"channel":{"id":"C0DBOPS01","name":"db-ops"},"container":{"type":"message","message_ts":"1700000000.000100","channel_id":"C0DBOPS01","is_ephemeral":false},"message":{"ts":"1700000000.000100","type":"message"},"trigger_id":"1234.5678.abcdef","response_url":"https://hooks.slack.com/actions/T0TEAM001/1/abc","actions":[{"type":"button","action_id":"approve","block_id":"approval:run-7f3a","value":"run-7f3a","text":{"type":"plain_text","text":"Approve"},"action_ts":"1700000005.123456"}]}"#;
        let body = format!("payload={}", crate::slack::api::urlencode(json));
        assert_eq!(body.len(), 991);
        assert_eq!(
            sign(
                "test-signing-secret-0123456789abcdef",
                "1700000000",
                body.as_bytes()
            ),
            "v0=50140fff54797a2e9f65508ccda0ae91d3ddb6dac7dfe118937fd71814ca6293"
        );
    }
}
