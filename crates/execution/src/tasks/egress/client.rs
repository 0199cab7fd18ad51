//! The HTTP clients that enforce a policy: a resolver that refuses names
//! standing for a disallowed address, and a redirect policy that checks every
//! hop. One client per (policy, own-port route, certificate checking), built
//! once and kept, so connections are pooled as before.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;

use super::{EgressDenied, OwnEndpoints, Policy, Route, parse_ip_host};
use crate::tasks::CONNECT_TIMEOUT;

/// Redirects followed at most, as reqwest's default policy.
const MAX_REDIRECTS: usize = 10;

/// Resolves with the system resolver, then refuses the whole answer when any
/// address in it is not allowed (a name that mixes public and internal
/// addresses is not to be trusted with either).
pub(super) struct GuardedResolver {
    policy: Arc<Policy>,
    own: Arc<OwnEndpoints>,
    own_port: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let (policy, own, own_port) = (self.policy.clone(), self.own.clone(), self.own_port);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(format!("`{host}` resolves to no address").into());
            }
            for a in &addrs {
                policy
                    .check_ip(a.ip(), own_port, &own)
                    .map_err(|reason| EgressDenied::new(&host, format!("a resolved address is refused: {reason}")))?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

pub(super) fn build(policy: Arc<Policy>, own: Arc<OwnEndpoints>, route: Route) -> reqwest::Client {
    let resolver = GuardedResolver { policy: policy.clone(), own: own.clone(), own_port: route.own_port };
    let redirects = redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        match check_hop(&policy, &own, route, attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(denied) => attempt.error(denied),
        }
    });
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .tls_danger_accept_invalid_certs(!route.validate_ssl)
        .user_agent(concat!("vnext-execution/", env!("CARGO_PKG_VERSION")))
        .no_proxy()
        .dns_resolver(resolver)
        .redirect(redirects)
        .build()
        .expect("the HTTP client's TLS backend initialises")
}

/// A redirect target gets the checks of a task URL. A named host on one of
/// the runtime's ports is refused outright unless this client already
/// resolves for such ports: the resolver of this client does not see ports.
fn check_hop(policy: &Policy, own: &OwnEndpoints, route: Route, url: &reqwest::Url) -> Result<(), EgressDenied> {
    let to_own_port = policy.check_url(url, own)?;
    let host = url.host_str().unwrap_or_default();
    if to_own_port && !route.own_port && parse_ip_host(host).is_none() {
        return Err(EgressDenied::new(host, "a redirect to one of the runtime's own ports"));
    }
    Ok(())
}
