//! The Slack app manifest printed by `cutover slack manifest`.

/// The manifest (YAML): bot scopes, Socket Mode, interactivity. With
/// `request_url`, the HTTP variant (Socket Mode off).
pub fn manifest(request_url: Option<&str>) -> String {
    let (socket, interactivity) = match request_url {
        Some(u) => (
            "false",
            format!("    is_enabled: true\n    request_url: {u}\n"),
        ),
        None => ("true", "    is_enabled: true\n".to_string()),
    };
    format!(
        "_metadata:\n  major_version: 1\n  minor_version: 1\ndisplay_information:\n  name: cutover\n  description: Pre-flight, approval and live progress for database migrations\n  background_color: \"#1f3a5f\"\nfeatures:\n  bot_user:\n    display_name: cutover\n    always_online: true\noauth_config:\n  scopes:\n    bot:\n      - chat:write\n      - users:read\n      - usergroups:read\nsettings:\n  interactivity:\n{interactivity}  org_deploy_enabled: false\n  socket_mode_enabled: {socket}\n  token_rotation_enabled: false\n# Socket Mode also needs an app-level token (xapp-…) with connections:write,\n# created under Basic Information → App-Level Tokens.\n"
    )
}
