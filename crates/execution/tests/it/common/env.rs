//! A private control database and database prefix (`t<8 hex>_`) per test, so
//! domains provisioned through the real registry never meet another test's.
//! Every database and role under the prefix is dropped when the guard goes.

use vnext_core::ident::DomainName;
use vnext_init::config::Config;
use vnext_init::db::Databases;
use vnext_init::provision;
use vnext_testkit::db::Scratch;

pub struct TestEnv {
    pub config: Config,
    pub dbs: Databases,
    /// The prefix's databases and roles, dropped with the environment.
    scratch: Scratch,
}

impl TestEnv {
    pub async fn new() -> TestEnv {
        let base = Config::load(None).expect("configuration");
        let scratch = Scratch::new(&base.database.url).await;
        let mut config = base;
        config.database.url = scratch.control_url();
        config.database.database_prefix = scratch.prefix.clone();
        let dbs = Databases::connect(&config).await.expect("connect");
        TestEnv { config, dbs, scratch }
    }

    /// Registers and provisions a domain through the real provisioning path.
    pub async fn provision(&self, name: &str) -> DomainName {
        let domain = DomainName::new(name).unwrap();
        provision::provision_domain(&self.dbs, &domain).await.expect("provision");
        domain
    }
}
