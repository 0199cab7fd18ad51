//! The diagram as SVG, laid out by `layout-rs` (layered, with edge-crossing
//! reduction). Each state is a `<g class="state …" data-state="key">`, so a
//! page can style, find and click states; the current state has class `current`.

use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

use super::{Diagram, Mark, NodeKind, escape};

pub fn render(diagram: &Diagram) -> String {
    let mut graph = VisualGraph::new(Orientation::TopToBottom);
    let handles: Vec<_> = diagram
        .nodes
        .iter()
        .map(|node| {
            let shape = match node.kind {
                NodeKind::Start => ShapeKind::new_circle(&node.key),
                NodeKind::Final(_) => ShapeKind::new_double_circle(&node.key),
                _ => ShapeKind::new_box(&node.key),
            };
            let fill = match node.mark {
                Mark::Current => "#ffd54f",
                Mark::Visited => "#e3f2fd",
                Mark::None => match node.kind {
                    NodeKind::Start | NodeKind::Any => "#eeeeee",
                    NodeKind::Final(Some(2)) => "#ffcdd2",
                    NodeKind::SubFlow | NodeKind::Wizard => "#ede7f6",
                    _ => "#ffffff",
                },
            };
            let line = if node.mark == Mark::Current { "#e65100" } else { "#37474f" };
            let width = if node.mark == Mark::Current { 4 } else { 2 };
            let rounded = if matches!(node.kind, NodeKind::Initial | NodeKind::Intermediate) { 12 } else { 0 };
            let look = StyleAttr::new(color(line), width, Some(color(fill)), rounded, 14);
            let size = layout::std_shapes::render::get_shape_size(Orientation::TopToBottom, &shape, 14, false);
            let mark = match node.mark {
                Mark::Current => " current",
                Mark::Visited => " visited",
                Mark::None => "",
            };
            let properties = format!("class=\"state {}{mark}\" data-state=\"{}\"", node.kind.class(), escape(&node.key));
            graph.add_node(Element::create_with_properties(shape, look, Orientation::LeftToRight, size, properties))
        })
        .collect();
    let handle = |key: &str| diagram.nodes.iter().position(|n| n.key == key).map(|i| handles[i]);
    for edge in &diagram.edges {
        let (Some(from), Some(to)) = (handle(&edge.from), handle(&edge.to)) else { continue };
        let line_style = match edge.trigger {
            "manual" => LineStyleKind::Normal,
            "timeout" => LineStyleKind::Dotted,
            _ => LineStyleKind::Dashed,
        };
        let (stroke, width) = if edge.taken { ("#1565c0", 3) } else { ("#546e7a", 1) };
        let look = StyleAttr::new(color(stroke), width, None, 0, 12);
        let taken = if edge.taken { " taken" } else { "" };
        let properties = format!("class=\"transition{taken}\" data-transition=\"{}\"", escape(&edge.key));
        let mut arrow = Arrow::new(LineEndKind::None, LineEndKind::Arrow, line_style, &edge.label(), &look, &None, &None);
        arrow.properties = Some(properties);
        graph.add_edge(arrow, from, to);
    }
    let mut writer = SVGWriter::new();
    graph.do_it(false, false, false, &mut writer);
    writer.finalize()
}

/// `#rrggbb` as the crate's color (RGBA).
fn color(hex: &str) -> Color {
    let rgb = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap_or(0);
    Color::new((rgb << 8) | 0xff)
}
