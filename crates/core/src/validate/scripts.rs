//! Scripts: each decodes, is rhai (never C#), compiles, and defines the hook
//! function its position calls (ARCHITECTURE.md §5).

use super::checker::Checker;
use super::codes;
use super::diagnostic::Ptr;
use crate::model::ScriptCode;
use crate::script::ScriptError;

/// Which function a script must define, by where it sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hook {
    /// Auto-transition rules, timer scripts, transition mappings, view rules: `fn handler(ctx)`.
    Handler,
    /// Task entry mappings: `fn input(ctx)` and/or `fn output(ctx)`, at least one.
    TaskMapping,
    /// Subflow mappings: `fn input(ctx)` and/or `fn output(ctx)`, at least one.
    SubFlowMapping,
    /// Positions without a fixed hook: the script only has to compile.
    Compile,
}

impl Hook {
    fn required(self) -> &'static [&'static str] {
        match self {
            Hook::Handler => &["handler"],
            Hook::TaskMapping | Hook::SubFlowMapping => &["input", "output"],
            Hook::Compile => &[],
        }
    }

    fn wanted(self) -> &'static str {
        match self {
            Hook::Handler => "`fn handler(ctx)`",
            Hook::TaskMapping => {
                "`fn input(ctx)` (config for the task) and/or `fn output(ctx)` (data from its response)"
            }
            Hook::SubFlowMapping => {
                "`fn input(ctx)` (the child's start body) and/or `fn output(ctx)` (what merges back)"
            }
            Hook::Compile => "rhai code",
        }
    }
}

impl Checker<'_> {
    /// Checks the script at `pointer`; `what` names its role in messages
    /// (e.g. "rule of transition `approve`").
    pub(crate) fn script(&mut self, pointer: &Ptr, code: &ScriptCode, hook: Hook, what: &str) {
        let location = code
            .location
            .clone()
            .unwrap_or_else(|| "(inline code)".to_string());
        if code.is_global() {
            if is_csharp_location(&location) {
                self.csharp(pointer, &location, hook, what);
            } else {
                self.report(pointer, codes::SCRIPT_GLOBAL_UNSUPPORTED, format!(
                    "{what} is a global script (type G, {location}); this runtime has no built-in global scripts: write the rhai code inline with {}",
                    hook.wanted()
                ));
            }
            return;
        }
        let compiled = match self.scripts.compile(code) {
            Ok(compiled) => compiled,
            Err(ScriptError::CSharp { location }) => {
                return self.csharp(pointer, &location, hook, what);
            }
            Err(ScriptError::Reference) => {
                return self.report(pointer, codes::SCRIPT_REF_UNSUPPORTED, format!(
                    "{what} uses encoding REF (a shared C# mapping); this runtime runs rhai only: inline the rhai code with encoding B64 or NAT"
                ));
            }
            Err(
                e @ (ScriptError::MissingCode | ScriptError::BadBase64(_) | ScriptError::NotUtf8),
            ) => {
                let at = if code.code.is_some() {
                    pointer.key("code")
                } else {
                    pointer.clone()
                };
                return self.report(
                    &at,
                    codes::SCRIPT_DECODE,
                    format!("{what} ({location}) cannot be decoded: {e}"),
                );
            }
            Err(e) => {
                return self.report(
                    pointer,
                    codes::SCRIPT_SYNTAX,
                    format!("{what} ({location}) does not compile as rhai: {e}"),
                );
            }
        };
        let required = hook.required();
        if !required.is_empty() && !required.iter().any(|f| compiled.has_function(f)) {
            self.report(
                pointer,
                codes::SCRIPT_MISSING_FUNCTION,
                format!("{what} ({location}) must define {}", hook.wanted()),
            );
        }
    }

    fn csharp(&mut self, pointer: &Ptr, location: &str, hook: Hook, what: &str) {
        let component = self.sink.component_name().to_string();
        self.report(pointer, codes::SCRIPT_CSHARP, format!(
            "{what} in {component} at {pointer} is C# ({location}); this runtime requires rhai: rewrite it as a .rhai script defining {}",
            hook.wanted()
        ));
    }
}

fn is_csharp_location(location: &str) -> bool {
    let lower = location.to_ascii_lowercase();
    lower.ends_with(".csx") || lower.ends_with(".cs")
}
