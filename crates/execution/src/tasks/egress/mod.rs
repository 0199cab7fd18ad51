//! The egress guard: where an HTTP task may connect.
//!
//! A task's URL must use an allowed scheme and name an allowed host
//! (`[egress]`, per domain in `[egress.domains.<domain>]`). Every address the
//! host stands for must be public, or loopback/private with that allowed, or
//! inside an allowed network; and the runtime's own ports (app and execution)
//! on any local address are refused whatever is allowed, so a task can never
//! call the runtime's own API.
//!
//! The check happens where the connection is made, not beside it: the client
//! that sends the request resolves names through [`client::GuardedResolver`],
//! which refuses the whole answer when one address is not allowed, and the
//! connection goes to the addresses it returned, so a name cannot resolve one
//! way for the check and another for the connection. IP literals never reach a
//! resolver and are checked up front, with the port. Redirects run the same
//! checks on every hop. Proxy settings from the environment are ignored by
//! these clients: a proxy would resolve names out of the guard's sight.

mod address;
mod client;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;
use reqwest::Url;
use vnext_init::config::Config;
use vnext_init::config::egress::{EgressConfig, EgressOverride};

pub use address::{AddressClass, classify, embedded_v4};

/// The error code of a task refused by the guard. Never retryable: the same
/// URL is refused again.
pub const DENIED_CODE: &str = "Task:egress-denied";

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host `{host}` is not allowed: {reason}")]
pub struct EgressDenied {
    pub host: String,
    pub reason: String,
}

impl EgressDenied {
    fn new(host: &str, reason: impl Into<String>) -> Self {
        Self { host: host.to_string(), reason: reason.into() }
    }
}

/// The runtime's own listen ports and the addresses it listens on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnEndpoints {
    ports: Vec<u16>,
    ips: Vec<IpAddr>,
}

impl OwnEndpoints {
    /// The ports (and listen addresses) of `app.listen`, `app.url`,
    /// `app.internal_listen`, `app.internal_url`, `execution.listen` and
    /// `execution.url`.
    pub fn from_config(config: &Config) -> Self {
        let mut own = Self::default();
        for listen in [&config.app.listen, &config.app.internal_listen, &config.execution.listen] {
            if let Ok(addr) = SocketAddr::from_str(listen) {
                own.add(addr);
            } else if let Some((_, port)) = listen.rsplit_once(':')
                && let Ok(port) = port.parse()
            {
                own.add_port(port);
            }
        }
        for url in [&config.app.url, &config.app.internal_url, &config.execution.url] {
            if let Ok(url) = Url::parse(url) {
                if let Some(port) = url.port_or_known_default() {
                    own.add_port(port);
                }
                if let Some(ip) = url.host_str().and_then(parse_ip_host) {
                    own.add_ip(ip);
                }
            }
        }
        own
    }

    /// Adds a bound address (a listener on port 0 learns its port late).
    pub fn add(&mut self, addr: SocketAddr) {
        self.add_port(addr.port());
        self.add_ip(addr.ip());
    }

    fn add_port(&mut self, port: u16) {
        if port != 0 && !self.ports.contains(&port) {
            self.ports.push(port);
        }
    }

    fn add_ip(&mut self, ip: IpAddr) {
        if !ip.is_unspecified() && !self.ips.contains(&ip) {
            self.ips.push(ip);
        }
    }

    fn has_port(&self, port: u16) -> bool {
        self.ports.contains(&port)
    }
}

/// One set of rules: the global ones or a domain's.
#[derive(Debug)]
pub(crate) struct Policy {
    schemes: Vec<String>,
    /// Empty: any host.
    hosts: Vec<HostRule>,
    networks: Vec<IpNet>,
    loopback: bool,
    private: bool,
}

#[derive(Debug)]
enum HostRule {
    Any,
    Name(String),
    /// `*.example.com` as `.example.com`: subdomains only.
    Suffix(String),
    Net(IpNet),
}

impl Policy {
    fn build(
        schemes: &[String],
        hosts: &[String],
        networks: &[String],
        loopback: bool,
        private: bool,
        what: &str,
    ) -> Result<Self, String> {
        let schemes = schemes
            .iter()
            .map(|s| {
                let s = s.trim().to_ascii_lowercase();
                if matches!(s.as_str(), "http" | "https") {
                    Ok(s)
                } else {
                    Err(format!("{what}.allow_schemes: `{s}` is not one of http, https"))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let hosts = hosts.iter().map(|h| host_rule(h).map_err(|e| format!("{what}.allow_hosts: {e}"))).collect::<Result<_, _>>()?;
        let networks = networks
            .iter()
            .map(|n| parse_net(n).ok_or_else(|| format!("{what}.allow_networks: `{n}` is not an address or CIDR block")))
            .collect::<Result<_, _>>()?;
        Ok(Self { schemes, hosts, networks, loopback, private })
    }

    fn allows_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.is_empty()
            || self.hosts.iter().any(|r| match r {
                HostRule::Any => true,
                HostRule::Name(n) => *n == name,
                HostRule::Suffix(s) => name.ends_with(s.as_str()),
                HostRule::Net(_) => false,
            })
    }

    fn allows_ip_host(&self, ip: IpAddr) -> bool {
        self.hosts.is_empty()
            || self.hosts.iter().any(|r| match r {
                HostRule::Any => true,
                HostRule::Net(n) => net_contains(n, ip),
                HostRule::Name(_) | HostRule::Suffix(_) => false,
            })
    }

    /// Whether `ip` may be connected to. `to_own_port`: the port is one of the
    /// runtime's own, so only public addresses other than its own will do.
    pub(crate) fn check_ip(&self, ip: IpAddr, to_own_port: bool, own: &OwnEndpoints) -> Result<(), String> {
        let class = classify(ip);
        if to_own_port && (class != AddressClass::Public || own.ips.iter().any(|o| same_ip(*o, ip))) {
            return Err(format!("{ip} on this port is the runtime itself, which tasks may never call"));
        }
        if class == AddressClass::Public || self.networks.iter().any(|n| net_contains(n, ip)) {
            return Ok(());
        }
        match class {
            AddressClass::Loopback if self.loopback => Ok(()),
            AddressClass::Private | AddressClass::SharedNat if self.private => Ok(()),
            _ => Err(format!("{ip} is a {} address", class.name())),
        }
    }

    /// Scheme, host and (for IP literals) address of a URL. Returns whether
    /// the URL's port is one of the runtime's own.
    pub(crate) fn check_url(&self, url: &Url, own: &OwnEndpoints) -> Result<bool, EgressDenied> {
        let host = url.host_str().unwrap_or_default();
        if !self.schemes.iter().any(|s| s == url.scheme()) {
            return Err(EgressDenied::new(host, format!("scheme `{}` is not in allow_schemes", url.scheme())));
        }
        let port = url.port_or_known_default().unwrap_or(0);
        let to_own_port = own.has_port(port);
        match parse_ip_host(host) {
            Some(ip) => {
                if !self.allows_ip_host(ip) {
                    return Err(EgressDenied::new(host, "not in allow_hosts"));
                }
                self.check_ip(ip, to_own_port, own).map_err(|reason| EgressDenied::new(host, reason))?;
            }
            None if host.is_empty() => return Err(EgressDenied::new(host, "the URL has no host")),
            None if !self.allows_name(host) => return Err(EgressDenied::new(host, "not in allow_hosts")),
            None => {}
        }
        Ok(to_own_port)
    }
}

/// The guard: the global policy, the domains' own, and the clients that
/// enforce them.
#[derive(Clone)]
pub struct EgressGuard {
    inner: Arc<Inner>,
}

struct Inner {
    /// `[0]` is the global policy.
    policies: Vec<Arc<Policy>>,
    domains: HashMap<String, usize>,
    own: Arc<OwnEndpoints>,
    clients: Mutex<HashMap<Route, reqwest::Client>>,
}

/// Which client a checked URL is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Route {
    policy: usize,
    /// The URL's port is one of the runtime's own: the resolver accepts only
    /// public addresses.
    own_port: bool,
    validate_ssl: bool,
}

impl EgressGuard {
    /// The guard of `config.egress`. `development`: this is `vnext up` (an
    /// `allow_loopback = "auto"` then allows loopback when the API listens on
    /// a loopback address).
    ///
    /// # Errors
    /// A message naming the entry that cannot be read.
    pub fn from_config(config: &Config, development: bool, own: OwnEndpoints) -> Result<Self, String> {
        let dev = development && listens_on_loopback(&config.app.listen);
        let e: &EgressConfig = &config.egress;
        let global = Policy::build(
            &e.allow_schemes,
            &e.allow_hosts,
            &e.allow_networks,
            e.allow_loopback.allowed(dev),
            e.allow_private,
            "egress",
        )?;
        let mut policies = vec![Arc::new(global)];
        let mut domains = HashMap::new();
        for (domain, o) in &e.domains {
            let EgressOverride { allow_schemes, allow_hosts, allow_networks, allow_private, allow_loopback } = o;
            let policy = Policy::build(
                allow_schemes.as_ref().unwrap_or(&e.allow_schemes),
                allow_hosts.as_ref().unwrap_or(&e.allow_hosts),
                allow_networks.as_ref().unwrap_or(&e.allow_networks),
                allow_loopback.unwrap_or(e.allow_loopback).allowed(dev),
                allow_private.unwrap_or(e.allow_private),
                &format!("egress.domains.{domain}"),
            )?;
            domains.insert(domain.clone(), policies.len());
            policies.push(Arc::new(policy));
        }
        Ok(Self::with(policies, domains, own))
    }

    /// Public hosts only (the default configuration outside development).
    pub fn public_only() -> Self {
        Self::simple(false)
    }

    /// Public hosts and loopback, with no own ports known: for tests and tools
    /// that run HTTP tasks against a server on this machine.
    pub fn allowing_loopback() -> Self {
        Self::simple(true)
    }

    fn simple(loopback: bool) -> Self {
        let policy = Policy { schemes: vec!["http".into(), "https".into()], hosts: Vec::new(), networks: Vec::new(), loopback, private: false };
        Self::with(vec![Arc::new(policy)], HashMap::new(), OwnEndpoints::default())
    }

    fn with(policies: Vec<Arc<Policy>>, domains: HashMap<String, usize>, own: OwnEndpoints) -> Self {
        Self { inner: Arc::new(Inner { policies, domains, own: Arc::new(own), clients: Mutex::default() }) }
    }

    /// Checks a task's URL for `domain` and returns the client to send it
    /// with, which checks every address it connects to and every redirect.
    ///
    /// # Errors
    /// [`EgressDenied`] when the URL is refused up front.
    pub fn client_for(&self, domain: &str, url: &Url, validate_ssl: bool) -> Result<reqwest::Client, EgressDenied> {
        let policy = self.inner.domains.get(domain).copied().unwrap_or(0);
        let own_port = self.inner.policies[policy].check_url(url, &self.inner.own)?;
        let route = Route { policy, own_port, validate_ssl };
        let mut clients = self.inner.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let client = clients
            .entry(route)
            .or_insert_with(|| client::build(self.inner.policies[policy].clone(), self.inner.own.clone(), route));
        Ok(client.clone())
    }
}

impl Default for EgressGuard {
    fn default() -> Self {
        Self::public_only()
    }
}

/// The refusal behind a failed request, if the guard refused it (in the
/// resolver or the redirect policy).
pub fn denial(error: &(dyn std::error::Error + 'static)) -> Option<EgressDenied> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(d) = e.downcast_ref::<EgressDenied>() {
            return Some(d.clone());
        }
        current = e.source();
    }
    None
}

fn listens_on_loopback(listen: &str) -> bool {
    match SocketAddr::from_str(listen) {
        Ok(addr) => addr.ip().is_loopback(),
        Err(_) => listen.rsplit_once(':').is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost")),
    }
}

fn host_rule(entry: &str) -> Result<HostRule, String> {
    let e = entry.trim().trim_end_matches('.').to_ascii_lowercase();
    if e == "*" {
        return Ok(HostRule::Any);
    }
    if let Some(net) = parse_net(&e) {
        return Ok(HostRule::Net(net));
    }
    let (suffix, name) = match e.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, e.as_str()),
    };
    let valid = !name.is_empty()
        && name.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    match (valid, suffix) {
        (false, _) => Err(format!("`{entry}` is not a host name, `*.` wildcard, address or CIDR block")),
        (true, true) => Ok(HostRule::Suffix(format!(".{name}"))),
        (true, false) => Ok(HostRule::Name(name.to_string())),
    }
}

fn parse_net(text: &str) -> Option<IpNet> {
    let t = text.trim();
    IpNet::from_str(t).ok().or_else(|| parse_ip_host(t).map(IpNet::from))
}

/// An IP host as a URL carries it (`[::1]` bracketed).
fn parse_ip_host(host: &str) -> Option<IpAddr> {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    IpAddr::from_str(bare).ok()
}

/// Contains `ip`, or the IPv4 address an IPv6 form of it carries.
fn net_contains(net: &IpNet, ip: IpAddr) -> bool {
    net.contains(&ip) || v4_of(ip).is_some_and(|v4| net.contains(&IpAddr::V4(v4)))
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    v4_of(a).zip(v4_of(b)).map_or(a == b, |(x, y)| x == y)
}

fn v4_of(ip: IpAddr) -> Option<std::net::Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => embedded_v4(v6),
    }
}
