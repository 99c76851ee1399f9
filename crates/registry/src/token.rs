//! The distribution token flow
//! (<https://distribution.github.io/distribution/spec/auth/token/>): a
//! registry's 401 names a token server (`realm`); berth asks it for a
//! token per scope — with the user's password (`GET`, basic auth) or, once
//! `login` got one, a refresh token (OAuth2 `POST`, `grant_type=
//! refresh_token`) — and reuses each until shortly before it expires.

use std::time::{Duration, Instant};

use crate::auth::{Challenge, Credentials};
use crate::client::{encode, read_small, status_error, unauthorized, Payload, Registry};
use crate::error::{RegistryError, Result};

/// Who berth says it is to token servers (OAuth2's `client_id`).
const CLIENT_ID: &str = "berth";
/// A token lives this long when its server does not say (the spec's
/// default).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);
/// A token this close to its end is not reused: the request it would go
/// with (a long upload) must not outlive it.
const LEEWAY: Duration = Duration::from_secs(10);

/// A token and when to stop using it.
#[derive(Debug, Clone)]
pub(crate) struct CachedToken {
    token: String,
    until: Instant,
}

/// What a token server answered.
#[derive(Debug, Clone, Default)]
pub struct TokenAnswer {
    pub token: String,
    pub lifetime: Duration,
    /// Given to an offline (`login`) request: kept by the client as its
    /// identity token, used instead of the password from then on.
    pub refresh_token: Option<String>,
}

#[derive(serde::Deserialize)]
struct Answer {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: u64,
    #[serde(default)]
    refresh_token: String,
}

impl Registry {
    /// The Authorization header for `scope`, fetching a token when the
    /// registry's challenge asks for one and none is fresh (`refresh`:
    /// the registry refused the one we had).
    pub(crate) fn authorization(&self, scope: &str, refresh: bool) -> Result<Option<String>> {
        let challenge = crate::lock(&self.challenge).clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.creds.as_ref().map(Credentials::basic)),
            Some(Challenge::Bearer { realm, service }) => {
                let mut tokens = crate::lock(&self.tokens);
                match tokens.get(scope) {
                    Some(t) if !refresh && Instant::now() < t.until => {
                        return Ok(Some(format!("Bearer {}", t.token)));
                    }
                    _ => {}
                }
                let a = self.fetch_token(&realm, &service, scope, false)?;
                let until = Instant::now() + a.lifetime.saturating_sub(LEEWAY);
                let header = format!("Bearer {}", a.token);
                tokens.insert(
                    scope.to_owned(),
                    CachedToken {
                        token: a.token,
                        until,
                    },
                );
                Ok(Some(header))
            }
        }
    }

    /// A token for `scope` (scopes separated by spaces; none for a
    /// login): by the refresh token when the credentials are one, else
    /// with the password, asking for a refresh token when `offline`.
    pub(crate) fn fetch_token(
        &self,
        realm: &str,
        service: &str,
        scope: &str,
        offline: bool,
    ) -> Result<TokenAnswer> {
        // A refresh token the server rotated replaces the one logged in.
        let refresh = crate::lock(&self.refresh_token)
            .clone()
            .or_else(|| self.creds.as_ref().and_then(|c| c.identity_token.clone()));
        let refreshing = refresh.is_some();
        let mut r = match refresh {
            Some(refresh) => self.refresh_request(realm, service, scope, &refresh)?,
            None => self.password_request(realm, service, scope, offline)?,
        };
        // OAuth2 answers a refused refresh token with 400 (invalid_grant).
        let refused = matches!(r.status().as_u16(), 401 | 403) || (refreshing && r.status() == 400);
        if refused {
            return Err(unauthorized(&self.name, self.creds.is_some()));
        }
        if !r.status().is_success() {
            let method = if refreshing { "POST" } else { "GET" };
            return Err(status_error(method, realm, &mut r));
        }
        let a: Answer = serde_json::from_slice(&read_small(&mut r, realm)?)
            .map_err(|e| RegistryError::Invalid(format!("the token from {realm}: {e}")))?;
        let token = if a.token.is_empty() {
            a.access_token
        } else {
            a.token
        };
        if token.is_empty() {
            return Err(RegistryError::Invalid(format!("{realm} answered no token")));
        }
        Ok(TokenAnswer {
            token,
            lifetime: match a.expires_in {
                0 => DEFAULT_LIFETIME,
                s => Duration::from_secs(s),
            },
            refresh_token: Some(a.refresh_token)
                .filter(|t| !t.is_empty())
                .inspect(|t| {
                    if refreshing {
                        *crate::lock(&self.refresh_token) = Some(t.clone());
                    }
                }),
        })
    }

    /// `GET realm?service=…&scope=…` with basic auth (anonymous without
    /// credentials); several scopes as several parameters.
    fn password_request(
        &self,
        realm: &str,
        service: &str,
        scope: &str,
        offline: bool,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let sep = if realm.contains('?') { '&' } else { '?' };
        let mut url = format!("{realm}{sep}service={}", encode(service));
        for one in scope.split(' ').filter(|s| !s.is_empty()) {
            url.push_str(&format!("&scope={}", encode(one)));
        }
        if offline {
            url.push_str(&format!("&offline_token=true&client_id={CLIENT_ID}"));
        }
        let basic = self.creds.as_ref().map(Credentials::basic);
        self.raw("GET", &url, &[], basic.as_deref(), &mut Payload::None)
    }

    /// The OAuth2 refresh-token grant: a form `POST` to the realm.
    fn refresh_request(
        &self,
        realm: &str,
        service: &str,
        scope: &str,
        refresh: &str,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let form = format!(
            "grant_type=refresh_token&refresh_token={}&service={}&scope={}&client_id={CLIENT_ID}",
            encode(refresh),
            encode(service),
            encode(scope)
        );
        let mut body = Payload::Bytes(form.as_bytes(), "application/x-www-form-urlencoded");
        self.raw("POST", realm, &[], None, &mut body)
    }
}
