use super::*;

#[test]
fn filter_cycles_through_every_kind_and_back_to_all() {
    let mut filter = None;
    let mut seen = Vec::new();
    for _ in 0..=EdgeKind::ALL.len() {
        filter = next_filter(filter);
        seen.push(filter);
    }
    assert_eq!(seen.last(), Some(&None));
    assert_eq!(seen.len(), EdgeKind::ALL.len() + 1);
}
