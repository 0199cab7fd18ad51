use serde_json::json;
use vnext_core::model::Workflow;

use super::*;

/// `draft` → (submit, manual) `review` → (approve, automatic default) `done`;
/// a shared `comment` in `review`; `cancel` to `cancelled`; a workflow timeout.
fn workflow() -> Workflow {
    serde_json::from_value(json!({
        "type": "F",
        "startTransition": { "key": "start", "target": "draft", "triggerType": 0 },
        "states": [
            { "key": "draft", "stateType": 1, "transitions": [
                { "key": "submit", "target": "review", "triggerType": 0 } ] },
            { "key": "review", "stateType": 2, "transitions": [
                { "key": "approve", "target": "done", "triggerType": 1, "triggerKind": 10 },
                { "key": "remind", "target": "$self", "triggerType": 2, "timer": { "duration": "PT1H" } } ] },
            { "key": "done", "stateType": 3, "subType": 1 },
            { "key": "cancelled", "stateType": 3, "subType": 3 }
        ],
        "sharedTransitions": [
            { "key": "comment", "target": "$self", "triggerType": 0, "availableIn": ["review"] } ],
        "cancel": { "key": "cancel", "target": "cancelled", "triggerType": 0 },
        "timeout": { "key": "expire", "target": "cancelled", "timer": { "duration": "P7D" } }
    }))
    .expect("a valid workflow")
}

#[test]
fn a_node_per_state_and_the_markers() {
    let diagram = Diagram::of(&workflow());
    let keys: Vec<_> = diagram.nodes.iter().map(|n| n.key.as_str()).collect();
    assert_eq!(keys, [START, "draft", "review", "done", "cancelled", ANY]);
    assert_eq!(diagram.nodes[3].kind, NodeKind::Final(Some(1)));
    assert_eq!(diagram.nodes[4].kind.class(), "final-terminated");
}

#[test]
fn an_edge_per_transition_labelled_by_trigger() {
    let diagram = Diagram::of(&workflow());
    let labels: Vec<_> = diagram.edges.iter().map(|e| (e.from.as_str(), e.to.as_str(), e.label())).collect();
    assert_eq!(
        labels,
        [
            (START, "draft", "start (manual)".to_string()),
            ("draft", "review", "submit (manual)".to_string()),
            ("review", "done", "approve (automatic: default)".to_string()),
            ("review", "review", "remind (scheduled: PT1H)".to_string()),
            ("review", "review", "comment (manual: shared)".to_string()),
            (ANY, "cancelled", "cancel (manual: cancel)".to_string()),
            (ANY, "cancelled", "expire (timeout: P7D)".to_string()),
        ]
    );
}

#[test]
fn an_instance_marks_its_path_and_current_state() {
    let mut diagram = Diagram::of(&workflow());
    diagram.mark(&Trail {
        current: "review".into(),
        steps: vec![("start".into(), START.into(), Some("draft".into())), ("submit".into(), "draft".into(), Some("review".into()))],
    });
    assert_eq!(diagram.current().map(|n| n.key.as_str()), Some("review"));
    let draft = diagram.nodes.iter().find(|n| n.key == "draft").expect("draft");
    assert_eq!(draft.mark, Mark::Visited);
    let taken: Vec<_> = diagram.edges.iter().filter(|e| e.taken).map(|e| e.key.as_str()).collect();
    assert_eq!(taken, ["start", "submit"]);
    assert!(diagram.nodes.iter().filter(|n| n.key == "done").all(|n| n.mark == Mark::None));
}

#[test]
fn svg_has_a_group_per_state_and_the_current_one_marked() {
    let mut diagram = Diagram::of(&workflow());
    diagram.mark(&Trail { current: "review".into(), steps: Vec::new() });
    let svg = svg::render(&diagram);
    assert!(svg.starts_with("<svg") || svg.contains("<svg"), "{svg}");
    for key in ["draft", "review", "done", "cancelled"] {
        assert_eq!(svg.matches(&format!("data-state=\"{key}\"")).count(), 1, "{key} in {svg}");
    }
    assert_eq!(svg.matches("class=\"state intermediate current\"").count(), 1);
    assert!(svg.contains("submit (manual)"));
}

#[test]
fn mermaid_names_every_state_and_marks_the_current_one() {
    let mut diagram = Diagram::of(&workflow());
    diagram.mark(&Trail { current: "draft".into(), steps: vec![("start".into(), START.into(), Some("draft".into()))] });
    let text = mermaid::render(&diagram);
    assert!(text.starts_with("flowchart TD\n"));
    assert!(text.contains("n1([\"draft\"]):::initial"), "{text}");
    assert!(text.contains("n3(((\"done\"))):::final"), "{text}");
    assert!(text.contains("n1 -->|\"submit (manual)\"| n2"), "{text}");
    assert!(text.contains("class n1 current"), "{text}");
    assert!(text.contains("linkStyle 0 stroke"), "{text}");
}
