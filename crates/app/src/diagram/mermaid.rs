//! The diagram as Mermaid flowchart text (for Markdown, wikis and the Mermaid live editor).

use std::fmt::Write;

use super::{Diagram, Mark, NodeKind};

/// Node ids are positions (`n0`, `n1`, …): state keys may hold characters Mermaid reads as syntax.
pub fn render(diagram: &Diagram) -> String {
    let mut out = String::from("flowchart TD\n");
    let id = |key: &str| diagram.nodes.iter().position(|n| n.key == key).map(|i| format!("n{i}"));
    for (i, node) in diagram.nodes.iter().enumerate() {
        let label = quote(&node.key);
        let shape = match node.kind {
            NodeKind::Start => format!("n{i}(({label}))"),
            NodeKind::Any => format!("n{i}{{{{{label}}}}}"),
            NodeKind::Final(_) => format!("n{i}((({label})))"),
            NodeKind::SubFlow => format!("n{i}[[{label}]]"),
            NodeKind::Wizard => format!("n{i}[/{label}/]"),
            NodeKind::Initial | NodeKind::Intermediate => format!("n{i}([{label}])"),
        };
        let _ = writeln!(out, "    {shape}:::{}", node.kind.class());
    }
    let mut taken = Vec::new();
    for (index, edge) in diagram.edges.iter().enumerate() {
        // An edge to a state the definition does not have is drawn to nowhere: skipped.
        let (Some(from), Some(to)) = (id(&edge.from), id(&edge.to)) else { continue };
        let arrow = match edge.trigger {
            "manual" => "-->",
            "timeout" => "-.->",
            _ => "==>",
        };
        let _ = writeln!(out, "    {from} {arrow}|{}| {to}", quote(&edge.label()));
        if edge.taken {
            taken.push(index.to_string());
        }
    }
    for node in &diagram.nodes {
        let class = match node.mark {
            Mark::Current => "current",
            Mark::Visited => "visited",
            Mark::None => continue,
        };
        if let Some(id) = id(&node.key) {
            let _ = writeln!(out, "    class {id} {class}");
        }
    }
    out.push_str("    classDef final stroke-width:3px\n");
    out.push_str("    classDef final-error stroke:#b00020,stroke-width:3px\n");
    out.push_str("    classDef visited fill:#e3f2fd\n");
    out.push_str("    classDef current fill:#ffd54f,stroke:#e65100,stroke-width:3px\n");
    if !taken.is_empty() {
        let _ = writeln!(out, "    linkStyle {} stroke:#1565c0,stroke-width:3px", taken.join(","));
    }
    out
}

/// A Mermaid string literal: quotes inside become `#quot;`.
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "#quot;"))
}
