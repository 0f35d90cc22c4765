//! The `[console]` table: the admin console at `/console`.

use serde::Deserialize;

/// The admin console's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// Serve the console (on by default; people need an `admin` or `auditor` role to use it).
    pub enabled: bool,
    /// A console session ends after this many seconds without a request (15 minutes).
    pub idle_timeout: u64,
    /// A console session ends this long after signing in, whatever happens (8 hours).
    pub session_ttl: u64,
    /// Serve the console on this address of its own instead of the main listener (an admin
    /// network, or loopback behind an SSH tunnel); plain HTTP.
    pub listen: Option<std::net::SocketAddr>,
    /// The console's address as browsers reach it, with `listen` (default `http://LISTEN`): its
    /// sign-in comes back there.
    pub url: Option<String>,
}

impl ConsoleSettings {
    /// Checks `listen` and `url` together.
    pub fn validate(&mut self) -> Result<(), String> {
        match (self.listen, &self.url) {
            (None, Some(_)) => Err("console.url goes with console.listen".into()),
            (None, None) => Ok(()),
            (Some(addr), url) => {
                let url = url
                    .clone()
                    .unwrap_or_else(|| format!("http://{addr}"))
                    .trim_end_matches('/')
                    .to_string();
                let parsed = url::Url::parse(&url).map_err(|e| format!("console.url: {e}"))?;
                let loopback = match parsed.host() {
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    _ => false,
                };
                let ok = parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback);
                let plain = parsed.username().is_empty() && parsed.password().is_none();
                if !ok
                    || !plain
                    || parsed.query().is_some()
                    || parsed.fragment().is_some()
                    || parsed.path() != "/"
                {
                    return Err(
                        "console.url must be https://HOST[:PORT] (or http on a loopback address), without a path".into(),
                    );
                }
                // As browsers send it in `Origin`: lower-case host, no default port.
                self.url = Some(parsed.origin().ascii_serialization());
                Ok(())
            }
        }
    }
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            enabled: true,
            idle_timeout: 15 * 60,
            session_ttl: 8 * 3600,
            listen: None,
            url: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ConsoleSettings;

    fn with(listen: Option<&str>, url: Option<&str>) -> Result<Option<String>, String> {
        let mut c = ConsoleSettings {
            listen: listen.map(|l| l.parse().unwrap()),
            url: url.map(str::to_string),
            ..Default::default()
        };
        c.validate().map(|()| c.url)
    }

    #[test]
    fn a_listener_of_its_own_has_an_address_browsers_reach() {
        assert_eq!(with(None, None), Ok(None));
        assert_eq!(
            with(Some("127.0.0.1:9444"), None),
            Ok(Some("http://127.0.0.1:9444".into()))
        );
        assert_eq!(
            with(Some("10.0.0.5:9444"), Some("https://admin.example.com/")),
            Ok(Some("https://admin.example.com".into()))
        );
        assert_eq!(
            with(Some("10.0.0.5:9444"), Some("https://Admin.Example.com:443")),
            Ok(Some("https://admin.example.com".into())),
            "as browsers send it in Origin"
        );
        for (listen, url) in [
            (None, Some("https://admin.example.com")),
            (Some("10.0.0.5:9444"), None),
            (Some("10.0.0.5:9444"), Some("http://admin.example.com")),
            (Some("127.0.0.1:9444"), Some("https://admin.example.com/console")),
            (Some("127.0.0.1:9444"), Some("not a url")),
            (Some("127.0.0.1:9444"), Some("https://user@admin.example.com")),
        ] {
            assert!(with(listen, url).is_err(), "{listen:?} {url:?}");
        }
    }
}
