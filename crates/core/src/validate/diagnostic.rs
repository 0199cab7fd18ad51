//! What a validation finding looks like, and the JSON pointers that locate it.

use std::fmt;

use serde::Serialize;

/// One problem found in a component, located precisely enough to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostic {
    /// The file the component came from, when it came from a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The component as `flow/key@version`, e.g. `sys-flows/payment@1.0.0`,
    /// when the envelope names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// RFC 6901 JSON pointer into the component document (`""` is the whole document).
    pub pointer: String,
    /// Stable machine-readable code, e.g. `workflow.state.duplicate-key`; see [`super::codes`].
    pub code: &'static str,
    /// What is wrong and what to do about it, naming the offending value.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    /// `file: pointer: message [code]`; the component stands in for a missing file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        } else if let Some(component) = &self.component {
            write!(f, "{component}: ")?;
        }
        let pointer = if self.pointer.is_empty() {
            "(document)"
        } else {
            &self.pointer
        };
        write!(f, "{pointer}: {} [{}]", self.message, self.code)
    }
}

/// An RFC 6901 JSON pointer under construction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ptr(String);

impl Ptr {
    pub(crate) fn root() -> Ptr {
        Ptr(String::new())
    }

    /// The pointer to member `name` of the object this pointer designates.
    pub(crate) fn key(&self, name: &str) -> Ptr {
        let escaped = name.replace('~', "~0").replace('/', "~1");
        Ptr(format!("{}/{escaped}", self.0))
    }

    /// The pointer to element `index` of the array this pointer designates.
    pub(crate) fn idx(&self, index: usize) -> Ptr {
        Ptr(format!("{}/{index}", self.0))
    }

    /// Appends a pointer that is already escaped (e.g. one reported by another
    /// library for a document nested at this pointer).
    pub(crate) fn join(&self, escaped: &str) -> Ptr {
        Ptr(format!("{}{escaped}", self.0))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ptr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Collects diagnostics for one component, stamping each with its file and name.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    pub(crate) file: Option<String>,
    pub(crate) component: Option<String>,
    pub(crate) out: Vec<Diagnostic>,
}

impl Sink {
    pub(crate) fn new(file: Option<&str>) -> Sink {
        Sink {
            file: file.map(str::to_string),
            component: None,
            out: Vec::new(),
        }
    }

    pub(crate) fn report(&mut self, pointer: &Ptr, code: &'static str, message: impl Into<String>) {
        self.out.push(Diagnostic {
            file: self.file.clone(),
            component: self.component.clone(),
            pointer: pointer.as_str().to_string(),
            code,
            message: message.into(),
        });
    }

    /// The component's name for messages that must name it.
    pub(crate) fn component_name(&self) -> &str {
        self.component.as_deref().unwrap_or("this component")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape_tilde_and_slash() {
        let p = Ptr::root().key("attributes").key("a/b~c").idx(3);
        assert_eq!(p.as_str(), "/attributes/a~1b~0c/3");
    }

    #[test]
    fn display_prefers_file_then_component() {
        let mut d = Diagnostic {
            file: Some("Workflows/pay.json".into()),
            component: Some("sys-flows/pay@1.0.0".into()),
            pointer: "/attributes/states/0".into(),
            code: "workflow.state.duplicate-key",
            message: "state key `a` is used twice".into(),
        };
        assert_eq!(
            d.to_string(),
            "Workflows/pay.json: /attributes/states/0: state key `a` is used twice [workflow.state.duplicate-key]"
        );
        d.file = None;
        d.pointer.clear();
        assert!(
            d.to_string()
                .starts_with("sys-flows/pay@1.0.0: (document): ")
        );
    }
}
