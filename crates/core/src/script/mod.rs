//! The rhai script host: mappings, rules and timers (ARCHITECTURE.md §5).
//!
//! Scripts arrive in the vNext `scriptCode` envelope. [`decode_source`] turns it
//! into source text (B64 or NAT) and refuses C#; [`ScriptHost::compile`] parses
//! it once into a [`CompiledScript`] that is cached with the definition.

use std::sync::Arc;

use base64::Engine as _;

use crate::model::{ScriptCode, ScriptEncoding};

/// Why a script could not be decoded, compiled or run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScriptError {
    #[error("script code is missing")]
    MissingCode,
    #[error("script code is not valid base64 (encoding B64): {0}")]
    BadBase64(String),
    #[error("script code is not UTF-8 text")]
    NotUtf8,
    #[error("script references a shared mapping (encoding REF), which this runtime does not support; inline the rhai code instead")]
    Reference,
    #[error("{location} is a C# script; this runtime runs rhai scripts (.rhai): rewrite it in rhai")]
    CSharp { location: String },
    #[error("rhai syntax error at line {line}, column {column}: {message}")]
    Syntax { message: String, line: usize, column: usize },
    #[error("script does not define `fn {0}(ctx)`")]
    MissingFunction(String),
    #[error("script error: {0}")]
    Runtime(String),
    #[error("script stopped: {0}")]
    Limit(String),
    #[error("script returned {got}, expected {expected}")]
    BadReturn { expected: String, got: String },
}

/// Returns the script's source text.
///
/// # Errors
/// [`ScriptError::CSharp`] when the location ends in `.csx` or the text looks like
/// C#; decoding errors otherwise.
pub fn decode_source(code: &ScriptCode) -> Result<String, ScriptError> {
    let location = code.location.clone().unwrap_or_else(|| "(inline script)".to_string());
    if location.to_ascii_lowercase().ends_with(".csx") || location.to_ascii_lowercase().ends_with(".cs") {
        return Err(ScriptError::CSharp { location });
    }
    let text = match code.encoding {
        ScriptEncoding::REF => return Err(ScriptError::Reference),
        ScriptEncoding::NAT => code.code.as_ref().and_then(|c| c.as_str()).ok_or(ScriptError::MissingCode)?.to_string(),
        ScriptEncoding::B64 => {
            let raw = code.code.as_ref().and_then(|c| c.as_str()).ok_or(ScriptError::MissingCode)?;
            let cleaned: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(cleaned.as_bytes())
                .map_err(|e| ScriptError::BadBase64(e.to_string()))?;
            String::from_utf8(bytes).map_err(|_| ScriptError::NotUtf8)?
        }
    };
    if looks_like_csharp(&text) {
        return Err(ScriptError::CSharp { location });
    }
    Ok(text)
}

/// C# scripts in vNext files open with `using` directives and declare a class
/// implementing one of the mapping interfaces.
fn looks_like_csharp(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with("using ")
        || t.contains("public class ")
        || t.contains("ScriptBase")
        || t.contains("Task<ScriptResponse>")
}

/// A parsed script, shared by every call.
#[derive(Debug, Clone)]
pub struct CompiledScript {
    pub(crate) ast: Arc<rhai::AST>,
}

impl CompiledScript {
    /// True when the script defines `fn name(ctx)` (one parameter).
    pub fn has_function(&self, name: &str) -> bool {
        self.ast.iter_functions().any(|f| f.name == name && f.params.len() == 1)
    }
}

/// The sandboxed rhai engine.
pub struct ScriptHost {
    engine: rhai::Engine,
}

impl Default for ScriptHost {
    fn default() -> Self {
        Self::new()
    }
}

impl ScriptHost {
    pub fn new() -> Self {
        let mut engine = rhai::Engine::new();
        // Explicit limits: rhai's defaults differ between debug and release builds.
        engine.set_max_expr_depths(128, 64);
        engine.set_max_call_levels(64);
        Self { engine }
    }

    /// Decodes and parses a script.
    ///
    /// # Errors
    /// Decoding errors from [`decode_source`], or [`ScriptError::Syntax`] with the
    /// line and column rhai reports.
    pub fn compile(&self, code: &ScriptCode) -> Result<CompiledScript, ScriptError> {
        let source = decode_source(code)?;
        self.compile_source(&source)
    }

    /// Parses source text.
    ///
    /// # Errors
    /// [`ScriptError::Syntax`] with the line and column rhai reports.
    pub fn compile_source(&self, source: &str) -> Result<CompiledScript, ScriptError> {
        let ast = self.engine.compile(source).map_err(|e| ScriptError::Syntax {
            message: e.err_type().to_string(),
            line: e.position().line().unwrap_or(0),
            column: e.position().position().unwrap_or(0),
        })?;
        Ok(CompiledScript { ast: Arc::new(ast) })
    }
}
