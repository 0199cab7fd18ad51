//! References from one component to another: complete, of the right flow, and
//! resolvable to a known version.

use super::checker::Checker;
use super::codes;
use super::diagnostic::Ptr;
use crate::model::{ComponentKind, ExplicitReference, Reference};
use crate::version::VersionSelector;

impl Checker<'_> {
    /// Checks that `reference` (found at `pointer`, used as `what`, e.g. "task")
    /// resolves to a component of `expected` kind.
    pub(crate) fn reference(
        &mut self,
        pointer: &Ptr,
        reference: &Reference,
        expected: ComponentKind,
        what: &str,
    ) {
        match reference {
            Reference::File { path } => self.file_reference(pointer, path, expected, what),
            Reference::Explicit(r) => self.explicit_reference(pointer, r, expected, what),
        }
    }

    fn file_reference(&mut self, pointer: &Ptr, path: &str, expected: ComponentKind, what: &str) {
        let Some(files) = self.files else {
            self.report(pointer, codes::REFERENCE_FILE_OUTSIDE_PACKAGE, format!(
                "{what} reference {{\"ref\": \"{path}\"}} names a package file, but this component is validated on its own; \
                 use an explicit reference {{\"key\", \"domain\", \"flow\": \"{}\", \"version\"}} or validate the whole package folder",
                expected.flow()
            ));
            return;
        };
        let from = self.sink.file.clone();
        match files.resolve(from.as_deref(), path) {
            None => self.report(pointer, codes::REFERENCE_FILE_NOT_FOUND, format!(
                "{what} reference {{\"ref\": \"{path}\"}} names no file of this package ({} files); paths are relative to the package root, e.g. \"Tasks/send-mail.json\"",
                files.len()
            )),
            Some(entry) if entry.kind != Some(expected) => {
                let found = entry.label.clone().unwrap_or_else(|| "no component".to_string());
                self.report(pointer, codes::REFERENCE_WRONG_FLOW, format!(
                    "{what} reference {{\"ref\": \"{path}\"}} points at {} which holds {found}; a {what} must be a {} component",
                    entry.path,
                    expected.flow()
                ));
            }
            Some(_) => {}
        }
    }

    fn explicit_reference(
        &mut self,
        pointer: &Ptr,
        r: &ExplicitReference,
        expected: ComponentKind,
        what: &str,
    ) {
        let Some(key) = r.key.as_deref().filter(|k| !k.is_empty()) else {
            if let Some(id) = &r.id {
                self.report(pointer, codes::REFERENCE_BY_ID, format!(
                    "{what} reference names its component by id `{id}`, which cannot be resolved; name it by `key`"
                ));
            } else {
                self.report(
                    pointer,
                    codes::REFERENCE_INCOMPLETE,
                    format!("{what} reference has no `key`"),
                );
            }
            return;
        };
        let mut missing = Vec::new();
        if r.domain.is_empty() {
            missing.push("`domain`");
        }
        if r.flow.is_empty() {
            missing.push("`flow`");
        }
        if r.version.is_empty() {
            missing.push("`version`");
        }
        if !missing.is_empty() {
            self.report(pointer, codes::REFERENCE_INCOMPLETE, format!(
                "{what} reference to `{key}` lacks {}; write {{\"key\": \"{key}\", \"domain\": ..., \"flow\": \"{}\", \"version\": \"1.0.0\" | \"latest\" | \"1\" | \"1.0\"}}",
                missing.join(" and "),
                expected.flow()
            ));
            return;
        }
        if r.flow != expected.flow() {
            self.report(
                &pointer.key("flow"),
                codes::REFERENCE_WRONG_FLOW,
                format!(
                    "{what} reference to `{key}` names flow `{}`; a {what} must be a {} component",
                    r.flow,
                    expected.flow()
                ),
            );
            return;
        }
        let Some(selector) = VersionSelector::parse(&r.version) else {
            self.report(&pointer.key("version"), codes::REFERENCE_VERSION_INVALID, format!(
                "{what} reference to `{key}` has version `{}`; use an exact version (1.2.3), `latest`, a major (1) or major.minor (1.2)",
                r.version
            ));
            return;
        };
        let known = self.catalog.versions(expected, &r.domain, key);
        if selector.pick(known.iter().map(String::as_str)).is_some() {
            return;
        }
        let message = if known.is_empty() {
            format!(
                "{what} reference to {}/{key} (domain `{}`) resolves to nothing: no such component is in the package or published",
                expected.flow(),
                r.domain
            )
        } else {
            let mut versions = known.clone();
            versions.sort();
            format!(
                "{what} reference to {}/{key} (domain `{}`) asks for version `{}`, but only {} exist",
                expected.flow(),
                r.domain,
                r.version,
                versions.join(", ")
            )
        };
        self.report(pointer, codes::REFERENCE_UNRESOLVED, message);
    }
}
