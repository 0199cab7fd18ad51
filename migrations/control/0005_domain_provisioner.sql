-- Who provisioned a domain through the API: `key:<id>` for an API key,
-- `jwt:<subject>` or `header:<subject>` for an identity; NULL for `vnext init`
-- and open development runs. `app.max_domains_per_key` counts these rows.
ALTER TABLE domains ADD COLUMN provisioned_by text;
CREATE INDEX domains_by_provisioner ON domains (provisioned_by) WHERE provisioned_by IS NOT NULL;
