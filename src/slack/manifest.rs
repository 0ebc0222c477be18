//! The Slack app manifest printed by `cutover slack manifest`.

/// Why a request URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--request-url {url:?}: {why}")]
pub struct BadUrl {
    /// The URL as given.
    pub url: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Checks a request URL: `https://host…`, at most 3,500 characters (the
/// manifest schema's limit), no spaces, quotes or control characters.
pub fn check_request_url(u: &str) -> Result<(), BadUrl> {
    let bad = |why| {
        Err(BadUrl {
            url: u.to_string(),
            why,
        })
    };
    let Some(rest) = u.strip_prefix("https://") else {
        return bad("must start with https:// (Slack sends interactivity only over TLS)");
    };
    if u.chars().count() > 3500 {
        return bad("longer than 3,500 characters");
    }
    if u.chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '"' || c == '\\')
    {
        return bad("contains spaces, quotes, backslashes or control characters");
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') || host.contains('@') {
        return bad("has no host name");
    }
    Ok(())
}

/// The manifest (YAML): bot scopes, Socket Mode, interactivity. With
/// `request_url` (checked, then written as a quoted YAML string), the HTTP
/// variant (Socket Mode off).
pub fn manifest(request_url: Option<&str>) -> Result<String, BadUrl> {
    let (socket, interactivity) = match request_url {
        Some(u) => {
            check_request_url(u)?;
            (
                "false",
                format!("    is_enabled: true\n    request_url: \"{u}\"\n"),
            )
        }
        None => ("true", "    is_enabled: true\n".to_string()),
    };
    Ok(format!(
        "_metadata:\n  major_version: 1\n  minor_version: 1\ndisplay_information:\n  name: cutover\n  description: Pre-flight, approval and live progress for database migrations\n  background_color: \"#1f3a5f\"\nfeatures:\n  bot_user:\n    display_name: cutover\n    always_online: true\noauth_config:\n  scopes:\n    bot:\n      - chat:write\n      - users:read\n      - usergroups:read\nsettings:\n  interactivity:\n{interactivity}  org_deploy_enabled: false\n  socket_mode_enabled: {socket}\n  token_rotation_enabled: false\n# Socket Mode also needs an app-level token (xapp-…) with connections:write,\n# created under Basic Information → App-Level Tokens.\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_urls_are_https_and_quoted() {
        let m = manifest(Some("https://relay.example/slack/interactivity?a=1#x")).unwrap();
        assert!(m.contains("request_url: \"https://relay.example/slack/interactivity?a=1#x\""));
        assert!(m.contains("socket_mode_enabled: false"));
        for bad in [
            "http://relay.example/x",
            "relay.example",
            "https://",
            "https:///path",
            "https://a.example/x\n  token_rotation_enabled: true",
            "https://a.example/\"quoted\"",
            "https://a.example/ space",
        ] {
            assert!(manifest(Some(bad)).is_err(), "{bad}");
        }
        assert!(
            manifest(None)
                .unwrap()
                .contains("socket_mode_enabled: true")
        );
    }
}
